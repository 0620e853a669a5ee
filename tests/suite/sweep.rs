//! `clean` and `restore` against a real Dovecot: a flood of real automated
//! responses (the corpora, cycled with fresh outer Message-IDs) and ordinary
//! mail, with a Sent folder holding some of the originals.
//!
//! Exactly the messages the classifier calls backscatter (on their whole
//! bytes, with the same sent index) must end up in quarantine, everything
//! else must stay, restore must bring them back, and a `clean` killed with
//! SIGKILL at many moments must, after a rerun, leave every message in
//! exactly one mailbox with the journal agreeing.

pub use crate::flood::{flood, with_message_id, Flood};
use crate::harness::{password, Dovecot};
use backscatter::clean::{self, CleanOptions, Dirs};
use backscatter::config::Account;
use backscatter::restore::{self, RestoreFilter};
use backscatter::secret::Secret;
use backscatter::{classify, Context, Decision, SentIndex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub fn account(dc: &Dovecot, user: &str) -> Account {
    crate::util::loopback_account(user, dc.imap_port, dc.sieve_port)
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dirs(base: &Path) -> Dirs {
    Dirs {
        data: base.join("data"),
        state: base.join("state"),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Outer Message-ID -> mailboxes it is in (with multiplicity).
pub fn where_is(dc: &Dovecot, user: &str) -> HashMap<String, Vec<String>> {
    where_is_in(dc, user, &["INBOX", "Backscatter"])
}

/// [`where_is`] over the given `mailboxes` (one that does not exist is
/// skipped).
pub fn where_is_in(dc: &Dovecot, user: &str, mailboxes: &[&str]) -> HashMap<String, Vec<String>> {
    let mut imap = dc.imap(user);
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for &mb in mailboxes {
        if imap.command(&format!("EXAMINE {mb}")).is_err() {
            continue;
        }
        for (_, id) in imap.fetch_message_ids(mb) {
            if let Some(id) = id {
                out.entry(id).or_default().push(mb.to_string());
            }
        }
    }
    out
}

/// [`where_is`] once the server is quiet: two readings in a row agree. A
/// client killed with SIGKILL may leave a MOVE it had sent still running
/// on the server, and while Dovecot copies and then expunges, a reader of
/// both mailboxes can see a message in each.
pub fn where_is_settled(dc: &Dovecot, user: &str) -> HashMap<String, Vec<String>> {
    let mut last = where_is(dc, user);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = where_is(dc, user);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Every flood message is in exactly one mailbox: the expected one.
pub fn check_placement(dc: &Dovecot, f: &Flood, user: &str) -> (usize, usize) {
    let w = where_is(dc, user);
    let (mut q, mut kept) = (0, 0);
    let mut wrong = Vec::new();
    for (id, want) in &f.expected {
        let places = w.get(id).cloned().unwrap_or_default();
        let want_mb = if *want == Decision::Backscatter {
            "Backscatter"
        } else {
            "INBOX"
        };
        if places.len() != 1 || places[0] != want_mb {
            wrong.push(format!(
                "{id}: in {places:?}, expected {want_mb} ({want:?})"
            ));
        } else if want_mb == "Backscatter" {
            q += 1;
        } else {
            kept += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misplaced, e.g.:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    (q, kept)
}

#[test]
fn sweep_restore_and_resume() {
    let Some(dc) = Dovecot::start_or_skip("sweep_restore_and_resume") else {
        return;
    };
    let f = flood(3000);
    let mut imap = dc.imap("alice");
    let appended = imap.append_many("Sent", &f.sent);
    assert_eq!(appended.len(), f.sent.len());
    assert_eq!(imap.select("Sent") as usize, f.sent.len());
    imap.append_many("INBOX", &f.inbox);
    let a = account(&dc, "alice");
    let secret = Secret::new(password("alice").into());
    let base = tempdir("sweep");
    let d = dirs(&base);
    let want_q = f
        .expected
        .values()
        .filter(|v| **v == Decision::Backscatter)
        .count();

    // A dry run moves nothing.
    let opts = CleanOptions {
        mailbox: "INBOX".into(),
        since: None,
        dry_run: true,
        ..CleanOptions::default()
    };
    let s = rt()
        .block_on(clean::clean(&a, &secret, &opts, &d, &mut |_, _| {}))
        .unwrap();
    assert_eq!(s.scanned, 3000);
    assert_eq!(
        s.sent_indexed,
        f.sent.len(),
        "every Sent message is indexed"
    );
    // The skeleton (header fields, structure, a few parts) decides as the
    // whole message does.
    let would: HashSet<String> = s
        .would_move
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    let diff: Vec<String> = f
        .expected
        .iter()
        .filter(|(id, v)| (**v == Decision::Backscatter) != would.contains(*id))
        .map(|(id, v)| {
            let n: usize = id[7..id.find('@').unwrap()].parse().unwrap();
            let row = s
                .would_move
                .iter()
                .find(|r| r.message_id.as_deref() == Some(id.as_str()));
            format!(
                "{id} ({}): expected {v:?}; skeleton said {:?}",
                f.sources[n].display(),
                row.map(|r| &r.verdict.reasons)
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "skeleton and whole message disagree:\n{}",
        diff.join("\n")
    );
    assert_eq!(s.quarantined, want_q);
    assert_eq!(imap.select("INBOX"), 3000);

    // The sweep.
    let opts = CleanOptions {
        dry_run: false,
        ..opts
    };
    let s = rt()
        .block_on(clean::clean(&a, &secret, &opts, &d, &mut |_, _| {}))
        .unwrap();
    eprintln!(
        "sweep: {} scanned, {} quarantined, {} legitimate, {} normal in {:.2} s, {} bytes fetched, sent index {}",
        s.scanned, s.quarantined, s.legitimate, s.normal, s.seconds, s.bytes_fetched, s.sent_indexed
    );
    assert!(
        s.legitimate > 100,
        "the Sent originals make some legitimate"
    );
    let (q, kept) = check_placement(&dc, &f, "alice");
    assert_eq!((q, kept), (want_q, 3000 - want_q));
    assert_eq!(s.quarantined, want_q);

    // A second sweep finds nothing more to move, and reads nothing: an
    // earlier sweep judged every message (`rerun`).
    let s2 = rt()
        .block_on(clean::clean(&a, &secret, &opts, &d, &mut |_, _| {}))
        .unwrap();
    assert_eq!(s2.quarantined, 0);
    assert_eq!(s2.scanned, 0);
    assert_eq!(s2.skipped_known, 3000 - want_q);
    // The sent index came from the cache: nothing re-read from Sent.
    assert_eq!(s.sent_fetched, 0, "the dry run filled the cache");
    assert_eq!(s2.sent_fetched, 0);
    assert_eq!(s2.sent_indexed, f.sent.len());

    // Restore one, then all.
    let one = f
        .expected
        .iter()
        .find(|(_, v)| **v == Decision::Backscatter)
        .map(|(k, _)| k.clone())
        .unwrap();
    let r = rt()
        .block_on(restore::restore(
            &a,
            &secret,
            &RestoreFilter::MessageId(one.clone()),
            &d,
        ))
        .unwrap();
    assert_eq!(r.restored, 1);
    assert_eq!(where_is(&dc, "alice")[&one], vec!["INBOX".to_string()]);
    let r = rt()
        .block_on(restore::restore(&a, &secret, &RestoreFilter::All, &d))
        .unwrap();
    assert_eq!(r.restored, want_q - 1);
    assert_eq!(r.missing, 0);
    let w = where_is(&dc, "alice");
    assert_eq!(w.len(), 3000);
    assert!(w.values().all(|v| v == &vec!["INBOX".to_string()]));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn copy_fallback_when_move_is_missing() {
    // A Dovecot that does not advertise MOVE: UID COPY + \Deleted + UID
    // EXPUNGE of exactly those UIDs.
    let Some(dc) = Dovecot::start_with_or_skip("copy_fallback_when_move_is_missing", no_move())
    else {
        return;
    };
    let f = flood(300);
    let mut imap = dc.imap("bob");
    assert!(!imap.has_capability("MOVE") && imap.has_capability("UIDPLUS"));
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    // Another message already marked \Deleted must survive the sweep.
    let keep = with_message_id(&f.inbox[0], "<deleted-but-kept@test.invalid>");
    let uid = imap.append("INBOX", &keep);
    imap.store("INBOX", &uid.to_string(), "+FLAGS (\\Deleted)");
    let base = tempdir("fallback");
    let a = crate::util::loopback_account("bob", dc.imap_port, 4190);
    let opts = CleanOptions {
        mailbox: "INBOX".into(),
        since: None,
        dry_run: false,
        ..CleanOptions::default()
    };
    let summary = rt()
        .block_on(clean::clean(
            &a,
            &Secret::new("bobpw".into()),
            &opts,
            &dirs(&base),
            &mut |_, _| {},
        ))
        .unwrap();
    assert!(summary.quarantined > 0, "nothing moved");
    check_placement(&dc, &f, "bob");
    assert!(where_is(&dc, "bob").contains_key("<deleted-but-kept@test.invalid>"));
    let _ = std::fs::remove_dir_all(&base);
}

fn no_move() -> crate::harness::Options {
    crate::harness::Options {
        extra_conf: Some(crate::harness::NO_MOVE_CONF.to_string()),
        ..Default::default()
    }
}

/// Kill `backscatter clean` with SIGKILL at many moments of a sweep, rerun
/// after each kill, and check that every message is in exactly one place
/// and the journal agrees with the server.
#[test]
fn sigkill_mid_sweep_loses_and_duplicates_nothing() {
    sigkill_mid_sweep(
        false,
        2500,
        &[40, 90, 150, 220, 300, 380, 470, 560, 650, 800],
    );
}

/// The same on a server without MOVE (UID COPY, then `\Deleted` and UID
/// EXPUNGE): a kill between the copy and the expunge leaves a message in
/// both mailboxes for a moment, never in none, and the next run removes
/// the extra copy.
#[test]
fn sigkill_mid_sweep_with_the_copy_fallback() {
    sigkill_mid_sweep(true, 1200, &[60, 120, 200, 280, 360, 450, 550]);
}

fn sigkill_mid_sweep(copy_fallback: bool, n: usize, kills_ms: &[u64]) {
    let options = if copy_fallback {
        no_move()
    } else {
        Default::default()
    };
    let Some(dc) = Dovecot::start_with_or_skip("sigkill_mid_sweep", options) else {
        return;
    };
    let f = flood(n);
    let mut imap = dc.imap("carol");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let base = tempdir("sigkill");
    let cfg = base.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.carol]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"carol\"\npassword.env = \"BS_TEST_PASSWORD\"\n",
            dc.imap_port
        ),
    )
    .unwrap();
    let run_with = |args: &[&str], kill_after: Option<std::time::Duration>| {
        let mut child = crate::util::backscatter(&base, &cfg, args)
            .env("BS_TEST_PASSWORD", "carolpw")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(d) = kill_after {
            std::thread::sleep(d);
            let _ = child.kill(); // SIGKILL
        }
        child.wait_with_output().unwrap()
    };
    let run = |kill_after| run_with(&["clean", "--json"], kill_after);
    let mut killed = 0;
    let mut doubled = 0;
    for &ms in kills_ms {
        let out = run(Some(std::time::Duration::from_millis(ms)));
        if !out.status.success() {
            killed += 1;
        }
        // After every kill: nothing lost, nothing duplicated (with the
        // copy fallback, a copy not yet expunged is allowed until the
        // next run).
        let w = where_is_settled(&dc, "carol");
        for id in f.expected.keys() {
            let n = w.get(id).map_or(0, Vec::len);
            if copy_fallback && n == 2 {
                doubled += 1;
                continue;
            }
            assert_eq!(n, 1, "{id} is in {n} places after a kill at {ms} ms");
        }
    }
    if copy_fallback {
        eprintln!("sigkill (copy fallback): {doubled} messages caught between copy and expunge");
    }
    let out = run(None);
    assert!(
        out.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (q, _) = check_placement(&dc, &f, "carol");
    eprintln!("sigkill: {killed} runs killed mid-sweep; final state correct ({q} quarantined)");
    assert!(killed >= 3, "the kills should land mid-sweep ({killed})");
    // The marks the killed runs left were true: a rerun has nothing left
    // to read, and a full sweep nothing more to move.
    let summary = |out: std::process::Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = summary(run(None));
    assert_eq!(
        (v["sweep"].as_str(), v["scanned"].as_u64()),
        (Some("rerun"), Some(0)),
        "{v}"
    );
    let v = summary(run_with(&["clean", "--json", "--full"], None));
    assert_eq!(v["quarantined"], 0, "{v}");
    check_placement(&dc, &f, "carol");
    // The journal agrees: what it says is quarantined is in quarantine.
    let journal = base.join("data/backscatter/journal-carol.jsonl");
    let entries = backscatter::journal::read(&journal).unwrap();
    assert!(backscatter::journal::unfinished(&entries).is_empty());
    let in_journal: BTreeMap<String, ()> = backscatter::journal::quarantined(&entries)
        .into_iter()
        .filter_map(|e| e.message_id.map(|m| (m, ())))
        .collect();
    let w = where_is(&dc, "carol");
    let in_q: BTreeMap<String, ()> = w
        .iter()
        .filter(|(_, v)| v.contains(&"Backscatter".to_string()))
        .map(|(k, _)| (k.clone(), ()))
        .collect();
    assert_eq!(in_journal.len(), in_q.len());
    assert_eq!(in_journal, in_q);
    let _ = std::fs::remove_dir_all(&base);
}

/// The server path equals the file path, on extracted values: every
/// message of the golden corpora (real bounces, auto-replies, challenges,
/// virus notices, feedback reports and ordinary mail) is appended to a real
/// Dovecot, with half of the identifiable originals in Sent as the user's
/// client would have saved them (Message-ID, To, Subject, Date). Each
/// message's verdict, kind, original Message-ID and extracted recipients
/// from `clean`'s fetch plan must equal `classify` on the file with the same
/// sent index. Any difference fails.
#[test]
fn the_server_sweep_equals_whole_message_classification() {
    let Some(dc) = Dovecot::start_or_skip("the_server_sweep_equals_whole_message_classification")
    else {
        return;
    };
    let none = SentIndex::new();
    let empty = Context {
        sent: &none,
        own_addresses: &[],
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for c in crate::util::corpora()
        .iter()
        .flat_map(|d| crate::util::cases(d))
    {
        files.push((crate::util::rel(&c.eml), std::fs::read(&c.eml).unwrap()));
    }
    // Half of the distinct originals (with recipients) go into Sent.
    let mut originals: BTreeMap<String, backscatter::Original> = BTreeMap::new();
    for (_, raw) in &files {
        let v = classify(raw, &empty);
        if let Some(id) = v.original.message_id.clone() {
            if !v.original.recipients.is_empty() {
                originals
                    .entry(id.to_string().to_lowercase())
                    .or_insert(v.original);
            }
        }
    }
    let sent_raw: Vec<Vec<u8>> = originals
        .iter()
        .step_by(2)
        .map(|(id, o)| {
            let date = o
                .date
                .as_deref()
                .and_then(mail_parser::DateTime::parse_rfc3339)
                .map(|d| d.to_rfc822())
                .unwrap_or_else(|| "Mon, 2 Nov 2026 10:00:00 +0000".into());
            format!(
                "From: Alice <alice@example.test>\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n",
                o.recipients.join(", "),
                o.subject.as_deref().unwrap_or("Hello").replace(['\r', '\n'], " "),
            )
            .into_bytes()
        })
        .collect();
    let mut imap = dc.imap("alice");
    assert_eq!(imap.append_many("Sent", &sent_raw).len(), sent_raw.len());
    let messages: Vec<Vec<u8>> = files.iter().map(|(_, r)| r.clone()).collect();
    let uids = imap.append_many("INBOX", &messages);
    assert_eq!(uids.len(), files.len());
    let a = account(&dc, "alice");
    let base = tempdir("equivalence");
    let d = dirs(&base);
    let secret = Secret::new(password("alice").into());
    let (sent, rows) = rt().block_on(async {
        let mut s = backscatter::imap::connect(&a, &secret).await.unwrap();
        let (sent, _) = clean::sent_index(&mut s, &a, &d).await.unwrap();
        s.select("INBOX").await.unwrap();
        let ctx = Context {
            sent: &sent,
            own_addresses: &a.addresses,
        };
        let mut rows = Vec::new();
        for chunk in uids.chunks(clean::BATCH) {
            rows.extend(clean::classify_batch(&mut s, chunk, &ctx).await.unwrap());
        }
        (sent, rows)
    });
    assert_eq!(sent.len(), sent_raw.len(), "every sent original is indexed");
    assert_eq!(rows.len(), files.len(), "every message is judged");
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let by_uid: HashMap<u32, &(String, Vec<u8>)> = uids.iter().copied().zip(files.iter()).collect();
    let mut counts: BTreeMap<Decision, usize> = BTreeMap::new();
    let mut diff = Vec::new();
    for r in &rows {
        let (path, raw) = by_uid[&r.uid];
        let want = classify(raw, &ctx);
        *counts.entry(want.verdict).or_default() += 1;
        let got = &r.verdict;
        if (
            got.verdict,
            got.kind,
            &got.original.message_id,
            &got.original.recipients,
        ) != (
            want.verdict,
            want.kind,
            &want.original.message_id,
            &want.original.recipients,
        ) {
            diff.push(format!(
                "{path}: server {:?}/{:?}/{:?}/{:?}, file {:?}/{:?}/{:?}/{:?}\n  server: {:?}\n  file: {:?}",
                got.verdict,
                got.kind,
                got.original.message_id,
                got.original.recipients,
                want.verdict,
                want.kind,
                want.original.message_id,
                want.original.recipients,
                got.reasons.first(),
                want.reasons.first()
            ));
        }
    }
    eprintln!(
        "equivalence: {} messages ({} originals in Sent): {counts:?}, {} differences",
        rows.len(),
        sent_raw.len(),
        diff.len()
    );
    assert!(
        counts.get(&Decision::Legitimate).copied().unwrap_or(0) > 100
            && counts.get(&Decision::Backscatter).copied().unwrap_or(0) > 100,
        "both halves are represented: {counts:?}"
    );
    assert!(
        diff.is_empty(),
        "{} differences:\n{}",
        diff.len(),
        diff.join("\n")
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The sweep takes a message's identity (fingerprint, Message-ID, From,
/// List-Id) from the bytes it read (`plan::identity`), not from the
/// server's `HEADER.FIELDS`, which restore and reconciliation read later:
/// for every corpus message on Dovecot the two must be equal, or a moved
/// message would not be recognised again.
#[test]
fn identities_from_the_prefix_equal_the_servers() {
    let Some(dc) = Dovecot::start_or_skip("identities_from_the_prefix_equal_the_servers") else {
        return;
    };
    let messages: Vec<Vec<u8>> = crate::util::corpora()
        .iter()
        .flat_map(|d| crate::util::cases(d))
        .map(|c| std::fs::read(&c.eml).unwrap())
        .collect();
    let uids = dc.imap("alice").append_many("INBOX", &messages);
    assert_eq!(uids.len(), messages.len());
    let a = account(&dc, "alice");
    let secret = Secret::new(password("alice").into());
    let (ours, theirs) = rt().block_on(async {
        let mut s = backscatter::imap::connect(&a, &secret).await.unwrap();
        s.select("INBOX").await.unwrap();
        let items = format!("(UID {})", backscatter::plan::sweep_prefix_items());
        let mut ours = HashMap::new();
        for f in s.uid_fetch(&uids, &items).await.unwrap() {
            let (Some(uid), Some(size)) = (f.uid, f.size) else {
                continue;
            };
            let flags = f.flags.clone();
            let bytes = f.body().unwrap_or_default();
            ours.insert(uid, backscatter::plan::identity(uid, bytes, size, flags));
        }
        let theirs = backscatter::quarantine::identities(&mut s, &uids)
            .await
            .unwrap();
        (ours, theirs)
    });
    assert_eq!(theirs.len(), messages.len());
    let mut compared = 0;
    for t in theirs {
        // A header longer than the prefix gives none (the sweep then reads
        // the server's); every other one must agree.
        if let Some(Some(o)) = ours.get(&t.uid) {
            let mut t = t.clone();
            t.arrived = 0;
            assert_eq!(o, &t, "uid {}", t.uid);
            compared += 1;
        }
    }
    eprintln!("{compared} of {} identities compared", messages.len());
    assert!(compared * 10 >= messages.len() * 9, "{compared}");
}
