//! The product against the second real server, Cyrus IMAP 3.6 with
//! Debian's namespace (every folder under `INBOX.`, delimiter `.`; see
//! `cyrus.rs`): `account check`, `clean` run twice, `restore --all`,
//! `watch` with a burst of new mail, and `sieve install` followed by LMTP
//! deliveries through the installed script. The binary is run as a user
//! would run it (`util::backscatter`).
//!
//! Each scenario runs twice:
//! - with the quarantine named inside the namespace in the config
//!   (`quarantine = "INBOX.Backscatter"`): what works on Cyrus today;
//! - with the default `quarantine`, as a new user would: the agent must
//!   then put its quarantine where the server allows it, `INBOX.Backscatter`
//!   (issue 11, fault 1): the agent resolves every name against the
//!   server's NAMESPACE (`src/imap/names.rs`).
//!
//! The mail is the suite's flood (`flood.rs`: real automated responses from
//! the corpora with fresh outer Message-IDs, every third original in Sent),
//! stored with CRLF line ends: Cyrus refuses bare newlines in APPEND, as
//! RFC 5322 allows it to.

use crate::cyrus::{list_names, Cyrus};
use crate::flood::{flood, Flood};
use crate::harness::{header_message_id, Imap};
use crate::sieve::envelope_from;
use crate::sweep::tempdir;
use backscatter::Decision;
use backscatter::{classify, Context, SentIndex, SentMessage};
use backscatter_testkit::watchlog::wait_for;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the quarantine must end up on Debian's Cyrus.
const QUARANTINE: &str = "INBOX.Backscatter";

/// Corpus messages with broken MIME whose text Cyrus' BODYSTRUCTURE
/// hides (a nested multipart whose `boundary` parameter sits on an
/// unindented line: Cyrus reports a multipart/mixed holding one empty
/// text/plain part), so the agent, fetching the parts BODYSTRUCTURE names,
/// never sees the NDR text and keeps the message. Left out of the flood
/// here; tested alone in [`cyrus_clean_judges_malformed_mime_on_its_bytes`].
const MIME_READ_DIFFERENTLY: [&str; 1] = ["bsd/lhost-apachejames-01.eml"];

/// A message with every line ending as CRLF.
fn crlf(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() + m.len() / 30);
    for line in m.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        out.extend_from_slice(body);
        if line.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn crlf_all(ms: &[Vec<u8>]) -> Vec<Vec<u8>> {
    ms.iter().map(|m| crlf(m)).collect()
}

/// alice's config: plain loopback IMAP and ManageSieve, password from
/// `$PW`, the Sent folder found by SPECIAL-USE; `quarantine` as given or
/// the default.
fn write_config(dir: &Path, cy: &Cyrus, quarantine: Option<&str>) -> PathBuf {
    let cfg = dir.join("config.toml");
    let q = quarantine
        .map(|q| format!("quarantine = \"{q}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n\
             username = \"alice\"\npassword.env = \"PW\"\n{q}\
             [accounts.alice.sieve]\nport = {}\n",
            cy.imap_port, cy.sieve_port
        ),
    )
    .unwrap();
    cfg
}

