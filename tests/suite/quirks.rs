//! Other servers' quirks, played by a proxy in front of the test Dovecot
//! that rewrites the conversation the way those servers behave (seen with
//! the real servers, issue 11):
//! - Courier answers CREATE of an existing folder with
//!   `NO Cannot create this folder.` (no ALREADYEXISTS code);
//! - UW imapd refuses `CREATE INBOX` (`NO Can't create INBOX`);
//! - Courier, UW imapd and GNU Mailutils push nothing during IDLE.
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
    idling: bool,
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
                        "IDLE" => {
                            seen.idles.fetch_add(1, Ordering::SeqCst);
                            p.idling = true;
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
                let pushed = ["EXISTS", "RECENT", "FETCH", "EXPUNGE"].contains(&kind2.as_str());
                if quirk == Quirk::SilentIdle && p.idling && pushed {
                    seen.dropped.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            } else if tag != "+" {
                if p.hide_list.as_deref() == Some(tag.as_str()) {
                    p.hide_list = None;
                }
                p.idling = false;
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
        let (ok, out) = run(&dir, &cfg, &["clean"]);
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
