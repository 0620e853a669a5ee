//! Other servers' quirks, played by a proxy in front of the test Dovecot
//! that rewrites the conversation the way those servers behave (seen with
//! the real servers, issue 11):
//! - Courier answers CREATE of an existing folder with
//!   `NO Cannot create this folder.` (no ALREADYEXISTS code);
//! - UW imapd refuses `CREATE INBOX` (`NO Can't create INBOX`);
//! - Courier, UW imapd and GNU Mailutils push nothing during IDLE;
//! - GNU Mailutils' BODYSTRUCTURE of an attached message (message/rfc822)
//!   has no space between the envelope and the body structure, which no
//!   IMAP parser accepts (imap4d/fetch.c, `bodystructure()`: `io_sendf
//!   (")")` after the envelope, then `io_sendf ("(")`);
//! - a server that garbles every reply about one message (a fault made up
//!   for the containment test, not seen on a real server).
//!
//! The proxy forwards whole responses (literals included) and only
//! rewrites, drops or answers the ones a quirk concerns.

use crate::harness::Dovecot;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quirk {
    /// Courier: a NO to CREATE reads `Cannot create this folder.`, and the
    /// first LIST of a single mailbox shows nothing (as if another client
    /// created it between our LIST and our CREATE).
    CourierCreate,
    /// UW imapd: `CREATE INBOX` is refused.
    UwCreateInbox,
    /// No untagged EXISTS/RECENT/FETCH/EXPUNGE while the client IDLEs.
    SilentIdle,
    /// STARTTLS is offered but answered `NO STARTTLS failed` (GNU
    /// Mailutils without a usable certificate).
    RefuseStarttls,
    /// GNU Mailutils: the BODYSTRUCTURE of a message/rfc822 part lacks
    /// the space between the envelope and the body.
    MailutilsBodystructure,
    /// Every FETCH reply about this UID of INBOX is not valid IMAP.
    GarbleUid(u32),
    /// NAMESPACE (RFC 2342) is offered but answered `NO` (seen with
    /// proxies and servers that list it without implementing it).
    RefuseNamespace,
}

/// What the proxy saw.
#[derive(Default)]
pub struct Seen {
    /// CREATE commands of any mailbox.
    pub creates: AtomicUsize,
    /// CREATE INBOX commands (refused).
    pub create_inbox: AtomicUsize,
    /// NO replies to CREATE rewritten to Courier's words.
    pub rewritten: AtomicUsize,
    /// Pushed responses dropped during IDLE.
    pub dropped: AtomicUsize,
    /// IDLE commands.
    pub idles: AtomicUsize,
    /// FETCH replies rewritten into something that is not IMAP.
    pub garbled: AtomicUsize,
}

/// Start the proxy to `upstream` (plain IMAP); returns its port.
pub fn proxy(upstream: u16, quirk: Quirk) -> (u16, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let seen = s2.clone();
            std::thread::spawn(move || relay(client, server, quirk, seen));
        }
    });
    (port, seen)
}

/// What the client-side thread tells the server-side one.
#[derive(Default)]
struct Pending {
    /// Tags of CREATE commands.
    create_tags: Vec<String>,
    /// Drop `* LIST` lines until this tag's reply.
    hide_list: Option<String>,
    /// Has a single-mailbox LIST been hidden once already?
    hid_once: bool,
    /// Between the server's `+` to an IDLE and that IDLE's completion.
    idling: bool,
    /// The tag of the IDLE in flight.
    idle_tag: Option<String>,
    /// The mailbox SELECT or EXAMINE named last.
    selected: String,
}

/// One whole response or command: a line, and for each literal `{n}` at
/// its end the n bytes and the line after them.
fn read_unit(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let start = out.len();
        if r.read_until(b'\n', &mut out).ok()? == 0 {
            return None;
        }
        let line = &out[start..];
        let lit = line.strip_suffix(b"}\r\n").and_then(|l| {
            let open = l.iter().rposition(|&b| b == b'{')?;
            std::str::from_utf8(&l[open + 1..])
                .ok()?
                .trim_end_matches('+')
                .parse::<usize>()
                .ok()
        });
        match lit {
            Some(n) => {
                let at = out.len();
                out.resize(at + n, 0);
                r.read_exact(&mut out[at..]).ok()?;
            }
            None => return Some(out),
        }
    }
}