fn cli(dir: &Path, cfg: &Path, args: &[&str]) -> Output {
    crate::util::backscatter(dir, cfg, args)
        .env("PW", "alicepw")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `args`, asserts exit 0, returns stdout.
fn ok(dir: &Path, cfg: &Path, args: &[&str]) -> String {
    let o = cli(dir, cfg, args);
    assert!(
        o.status.success(),
        "backscatter {} exited {:?}:\n{}{}",
        args.join(" "),
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn json(dir: &Path, cfg: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(dir, cfg, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// No folder outside the personal namespace was made (or tried and left).
fn assert_nothing_outside_inbox(cy: &Cyrus) {
    let names = list_names(&mut cy.imap("alice"));
    assert!(
        names
            .iter()
            .all(|n| n == "INBOX" || n.starts_with("INBOX.")),
        "{names:?}"
    );
}

/// Every flood message is in exactly one mailbox, the one its verdict
/// calls for (`quarantine` for backscatter, INBOX otherwise); returns how
/// many are quarantined.
fn check_placement(cy: &Cyrus, f: &Flood, quarantine: &str) -> usize {
    let w = cy.where_is("alice");
    let mut wrong = Vec::new();
    let mut q = 0;
    for (id, want) in &f.expected {
        let want_mb = if *want == Decision::Backscatter {
            quarantine
        } else {
            "INBOX"
        };
        let places = w.get(id).cloned().unwrap_or_default();
        if places != [want_mb] {
            wrong.push(format!(
                "{id}: in {places:?}, expected {want_mb} ({want:?})"
            ));
        } else if want_mb == quarantine {
            q += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misplaced, e.g.:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(15)].join("\n")
    );
    q
}

/// APPEND `msgs` to `mailbox`, 50 at a time; a batch Cyrus refuses
/// (MULTIAPPEND is all or nothing) is sent again one message at a time.
/// Returns which messages were stored: Cyrus refuses some real ones
/// outright (`NO Message contains invalid header` for malformed header
/// lines), as a server may.
fn append_storable(imap: &mut Imap, mailbox: &str, msgs: &[Vec<u8>]) -> Vec<bool> {
    let mut stored = Vec::with_capacity(msgs.len());
    for batch in msgs.chunks(50) {
        let mut cmd = format!("APPEND \"{mailbox}\"").into_bytes();
        for m in batch {
            cmd.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
            cmd.extend_from_slice(m);
        }
        if imap.command_bytes(&cmd).is_ok() {
            stored.extend(std::iter::repeat_n(true, batch.len()));
            continue;
        }
        for m in batch {
            let mut cmd = format!("APPEND \"{mailbox}\" {{{}+}}\r\n", m.len()).into_bytes();
            cmd.extend_from_slice(m);
            match imap.command_bytes(&cmd) {
                Ok(_) => stored.push(true),
                Err(e) if e.contains("NO ") => stored.push(false),
                Err(e) => panic!("IMAP APPEND to {mailbox}: {e}"),
            }
        }
    }
    stored
}

/// The outer Message-ID as the server's reader sees it (the first
/// `Message-ID:` line), with brackets.
fn mid(m: &[u8]) -> String {
    header_message_id(m).unwrap_or_else(|| panic!("a flood message without Message-ID"))
}

/// (Message-ID, bytes) of every message of a mailbox, as the server
/// stores them.
fn stored(imap: &mut Imap, mailbox: &str) -> Vec<(String, Vec<u8>)> {
    imap.fetch(mailbox, "1:*", "UID BODY.PEEK[]")
        .iter()
        .map(|items| {
            let raw = items
                .iter()
                .find(|(k, _)| k == "BODY[]")
                .and_then(|(_, v)| v.bytes())
                .expect("FETCH without BODY[]")
                .to_vec();
            (mid(&raw), raw)
        })
        .collect()
}

/// Which of `msgs` Cyrus stores exactly as sent: each APPENDed to a
/// scratch folder (deleted afterwards) and read back. Cyrus refuses some
/// and rewrites others (8-bit header bytes become `X`, its `munge8bit`).
fn storable(cy: &Cyrus, msgs: &[Vec<u8>]) -> Vec<bool> {
    // a fresh name each time: a deleted mailbox lingers under its old name
    // for a while (Cyrus' delayed delete)
    static N: AtomicU32 = AtomicU32::new(0);
    let probe = format!("INBOX.Probe{}", N.fetch_add(1, Ordering::Relaxed));
    let mut imap = cy.imap("alice");
    imap.command(&format!("CREATE \"{probe}\"")).unwrap();
    append_storable(&mut imap, &probe, msgs);
    let back: HashMap<String, Vec<u8>> = stored(&mut imap, &probe).into_iter().collect();
    imap.command("UNSELECT").unwrap();
    imap.command(&format!("DELETE \"{probe}\"")).unwrap();
    imap.logout();
    msgs.iter()
        .map(|m| back.get(&mid(m)).is_some_and(|b| b == m))
        .collect()
}

/// The classifier's context over the Sent mail as the server stores it.
fn sent_index(sent: &[Vec<u8>]) -> SentIndex {
    let mut index = SentIndex::new();
    for s in sent {
        index.insert(&SentMessage::from_raw(s).unwrap());
    }
    index
}

/// The flood with its originals in INBOX.Sent (those Cyrus takes) and its
/// responses in CRLF form, not yet delivered, each expected decision
/// taken against the Sent mail as stored.
fn stored_flood(cy: &Cyrus, n: usize) -> Flood {
    let f = flood(n);
    let mut imap = cy.imap("alice");
    let ok = append_storable(&mut imap, "INBOX.Sent", &crlf_all(&f.sent));
    let sent: Vec<Vec<u8>> = stored(&mut imap, "INBOX.Sent")
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    imap.logout();
    eprintln!(
        "cyrus refused {} of {} Sent originals",
        ok.iter().filter(|ok| !**ok).count(),
        ok.len()
    );
    let index = sent_index(&sent);
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    // Left out: the messages Cyrus reads differently (see
    // cyrus_clean_judges_malformed_mime_on_its_bytes).
    let (inbox, sources): (Vec<Vec<u8>>, Vec<PathBuf>) = f
        .inbox
        .iter()
        .zip(f.sources)
        .filter(|(_, p)| !MIME_READ_DIFFERENTLY.iter().any(|n| p.ends_with(n)))
        .map(|(m, p)| (crlf(m), p))
        .unzip();
    let expected = inbox
        .iter()
        .map(|m| (mid(m), classify(m, &ctx).verdict))
        .collect();
    Flood {
        sources,
        inbox,
        sent,
        expected,
    }
}

/// [`stored_flood`] delivered into INBOX: the expectations are now the
/// classifier's decisions on the bytes Cyrus stored (refused messages are
/// left out).
fn setup(cy: &Cyrus, n: usize) -> Flood {
    let mut f = stored_flood(cy, n);
    let mut imap = cy.imap("alice");
    let ok = append_storable(&mut imap, "INBOX", &f.inbox);
    let inbox = stored(&mut imap, "INBOX");
    imap.logout();
    let changed = inbox.iter().filter(|(_, m)| !f.inbox.contains(m)).count();
    eprintln!(
        "cyrus refused {} of {} responses and rewrote {changed}",
        ok.iter().filter(|ok| !**ok).count(),
        ok.len()
    );
    let index = sent_index(&f.sent);
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    f.expected = inbox
        .iter()
        .map(|(id, m)| (id.clone(), classify(m, &ctx).verdict))
        .collect();
    f.inbox = inbox.into_iter().map(|(_, m)| m).collect();
    f
}

// ---------------------------------------------------------------------------
// account check
// ---------------------------------------------------------------------------

fn account_check(quarantine: Option<&str>) {
    let Some(cy) = Cyrus::start_or_skip("account_check_on_cyrus") else {
        return;
    };
    let dir = tempdir("cyrus-check");
    let cfg = write_config(&dir, &cy, quarantine);
    let out = ok(&dir, &cfg, &["account", "check"]);
    // the Sent folder found through SPECIAL-USE
    assert!(out.contains("INBOX.Sent"), "{out}");
    // the name it will use for the quarantine, inside INBOX.
    let q_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Quarantine:"))
        .unwrap_or_else(|| panic!("no Quarantine line:\n{out}"));
    assert!(q_line.contains(QUARANTINE), "{q_line}\n{out}");
    assert!(
        out.contains("personal prefix \"INBOX.\", hierarchy delimiter \".\""),
        "{out}"
    );
    eprintln!("account check on cyrus:\n{out}");
    assert_nothing_outside_inbox(&cy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cyrus_account_check_with_the_quarantine_named_inside_inbox() {
    account_check(Some(QUARANTINE));
}

#[test]
fn cyrus_account_check_names_the_default_quarantine_inside_inbox() {
    account_check(None);
}

// ---------------------------------------------------------------------------
// clean, clean again, restore
// ---------------------------------------------------------------------------

fn clean_twice_and_restore(quarantine: Option<&str>) {
    let Some(cy) = Cyrus::start_or_skip("clean_on_cyrus") else {
        return;
    };
    let f = setup(&cy, 300);
    let n = f.inbox.len();
    let want_q = f
        .expected
        .values()
        .filter(|d| **d == Decision::Backscatter)
        .count();
    assert!(want_q > 0);
    let dir = tempdir("cyrus-clean");
    let cfg = write_config(&dir, &cy, quarantine);

    let v = json(&dir, &cfg, &["clean", "--json"]);
    assert_eq!(v["scanned"], n, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(check_placement(&cy, &f, QUARANTINE), want_q);
    assert_eq!(v["quarantined"], want_q, "{v}");
    assert_nothing_outside_inbox(&cy);

    // Again: the quarantine exists now; nothing more to move, no error,
    // and nothing read (a rerun on Cyrus' CONDSTORE), nor with --full.
    let v = json(&dir, &cfg, &["clean", "--json"]);
    assert_eq!(v["quarantined"], 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(
        (v["sweep"].as_str(), v["scanned"].as_u64()),
        (Some("rerun"), Some(0)),
        "{v}"
    );
    let v = json(&dir, &cfg, &["clean", "--json", "--full"]);
    assert_eq!(v["quarantined"], 0, "{v}");
    assert_eq!(v["scanned"].as_u64(), Some((n - want_q) as u64), "{v}");
    // The summary names the mailboxes as Cyrus does.
    let out = ok(&dir, &cfg, &["clean", "--full"]);
    assert!(out.contains(&format!("0 moved to {QUARANTINE}")), "{out}");
    assert_eq!(check_placement(&cy, &f, QUARANTINE), want_q);

    // quarantine list and show find what clean moved (they looked in
    // the unresolved "Backscatter" and found nothing).
    let out = ok(&dir, &cfg, &["quarantine", "list"]);
    assert!(
        out.ends_with(&format!("{want_q} messages in {QUARANTINE}.\n")),
        "{out}"
    );
    let uid = out.split_whitespace().next().unwrap().to_string();
    let out = ok(&dir, &cfg, &["quarantine", "show", &uid]);
    assert!(out.contains("Moved        from INBOX on"), "{out}");

    let v = json(&dir, &cfg, &["restore", "--all", "--json"]);
    assert_eq!(v["restored"], want_q, "{v}");
    let w = cy.where_is("alice");
    for id in f.expected.keys() {
        assert_eq!(w.get(id).cloned().unwrap_or_default(), ["INBOX"], "{id}");
    }
    assert_eq!(cy.imap("alice").status(QUARANTINE).0, 0);
    assert_nothing_outside_inbox(&cy);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A forged NDR (Apache James, from the Sisimai corpus) whose nested
/// multipart has its `boundary` on an unindented line: the classifier,
/// on the whole bytes, calls it backscatter. Cyrus' BODYSTRUCTURE is
/// `(("text" "plain" ... 0 0 ...) "mixed" ...)`: one empty text part, and
/// an agent reading only the parts BODYSTRUCTURE names kept it (Dovecot
/// answers `((("text" "plain" ... 0 0 ...) "alternative" ...) "mixed" ...)`).
/// The fetch plan reads the message's own bytes, as a file is read.
#[test]
fn cyrus_clean_judges_malformed_mime_on_its_bytes() {
    let Some(cy) = Cyrus::start_or_skip("cyrus_clean_judges_malformed_mime_on_its_bytes") else {
        return;
    };
    let path = crate::util::root()
        .join("tests/corpus/sisimai")
        .join(MIME_READ_DIFFERENTLY[0]);
    let m = crlf(&crate::flood::with_message_id(
        &std::fs::read(&path).unwrap(),
        "<malformed-mime-1@test.invalid>",
    ));
    let none = SentIndex::new();
    let ctx = Context {
        sent: &none,
        own_addresses: &[],
    };
    assert_eq!(classify(&m, &ctx).verdict, Decision::Backscatter);
    cy.imap("alice").append("INBOX", &m);
    let dir = tempdir("cyrus-mime");
    let cfg = write_config(&dir, &cy, Some(QUARANTINE));
    let v = json(&dir, &cfg, &["clean", "--json"]);
    assert_eq!(v["scanned"], 1, "{v}");
    assert_eq!(
        cy.where_is("alice")["<malformed-mime-1@test.invalid>"],
        [QUARANTINE],
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cyrus_clean_twice_and_restore_with_the_quarantine_named_inside_inbox() {
    clean_twice_and_restore(Some(QUARANTINE));
}

#[test]
fn cyrus_clean_twice_and_restore_with_the_default_quarantine() {
    clean_twice_and_restore(None);
}

// ---------------------------------------------------------------------------
// watch, with a burst
// ---------------------------------------------------------------------------

/// `n` messages of the flood with this decision that Cyrus stores.
fn pick(cy: &Cyrus, f: &Flood, d: Decision, n: usize) -> Vec<Vec<u8>> {
    let candidates: Vec<Vec<u8>> = f
        .inbox
        .iter()
        .filter(|m| f.expected[&mid(m)] == d)
        .take(10 * n)
        .cloned()
        .collect();
    let ok = storable(cy, &candidates);
    let picked: Vec<Vec<u8>> = candidates
        .into_iter()
        .zip(ok)
        .filter_map(|(m, ok)| ok.then_some(m))
        .take(n)
        .collect();
    assert_eq!(picked.len(), n, "the flood has {n} storable {d:?} messages");
    picked
}

/// `watch` with new mail: one forged response; then five more, each
/// awaited (`burst` false), or appended 60 ms apart in each of three
/// rounds (`burst`: issue 11 saw the fifth stay in INBOX until the next
/// arrival; the race does not lose every time); a legitimate and an
/// ordinary message must stay.
fn watch(quarantine: Option<&str>, burst: bool) {
    let Some(cy) = Cyrus::start_or_skip("watch_on_cyrus") else {
        return;
    };
    let rounds = if burst { 3 } else { 1 };
    let f = stored_flood(&cy, 300);
    let forged = pick(&cy, &f, Decision::Backscatter, 1 + 5 * rounds);
    let legit = pick(&cy, &f, Decision::Legitimate, 1);
    let normal = pick(&cy, &f, Decision::Normal, 1);
    let dir = tempdir("cyrus-watch");
    let cfg = write_config(&dir, &cy, quarantine);
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("PW", "alicepw"),
    );
    let show = || log.text();
    let place = |id: &str| cy.where_is("alice").get(id).cloned().unwrap_or_default();
    wait_for("watch to connect", Duration::from_secs(20), &show, || {
        show().contains("connected to")
    });

    let mut imap = cy.imap("alice");
    let t0 = Instant::now();
    imap.append("INBOX", &forged[0]);
    let first = mid(&forged[0]);
    wait_for(
        "the first forged response",
        Duration::from_secs(30),
        &show,
        || place(&first) == [QUARANTINE],
    );
    let first_latency = t0.elapsed();
    imap.append("INBOX", &legit[0]);
    let mut five = Vec::new();
    for (round, batch) in forged[1..].chunks(5).enumerate() {
        let t1 = Instant::now();
        for m in batch {
            imap.append("INBOX", m);
            if burst {
                std::thread::sleep(Duration::from_millis(60));
            } else {
                let id = mid(m);
                wait_for("a forged response", Duration::from_secs(30), &show, || {
                    place(&id) == [QUARANTINE]
                });
            }
        }
        if round == 0 {
            imap.append("INBOX", &normal[0]);
        }
        let what = format!("the five forged responses of round {}", round + 1);
        wait_for(&what, Duration::from_secs(30), &show, || {
            let w = cy.where_is("alice");
            batch
                .iter()
                .all(|m| w.get(&mid(m)).is_some_and(|p| p == &[QUARANTINE]))
        });
        five.push(t1.elapsed());
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(place(&mid(&legit[0])), ["INBOX"], "{}", show());
    assert_eq!(place(&mid(&normal[0])), ["INBOX"], "{}", show());
    assert_nothing_outside_inbox(&cy);

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "watch did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log.finish();
    assert!(status.success(), "exit {status:?}\n{log}");
    eprintln!(
        "watch on cyrus: one forged response quarantined after {first_latency:?}, \
         five more ({}) after {five:?}",
        if burst {
            "60 ms apart"
        } else {
            "one at a time"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cyrus_watch_with_the_quarantine_named_inside_inbox() {
    watch(Some(QUARANTINE), false);
}

#[test]
fn cyrus_watch_with_a_burst_with_the_quarantine_named_inside_inbox() {
    watch(Some(QUARANTINE), true);
}

/// (Needs fault 5 fixed too.)
#[test]
fn cyrus_watch_with_a_burst_with_the_default_quarantine() {
    watch(None, true);
}

// ---------------------------------------------------------------------------
// sieve install, then deliveries through the installed script
// ---------------------------------------------------------------------------

fn sieve_install_and_deliver(quarantine: Option<&str>) {
    let Some(cy) = Cyrus::start_or_skip("sieve_on_cyrus") else {
        return;
    };
    let f = stored_flood(&cy, 300);
    let dir = tempdir("cyrus-sieve");
    let cfg = write_config(&dir, &cy, quarantine);
    let out = ok(&dir, &cfg, &["sieve", "install"]);
    // timsieved compiled and activated it
    let mut sieve = cy.sieve("alice");
    let scripts = sieve.list().unwrap();
    sieve.logout();
    assert!(
        scripts.iter().any(|(_, active)| *active),
        "{scripts:?}\n{out}"
    );

    let mut delivered: Vec<(String, Decision)> = Vec::new();
    for (d, n) in [
        (Decision::Backscatter, 20),
        (Decision::Legitimate, 10),
        // The 300-message flood holds only a few ordinary messages Cyrus stores.
        (Decision::Normal, 3),
    ] {
        for m in pick(&cy, &f, d, n) {
            cy.deliver(&envelope_from(&m), "alice", &m)
                .unwrap_or_else(|e| panic!("LMTP: {e}"));
            delivered.push((mid(&m), d));
        }
    }
    let w = cy.where_is("alice");
    // A response the agent keeps only because one sent message agrees on
    // recipient and subject (a provider-rewritten Message-ID) is beyond
    // Sieve (README): counted, not failed.
    let index = sent_index(&f.sent);
    let by_id: HashMap<String, &Vec<u8>> = f.inbox.iter().map(|m| (mid(m), m)).collect();
    let corroborated_only = |id: &str| {
        let ctx = Context {
            sent: &index,
            own_addresses: &[],
        };
        classify(by_id[id], &ctx).reasons[0].starts_with("decided by recipient and subject")
    };
    let (mut caught, mut wrong, mut beyond) = (0, Vec::new(), 0);
    for (id, d) in &delivered {
        let place = w.get(id).cloned().unwrap_or_default();
        match (d, place == [QUARANTINE]) {
            (Decision::Backscatter, true) => caught += 1,
            (Decision::Backscatter, false) => assert_eq!(place, ["INBOX"], "{id}"),
            (_, false) => assert_eq!(place, ["INBOX"], "{id}"),
            (Decision::Legitimate, true) if corroborated_only(id) => beyond += 1,
            (_, true) => wrong.push(id.clone()),
        }
    }
    eprintln!(
        "cyrus sieve: {beyond} kept by the agent only through recipient-and-subject corroboration"
    );
    assert!(
        wrong.is_empty(),
        "the script quarantined mail to keep: {wrong:?}"
    );
    // The script keeps whatever names an address the user wrote to, so it
    // catches fewer than the agent (see sieve.rs); never none.
    // (10 of these 20 today)
    assert!(
        caught >= 5,
        "the installed script filed {caught} of 20 forged responses into {QUARANTINE}\n{out}"
    );
    assert_nothing_outside_inbox(&cy);
    eprintln!("sieve on cyrus: {caught}/20 forged responses filed into {QUARANTINE} at delivery");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cyrus_sieve_install_and_deliver_with_the_quarantine_named_inside_inbox() {
    sieve_install_and_deliver(Some(QUARANTINE));
}

#[test]
fn cyrus_sieve_install_and_deliver_with_the_default_quarantine() {
    sieve_install_and_deliver(None);
}

/// Cyrus refuses scripts over `sieve_maxscriptsize` (32 KB by default,
/// about 240 sent Message-IDs): `sieve install` for a user with more sent
/// mail failed with timsieved's "Expected script content as second
/// parameter" (NEWCOMER3 #8). Now it asks HAVESPACE first, learns the
/// limit from the `NO (QUOTA/MAXSIZE)` answer, uploads the most recent IDs
/// that fit and says how many were left out; the installed script still
/// files a forged response at delivery.
#[test]
fn cyrus_sieve_install_fits_the_script_size_limit() {
    let Some(cy) = Cyrus::start_or_skip("sieve_size_on_cyrus") else {
        return;
    };
    let f = stored_flood(&cy, 300);
    let mut imap = cy.imap("alice");
    imap.append_many("INBOX.Sent", &crate::sieve::hand_written_sent(600));
    imap.logout();
    let dir = tempdir("cyrus-sieve-size");
    let cfg = write_config(&dir, &cy, None);
    let out = ok(&dir, &cfg, &["sieve", "install"]);
    assert!(
        out.contains(
            "older sent Message-IDs were left out to fit the server's limit of 32768 bytes"
        ),
        "{out}"
    );
    let mut sieve = cy.sieve("alice");
    let scripts = sieve.list().unwrap();
    sieve.logout();
    assert!(
        scripts.iter().any(|(_, active)| *active),
        "{scripts:?}\n{out}"
    );
    let forged = pick(&cy, &f, Decision::Backscatter, 5);
    for m in &forged {
        cy.deliver(&envelope_from(m), "alice", m)
            .unwrap_or_else(|e| panic!("LMTP: {e}"));
    }
    let w = cy.where_is("alice");
    let caught = forged
        .iter()
        .filter(|m| w.get(&mid(m)).is_some_and(|p| p == &[QUARANTINE]))
        .count();
    assert!(
        caught > 0,
        "the sized script filed none of 5 forged responses\n{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