fn words(unit: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(unit)
        .split_whitespace()
        .take(3)
        .map(str::to_string)
        .collect()
}

fn relay(client: TcpStream, server: TcpStream, quirk: Quirk, seen: Arc<Seen>) {
    let pending = Arc::new(Mutex::new(Pending::default()));
    let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
    {
        let (pending, to_client, seen) = (pending.clone(), to_client.clone(), seen.clone());
        let mut to_server = server.try_clone().unwrap();
        let mut from_client = BufReader::new(client);
        std::thread::spawn(move || {
            while let Some(unit) = read_unit(&mut from_client) {
                let w = words(&unit);
                let cmd = w.get(1).map(|c| c.to_ascii_uppercase()).unwrap_or_default();
                let arg = w
                    .get(2)
                    .map(|a| a.trim_matches('"').to_string())
                    .unwrap_or_default();
                {
                    let mut p = pending.lock().unwrap();
                    match cmd.as_str() {
                        "NAMESPACE" if quirk == Quirk::RefuseNamespace => {
                            let reply = format!("{} NO NAMESPACE not available\r\n", w[0]);
                            let _ = to_client.lock().unwrap().write_all(reply.as_bytes());
                            continue;
                        }
                        "STARTTLS" if quirk == Quirk::RefuseStarttls => {
                            let reply = format!("{} NO STARTTLS failed\r\n", w[0]);
                            let _ = to_client.lock().unwrap().write_all(reply.as_bytes());
                            continue;
                        }
                        "CREATE" => {
                            seen.creates.fetch_add(1, Ordering::SeqCst);
                            if arg.eq_ignore_ascii_case("INBOX") {
                                seen.create_inbox.fetch_add(1, Ordering::SeqCst);
                                if quirk == Quirk::UwCreateInbox {
                                    let reply = format!("{} NO Can't create INBOX\r\n", w[0]);
                                    let _ = to_client.lock().unwrap().write_all(reply.as_bytes());
                                    continue;
                                }
                            }
                            p.create_tags.push(w[0].clone());
                        }
                        "LIST" if quirk == Quirk::CourierCreate && !p.hid_once => {
                            let pattern = String::from_utf8_lossy(&unit);
                            let single = !pattern.contains('*')
                                && !pattern.contains('%')
                                && !pattern.trim_end().ends_with("\"\"");
                            if single {
                                p.hid_once = true;
                                p.hide_list = Some(w[0].clone());
                            }
                        }
                        "SELECT" | "EXAMINE" => p.selected = arg.clone(),
                        "IDLE" => {
                            seen.idles.fetch_add(1, Ordering::SeqCst);
                            // Idling from the server's `+` on: the answers
                            // of commands pipelined before it come first.
                            p.idle_tag = Some(w[0].clone());
                        }
                        _ => {}
                    }
                }
                if to_server.write_all(&unit).is_err() {
                    break;
                }
            }
            let _ = to_server.shutdown(std::net::Shutdown::Write);
        });
    }
    let mut from_server = BufReader::new(server);
    while let Some(unit) = read_unit(&mut from_server) {
        let w = words(&unit);
        let tag = w.first().cloned().unwrap_or_default();
        let mut out = unit;
        {
            let mut p = pending.lock().unwrap();
            if tag == "*" {
                let kind = w.get(1).map(|s| s.to_ascii_uppercase()).unwrap_or_default();
                let kind2 = w.get(2).map(|s| s.to_ascii_uppercase()).unwrap_or_default();
                if p.hide_list.is_some() && kind == "LIST" {
                    continue;
                }
                if kind2 == "FETCH" {
                    if let Some(bad) = garble(&out, quirk, &p.selected) {
                        seen.garbled.fetch_add(1, Ordering::SeqCst);
                        out = bad;
                    }
                }
                let pushed = ["EXISTS", "RECENT", "FETCH", "EXPUNGE"].contains(&kind2.as_str());
                if quirk == Quirk::SilentIdle && p.idling && pushed {
                    seen.dropped.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            } else if tag == "+" {
                if p.idle_tag.is_some() {
                    p.idling = true;
                }
            } else {
                if p.hide_list.as_deref() == Some(tag.as_str()) {
                    p.hide_list = None;
                }
                // Only the IDLE's own completion ends it.
                if p.idle_tag.as_deref() == Some(tag.as_str()) {
                    p.idling = false;
                    p.idle_tag = None;
                }
                if let Some(i) = p.create_tags.iter().position(|t| *t == tag) {
                    p.create_tags.remove(i);
                    let status = w.get(1).map(|s| s.to_ascii_uppercase());
                    if quirk == Quirk::CourierCreate && status.as_deref() == Some("NO") {
                        seen.rewritten.fetch_add(1, Ordering::SeqCst);
                        out = format!("{tag} NO Cannot create this folder.\r\n").into_bytes();
                    }
                }
            }
        }
        if to_client.lock().unwrap().write_all(&out).is_err() {
            break;
        }
    }
    let _ = to_client.lock().unwrap().shutdown(std::net::Shutdown::Both);
}

/// `unit` (a `* n FETCH` response, `selected` the mailbox it is about)
/// as the quirk has the server send it, or `None` when the quirk leaves
/// it alone.
fn garble(unit: &[u8], quirk: Quirk, selected: &str) -> Option<Vec<u8>> {
    match quirk {
        Quirk::MailutilsBodystructure => mailutils_bodystructure(unit),
        Quirk::GarbleUid(uid) if selected.eq_ignore_ascii_case("INBOX") => {
            let text = String::from_utf8_lossy(unit);
            let at = text.find("(UID ")? + 5;
            let n: String = text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if n.parse::<u32>().ok()? != uid {
                return None;
            }
            // `FETCH ((UID ...`: a list where a fetch item must be.
            let open = text.find("FETCH (")? + 6;
            let mut out = unit[..open].to_vec();
            out.push(b'(');
            out.extend_from_slice(&unit[open..]);
            Some(out)
        }
        _ => None,
    }
}

/// Where the IMAP item starting at `i` ends: a parenthesized list, a
/// quoted string, a literal or an atom (NIL, a number).
fn skip_item(b: &[u8], mut i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'(' => {
            i += 1;
            loop {
                match *b.get(i)? {
                    b')' => return Some(i + 1),
                    b' ' => i += 1,
                    _ => i = skip_item(b, i)?,
                }
            }
        }
        b'"' => {
            i += 1;
            loop {
                match *b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
        }
        b'{' => {
            let close = i + b[i..].iter().position(|&c| c == b'}')?;
            let n: usize = std::str::from_utf8(&b[i + 1..close]).ok()?.parse().ok()?;
            Some(close + 3 + n)
        }
        _ => Some(i + b[i..].iter().position(|&c| c == b' ' || c == b')')?),
    }
}

/// GNU Mailutils' form of a BODYSTRUCTURE reply: in every
/// `"MESSAGE" "RFC822"` part, the space after the envelope dropped
/// (`... size (envelope)(body) lines`).
fn mailutils_bodystructure(unit: &[u8]) -> Option<Vec<u8>> {
    let lower = unit.to_ascii_lowercase();
    memchr_find(&lower, b"bodystructure (")?;
    let mut out = unit.to_vec();
    let needle = b"\"message\" \"rfc822\" ";
    let mut from = 0;
    let mut cut = Vec::new();
    while let Some(at) = memchr_find(&lower[from..], needle).map(|p| p + from) {
        // Parameters, id, description, encoding, size, then the envelope.
        let mut i = at + needle.len();
        for _ in 0..6 {
            i = skip_item(unit, i)?;
            i += usize::from(unit.get(i) == Some(&b' '));
        }
        // `i` is now just past the space after the envelope.
        if unit.get(i - 1) == Some(&b' ') && unit.get(i) == Some(&b'(') {
            cut.push(i - 1);
        }
        from = at + needle.len();
    }
    if cut.is_empty() {
        return None;
    }
    for i in cut.into_iter().rev() {
        out.remove(i);
    }
    Some(out)
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn config(dir: &Path, port: u16) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n"
        ),
    )
    .unwrap();
    cfg
}

fn run(dir: &Path, cfg: &Path, args: &[&str]) -> (bool, String) {
    let o = crate::util::backscatter(dir, cfg, args)
        .env("PW", "alicepw")
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Courier's `NO Cannot create this folder.` for a quarantine that exists
/// is success: decided by LIST, not by the reply's words. Run twice, as
/// every run after the first failed before.
#[test]
fn courier_create_no_for_an_existing_folder_is_success() {
    let Some(dc) = Dovecot::start_or_skip("courier_create") else {
        return;
    };
    let f = crate::flood::flood(40);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    imap.create("Backscatter");
    drop(imap);
    let (port, seen) = proxy(dc.imap_port, Quirk::CourierCreate);
    let dir = crate::sweep::tempdir("courier-create");
    let cfg = config(&dir, port);
    for round in 0..2 {
        // The second run with --full: a rerun with nothing new to read
        // does not look for the quarantine at all.
        let args: &[&str] = if round == 0 {
            &["clean"]
        } else {
            &["clean", "--full"]
        };
        let (ok, out) = run(&dir, &cfg, args);
        assert!(ok, "round {round}: {out}");
        assert!(!out.contains("Cannot create"), "{out}");
    }
    assert_eq!(
        seen.rewritten.load(Ordering::SeqCst),
        2,
        "in each run the first LIST was hidden and CREATE got Courier's NO"
    );
    let moved = dc.imap("alice").status("Backscatter").0;
    assert!(moved > 0, "the sweep moved nothing");
}

/// UW imapd refuses `CREATE INBOX`: restore into INBOX never asks.
#[test]
fn restore_never_creates_inbox() {
    let Some(dc) = Dovecot::start_or_skip("uw_create_inbox") else {
        return;
    };
    let f = crate::flood::flood(40);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let (port, seen) = proxy(dc.imap_port, Quirk::UwCreateInbox);
    let dir = crate::sweep::tempdir("uw-inbox");
    let cfg = config(&dir, port);
    let (ok, out) = run(&dir, &cfg, &["clean"]);
    assert!(ok, "{out}");
    let moved = dc.imap("alice").status("Backscatter").0;
    assert!(moved > 0, "{out}");
    let (ok, out) = run(&dir, &cfg, &["restore", "--all"]);
    assert!(ok, "{out}");
    assert_eq!(seen.create_inbox.load(Ordering::SeqCst), 0, "{out}");
    assert_eq!(dc.imap("alice").status("INBOX").0 as usize, f.inbox.len());
}

/// `clean --json --each` (with `extra` arguments): its per-message lines
/// by UID, and the summary.
fn clean_each(
    dir: &Path,
    cfg: &Path,
    extra: &[&str],
) -> (
    std::collections::BTreeMap<u64, serde_json::Value>,
    serde_json::Value,
) {
    let mut args = vec!["clean", "--json", "--each"];
    args.extend_from_slice(extra);
    let o = crate::util::backscatter(dir, cfg, &args)
        .env("PW", "alicepw")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.pop().unwrap();
    let each = lines
        .into_iter()
        .map(|v| (v["uid"].as_u64().unwrap(), v))
        .collect();
    (each, summary)
}

/// A mailbox for the BODYSTRUCTURE tests: a flood of real automated
/// responses, and a long multipart/mixed message with an attached one
/// (Request Tracker's test message `nested-rfc-822`, GPL-2, see
/// tests/fixtures/extra/rt/SOURCE.md), whose structure the sweep asks
/// for. Returns the flood and that message's UID.
fn mailbox_with_an_attached_message(dc: &Dovecot) -> (crate::flood::Flood, u32) {
    let f = crate::flood::flood(40);
    let nested =
        std::fs::read(crate::util::root().join("tests/fixtures/extra/rt/nested-rfc-822.eml"))
            .unwrap();
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox[..20]);
    let uid = imap.append("INBOX", &nested);
    imap.append_many("INBOX", &f.inbox[20..]);
    (f, uid)
}

/// GNU Mailutils' BODYSTRUCTURE of an attached message is not IMAP, and
/// async-imap drops the whole FETCH reply with the connection (fault 6 of
/// issue 11: the sweep exited 1). The sweep reconnects and reads those
/// messages' bytes instead: every message gets the verdict it gets on
/// Dovecot unproxied, nothing counts as an error, and the message with
/// the attachment (ordinary mail) stays in INBOX.
#[test]
fn mailutils_bodystructure_falls_back_to_the_bytes() {
    let Some(dc) = Dovecot::start_or_skip("mailutils_bodystructure") else {
        return;
    };
    let (_f, nested) = mailbox_with_an_attached_message(&dc);
    let direct = crate::sweep::tempdir("mailutils-direct");
    let (reference, _) = clean_each(&direct, &config(&direct, dc.imap_port), &["--dry-run"]);
    assert_eq!(reference[&u64::from(nested)]["verdict"], "normal");
    let (port, seen) = proxy(dc.imap_port, Quirk::MailutilsBodystructure);
    let dir = crate::sweep::tempdir("mailutils-bodystructure");
    let cfg = config(&dir, port);
    let (dry, summary) = clean_each(&dir, &cfg, &["--dry-run"]);
    assert!(
        seen.garbled.load(Ordering::SeqCst) > 0,
        "the sweep never asked for the attached message's structure"
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(dry, reference);
    let (done, summary) = clean_each(&dir, &cfg, &[]);
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(done.len(), reference.len());
    for (uid, r) in &reference {
        let want = if r["action"] == "would_move" {
            "moved"
        } else {
            "kept"
        };
        assert_eq!(done[uid]["action"], want, "uid {uid}: {}", done[uid]);
    }
    let left = dc.imap("alice").uids("INBOX");
    assert!(left.contains(&nested), "the attached message moved");
}

/// A message whose every FETCH reply is garbled cannot be judged: the
/// sweep contains the fault to it (a new connection, the set fetched
/// again in halves), finishes, leaves it in INBOX and counts it in
/// `errors`; every other message gets its verdict. A made-up fault, not
/// seen on a real server.
#[test]
fn an_unreadable_message_stays_and_counts_as_an_error() {
    let Some(dc) = Dovecot::start_or_skip("garbled_message") else {
        return;
    };
    let (_f, nested) = mailbox_with_an_attached_message(&dc);
    let direct = crate::sweep::tempdir("garbled-direct");
    let (reference, _) = clean_each(&direct, &config(&direct, dc.imap_port), &["--dry-run"]);
    let (port, seen) = proxy(dc.imap_port, Quirk::GarbleUid(nested));
    let dir = crate::sweep::tempdir("garbled-message");
    let cfg = config(&dir, port);
    let (done, summary) = clean_each(&dir, &cfg, &[]);
    assert!(seen.garbled.load(Ordering::SeqCst) > 0);
    assert_eq!(summary["errors"], 1, "{summary}");
    assert_eq!(summary["scanned"], reference.len(), "{summary}");
    assert_eq!(done[&u64::from(nested)]["action"], "error");
    for (uid, r) in reference.iter().filter(|(u, _)| **u != u64::from(nested)) {
        let want = if r["action"] == "would_move" {
            "moved"
        } else {
            "kept"
        };
        assert_eq!(done[uid]["action"], want, "uid {uid}: {}", done[uid]);
        assert_eq!(done[uid]["verdict"], r["verdict"], "uid {uid}");
    }
    let left = dc.imap("alice").uids("INBOX");
    assert!(left.contains(&nested), "the unreadable message moved");
    // The human summary says so.
    let (ok, out) = run(&dir, &cfg, &["clean", "--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("1 message could not be judged and stayed where it was."),
        "{out}"
    );
}
