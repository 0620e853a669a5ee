//! The quarantine under the user's control, against a real Dovecot:
//! `restore` finds every message (without a Message-ID, with a shared or a
//! malformed one, filed by the server's script), says what it would do,
//! fails loudly when it leaves something behind, is a no-op the second
//! time, and a restored message stays restored (`$NotBackscatter`) while
//! `watch` runs and through later sweeps.

use crate::flood::{flood, id_of, with_message_id};
use crate::harness::Dovecot;
use crate::sweep::tempdir;
use backscatter::{classify, Context, Decision, SentIndex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A real corpus message (Sisimai set-of-emails, BSD-2-Clause, see
/// tests/corpus/sisimai/LICENSE).
fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        crate::util::root()
            .join("tests/corpus/sisimai/bsd")
            .join(name),
    )
    .unwrap()
}

/// Remove every Message-ID field (and its continuation lines).
fn without_message_id(raw: &[u8]) -> Vec<u8> {
    let with = with_message_id(raw, "<x@x>");
    let text = with.split_inclusive(|&b| b == b'\n');
    text.filter(|l| !l.starts_with(b"Message-ID: <x@x>"))
        .flatten()
        .copied()
        .collect()
}

struct Cli {
    dir: PathBuf,
    cfg: PathBuf,
}

impl Cli {
    fn new(dc: &Dovecot, tag: &str) -> Cli {
        let dir = tempdir(tag);
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n[accounts.alice.sieve]\nport = {}\n",
                dc.imap_port, dc.sieve_port
            ),
        )
        .unwrap();
        Cli { dir, cfg }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = crate::util::backscatter(&self.dir, &self.cfg, args);
        c.env("PW", "alicepw");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn data(&self) -> &Path {
        &self.dir
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A message's bytes with line ends as the server stores them (CRLF), as
/// a short printable key: its length and first subject line.
fn key(raw: &[u8]) -> String {
    let crlf: Vec<u8> = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes();
    let subject = String::from_utf8_lossy(&crlf)
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .unwrap_or("")
        .to_string();
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crlf.hash(&mut h);
    format!("{:016x} {} bytes {subject}", h.finish(), crlf.len())
}

/// Message key -> how many copies, in a mailbox.
fn contents(dc: &Dovecot, mailbox: &str) -> BTreeMap<String, usize> {
    let mut imap = dc.imap("alice");
    let mut out = BTreeMap::new();
    // Not created yet (the agent creates it when it starts): empty.
    if imap.command(&format!("EXAMINE {mailbox}")).is_err() {
        return out;
    }
    for uid in imap.uids(mailbox) {
        *out.entry(key(&imap.fetch_raw(mailbox, uid))).or_default() += 1;
    }
    out
}

fn count(list: &[Vec<u8>]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in list {
        *out.entry(key(m)).or_default() += 1;
    }
    out
}

/// Backscatter whose identity is hard: no Message-ID (two real corpus
/// bounces, as found), two different messages sharing one ID, an ID
/// without `@`, two Message-ID fields; and three ordinary ones.
fn hard_backscatter() -> Vec<Vec<u8>> {
    let f = flood(60);
    let forged: Vec<&Vec<u8>> = f
        .inbox
        .iter()
        .filter(|m| f.expected[&id_of(m)] == Decision::Backscatter)
        .collect();
    let mut two_ids = with_message_id(forged[3], "<first@test.invalid>");
    two_ids.splice(
        0..0,
        b"Message-ID: <second@test.invalid>\r\n".iter().copied(),
    );
    let out = vec![
        corpus("lhost-qmail-01.eml"),
        corpus("lhost-yahoo-01.eml"),
        without_message_id(forged[0]),
        with_message_id(forged[1], "<dup@test.invalid>"),
        with_message_id(forged[2], "<dup@test.invalid>"),
        with_message_id(forged[4], "no-at-sign-id"),
        two_ids,
        forged[5].clone(),
        forged[6].clone(),
        forged[7].clone(),
    ];
    // Each is backscatter to the classifier with an empty Sent folder,
    // so a sweep moves all of them.
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    for (i, m) in out.iter().enumerate() {
        assert_eq!(
            classify(m, &ctx).verdict,
            Decision::Backscatter,
            "sample {i}"
        );
    }
    out
}

#[test]
fn restore_brings_back_every_message_and_twice_is_a_no_op() {
    let Some(dc) = Dovecot::start_or_skip("restore_every_message") else {
        return;
    };
    let forged = hard_backscatter();
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX", &forged);
    let cli = Cli::new(&dc, "restore-all");

    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["quarantined"], forged.len(), "{}", text(&o));
    assert_eq!(contents(&dc, "Backscatter"), count(&forged));

    // The dry run lists every one and moves nothing.
    let o = cli.run(&["restore", "--all", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.matches("would restore uid").count(),
        forged.len(),
        "{out}"
    );
    assert!(out.contains("(no Message-ID)"), "{out}");
    assert_eq!(contents(&dc, "Backscatter"), count(&forged));

    let o = cli.run(&["restore", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("Restored {} messages", forged.len())),
        "{}",
        text(&o)
    );
    assert_eq!(contents(&dc, "INBOX"), count(&forged), "every one is back");
    assert!(contents(&dc, "Backscatter").is_empty());
    for uid in imap.uids("INBOX") {
        assert!(
            imap.flags("INBOX", uid)
                .iter()
                .any(|f| f == "$NotBackscatter"),
            "UID {uid} carries the keyword"
        );
    }

    // Again: nothing to do, exit 0.
    let o = cli.run(&["restore", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Restored 0 messages"),
        "{}",
        text(&o)
    );

    // The undo sticks: a sweep leaves them all.
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["quarantined"], 0, "{}", text(&o));
    assert_eq!(v["kept_by_user"], forged.len(), "{}", text(&o));
    assert_eq!(contents(&dc, "INBOX"), count(&forged));

    // A journal entry nothing can identify (hand-written, as an old
    // version without fingerprints wrote for a message without
    // Message-ID): restore exits 1 and names it.
    let journal = cli.data().join("data/backscatter/journal-alice.jsonl");
    assert!(journal.exists(), "{}", journal.display());
    let mut j = std::fs::read_to_string(&journal).unwrap();
    j.push_str("{\"ts\":1764460800,\"op\":\"quarantine\",\"batch\":\"old-1\",\"account\":\"alice\",\"mailbox\":\"INBOX\",\"uidvalidity\":1,\"uid\":77,\"to\":\"Backscatter\"}\n{\"ts\":1764460801,\"op\":\"commit\",\"batch\":\"old-1\"}\n");
    std::fs::write(&journal, j).unwrap();
    let o = cli.run(&["restore", "--all"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("UID 77"), "{}", text(&o));
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    let _ = std::fs::remove_dir_all(&cli.dir);
}

#[test]
fn mail_filed_by_the_server_is_restored_by_message_id() {
    let Some(dc) = Dovecot::start_or_skip("restore_server_filed") else {
        return;
    };
    let forged = hard_backscatter();
    let mut imap = dc.imap("alice");
    imap.create("Backscatter");
    // Filed straight into quarantine, as a server-side script does: no
    // journal knows them.
    imap.append_many("Backscatter", &forged[3..6]);
    let cli = Cli::new(&dc, "restore-filed");
    let o = cli.run(&["restore", "--message-id", "dup@test.invalid"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        contents(&dc, "INBOX"),
        count(&forged[3..5]),
        "both with that ID"
    );
    let o = cli.run(&["restore", "--message-id", "no-at-sign-id"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(contents(&dc, "INBOX"), count(&forged[3..6]));
    assert!(contents(&dc, "Backscatter").is_empty());
    // An ID no message in quarantine has: exit 1 and one sentence, as
    // `quarantine show` (not "Restored 0 messages", exit 0).
    let o = cli.run(&["restore", "--message-id", "<nowhere@test.invalid>"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no message with Message-ID \"<nowhere@test.invalid>\" in Backscatter")
            && err.contains("backscatter quarantine list"),
        "{}",
        text(&o)
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool, log: &dyn Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for {what}; log:\n{}",
        log()
    );
}

#[test]
fn a_message_restored_while_watch_runs_stays_restored() {
    let Some(dc) = Dovecot::start_or_skip("restore_while_watching") else {
        return;
    };
    let forged = hard_backscatter();
    let cli = Cli::new(&dc, "restore-watch");
    let mut child = cli
        .command(&["watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(cli.dir.join("watch.log")).unwrap())
        .spawn()
        .unwrap();
    let mut imap = dc.imap("alice");
    let in_mailbox = |dc: &Dovecot, mb: &str, m: &[u8]| contents(dc, mb).contains_key(&key(m));
    // The agent is up once it has quarantined a first message.
    imap.append("INBOX", &forged[7]);
    let log = || std::fs::read_to_string(cli.dir.join("watch.log")).unwrap_or_default();
    wait_for(
        "the agent to quarantine",
        Duration::from_secs(60),
        || in_mailbox(&dc, "Backscatter", &forged[7]),
        &log,
    );
    let o = cli.run(&["restore", "--message-id", &id_of(&forged[7])]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(in_mailbox(&dc, "INBOX", &forged[7]));
    // The agent works on: a later message (higher UID) is quarantined, so
    // it has looked at the restored one (whose new UID is lower) too.
    imap.append("INBOX", &forged[8]);
    wait_for(
        "the agent to go on",
        Duration::from_secs(60),
        || in_mailbox(&dc, "Backscatter", &forged[8]),
        &log,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(in_mailbox(&dc, "INBOX", &forged[7]), "restored, stays");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // A later sweep keeps it too.
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(in_mailbox(&dc, "INBOX", &forged[7]));
    assert!(!in_mailbox(&dc, "Backscatter", &forged[7]));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// Fault 7 of issue 11: on a server with neither MOVE nor UIDPLUS, `clean`
/// refuses before it journals anything, and so do `restore` (dry run or
/// not) and `watch` (at once, rather than retrying for ever), each with
/// the same sentence and exit status 1; `clean --dry-run` (which promised
/// moves `clean` then refused, fault 8) lists the verdicts, says none can
/// move, and exits 1 like `clean`; and a batch left unfinished is
/// settled by reading the messages back, never by trusting that UIDs a
/// server does not report have moved.
#[test]
fn no_journal_for_moves_that_never_happened() {
    use crate::harness::Options;
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip("no_move_no_uidplus");
        return;
    }
    // Dovecot advertising neither MOVE nor UIDPLUS after login.
    let dc = Dovecot::start_with(Options {
        extra_conf: Some(
            "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE SPECIAL-USE NAMESPACE\n}\n"
                .into(),
        ),
        ..Options::default()
    });
    let forged = hard_backscatter();
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX", &forged[..4]);
    let cli = Cli::new(&dc, "no-move");
    let o = cli.run(&["clean"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("neither MOVE nor UIDPLUS"),
        "{}",
        text(&o)
    );
    let refusal = |o: &Output| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{}", text(o));
        assert!(err.contains("neither MOVE nor UIDPLUS"), "{}", text(o));
        assert!(o.stdout.is_empty(), "nothing promised: {}", text(o));
    };
    let o = cli.run(&["clean", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("would move"), "{}", text(&o));
    assert!(
        out.contains("4 backscatter (none can be moved to Backscatter on this server)"),
        "{}",
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // One error (and the warning that the sent index is empty).
    assert_eq!(
        err.lines().filter(|l| !l.contains("warning:")).count(),
        1,
        "{}",
        text(&o)
    );
    assert!(err.contains("neither MOVE nor UIDPLUS"), "{}", text(&o));
    let o = cli.run(&["clean", "--dry-run", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["quarantined"], 4, "{}", text(&o));
    assert!(v["refused"]
        .as_str()
        .is_some_and(|r| r.contains("neither MOVE nor UIDPLUS")));
    for args in [
        &["restore", "--all"][..],
        &["restore", "--all", "--dry-run"],
    ] {
        refusal(&cli.run(args));
    }
    // watch stops at once (generous deadline for a loaded machine).
    let mut child = cli
        .command(&["watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("neither MOVE nor UIDPLUS"),
        "{}",
        text(&o)
    );
    let journal = cli.data().join("data/backscatter/journal-alice.jsonl");
    let j = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(!j.contains("\"quarantine\""), "no intent written: {j}");
    assert_eq!(contents(&dc, "INBOX"), count(&forged[..4]));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

#[test]
fn an_unfinished_batch_is_settled_by_reading_the_messages_back() {
    let Some(dc) = Dovecot::start_or_skip("reconcile_reads_back") else {
        return;
    };
    let forged = hard_backscatter();
    let mut imap = dc.imap("alice");
    let uids = imap.append_many("INBOX", &forged[..2]);
    let (_, uidvalidity, _) = imap.status("INBOX");
    let cli = Cli::new(&dc, "reconcile");
    // A crashed run's intents (hand-written, as the journal holds them):
    // one for a UID that never existed (a server answering SEARCH with
    // sequence numbers made one look moved), one for a message still in
    // INBOX, with a fingerprint that is not its own.
    let journal = cli.data().join("data/backscatter/journal-alice.jsonl");
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    let line = |uid: u32, fp: &str| {
        format!("{{\"ts\":1764460800,\"op\":\"quarantine\",\"batch\":\"crashed\",\"account\":\"alice\",\"mailbox\":\"INBOX\",\"uidvalidity\":{uidvalidity},\"uid\":{uid},\"to\":\"Backscatter\",\"fingerprint\":\"{fp}\"}}\n")
    };
    std::fs::write(
        &journal,
        line(9999, "00000000000000000000000000000000")
            + &line(uids[0], "11111111111111111111111111111111"),
    )
    .unwrap();
    // Any command that moves mail settles unfinished batches first.
    let o = cli.run(&["restore", "--all", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["restored"], 0, "{}", text(&o));
    let j = std::fs::read_to_string(&journal).unwrap();
    let settled: Vec<serde_json::Value> = j
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["op"] == "reconciled" && v["batch"] == "crashed")
        .collect();
    assert_eq!(settled.len(), 1, "{j}");
    assert!(settled[0].get("moved").is_none(), "nothing moved: {j}");
    // Both messages are where they were.
    assert_eq!(contents(&dc, "INBOX"), count(&forged[..2]));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// The generated script files nothing that carries `$NotBackscatter`
/// (imap4flags `hasflag`), judged by sieve-rs and by Pigeonhole's
/// `sieve-test`: a rule placed before it (hand-written here) sets the
/// keyword on one sender's mail.
#[test]
fn the_sieve_script_skips_messages_marked_not_backscatter() {
    use backscatter::sieve::{generate, run, Policy, DOVECOT_DEFAULT};
    let script = generate(&Policy {
        account: "test",
        quarantine: "Backscatter",
        sent_ids: &[],
        scan_ids: 0,
        recipients: &[],
        extensions: DOVECOT_DEFAULT,
        max_bytes: 1 << 20,
        generated_at: "2026-11-30",
        keep: &[],
    })
    .unwrap();
    let forged = hard_backscatter();
    let m = &forged[7];
    let marked = script.text.replacen(
        "\n\n",
        "\n\n# hand-written: an earlier rule keeps this mail\naddflag \"$NotBackscatter\";\n\n",
        1,
    );
    assert_ne!(marked, script.text);
    // sieve-rs: the null envelope sender of a bounce; sieve-test cannot
    // simulate it and takes the message's own headers.
    let from = "";
    assert_eq!(
        run(&script.text, m, from).unwrap().as_deref(),
        Some("Backscatter")
    );
    assert_eq!(run(&marked, m, from).unwrap(), None);
    // The same with Pigeonhole, as Dovecot runs it.
    if !std::path::Path::new("/usr/bin/sieve-test").exists() {
        eprintln!("sieve-test not installed: Pigeonhole half skipped");
        return;
    }
    let dir = tempdir("sieve-flag");
    let msg = dir.join("m.eml");
    std::fs::write(&msg, m).unwrap();
    let files = |text: &str, name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let o = std::process::Command::new("/usr/bin/sieve-test")
            .args(["-o", "mail_uid=nobody", "-o", "mail_gid=nogroup"])
            .arg(&p)
            .arg(&msg)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.contains("store message in folder: Backscatter")
    };
    assert!(files(&script.text, "plain.sieve"));
    assert!(!files(&marked, "marked.sieve"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Messages filed by the installed Sieve script over LMTP and messages
/// moved by `clean`: `quarantine list --json` shows exactly what the
/// mailbox holds, `show` explains one, and `restore --all` brings them
/// all back.
#[test]
fn quarantine_list_matches_the_mailbox_and_restore_empties_it() {
    use crate::harness::lmtp_deliver;
    let Some(dc) = Dovecot::start_or_skip("quarantine_list") else {
        return;
    };
    let forged = hard_backscatter();
    let cli = Cli::new(&dc, "quarantine-list");
    let mut imap = dc.imap("alice");
    imap.create("Backscatter");
    let o = cli.run(&["sieve", "install"]);
    assert!(o.status.success(), "{}", text(&o));
    // Filed by the server: bounces from the null sender.
    for m in &forged[5..8] {
        lmtp_deliver(dc.lmtp_port, "", "alice@example.test", m).unwrap();
    }
    assert_eq!(imap.select("Backscatter"), 3, "the script filed them");
    // Moved by a sweep (journaled).
    imap.append_many("INBOX", &forged[..5]);
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let in_q = imap.fetch_message_ids("Backscatter");
    assert_eq!(in_q.len(), 8);

    let o = cli.run(&["quarantine", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, Option<String>)> = listed
        .iter()
        .map(|v| {
            (
                v["uid"].as_u64().unwrap(),
                v["message_id"].as_str().map(str::to_string),
            )
        })
        .collect();
    let want: Vec<(u64, Option<String>)> = in_q
        .iter()
        .map(|(u, id)| (u64::from(*u), id.clone()))
        .collect();
    // Same UIDs; the same Message-ID where the message has a well-formed
    // one, null where it has none.
    assert_eq!(got.len(), want.len(), "{}", text(&o));
    for ((gu, gid), (wu, wid)) in got.iter().zip(&want) {
        assert_eq!(gu, wu);
        match wid {
            Some(w) => assert!(
                gid.as_deref().is_some_and(|g| g.contains(w.as_str())),
                "{gid:?} vs {w}"
            ),
            None => assert!(
                gid.is_none() || !gid.as_deref().unwrap().contains('@'),
                "{gid:?}"
            ),
        }
    }
    assert_eq!(
        listed.iter().filter(|v| v["message_id"].is_null()).count(),
        3,
        "two corpus bounces and one stripped: {}",
        text(&o)
    );
    let by_source = |s: &str| listed.iter().filter(|v| v["source"] == s).count();
    assert_eq!((by_source("journal"), by_source("server")), (5, 3));
    for v in listed.iter().filter(|v| v["source"] == "server") {
        assert!(
            v["reasons"][0]
                .as_str()
                .unwrap()
                .starts_with("filed by the server's script; classified now as backscatter"),
            "{v}"
        );
        assert!(v["kind"].is_string(), "{v}");
    }

    // The human listing and --kind.
    let o = cli.run(&["quarantine", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("8 messages in Backscatter."));
    let o = cli.run(&["quarantine", "list", "--kind", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // One message explained.
    let uid = listed[0]["uid"].to_string();
    let o = cli.run(&["quarantine", "show", &uid]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Verdict now: backscatter"), "{out}");
    let o = cli.run(&["quarantine", "show", "<nothing@nowhere>"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Newcomer round 3, fault 10: ordinary mail put there by hand (two
    // hand-written messages, no script, no journal) is not backscatter's.
    let foreign: Vec<Vec<u8>> = (1..=2)
        .map(|n| {
            format!(
                "From: Friend <friend@example.org>\r\nTo: alice@example.test\r\nSubject: lunch {n}\r\nMessage-ID: <lunch-{n}@example.org>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nSee you at noon.\r\n"
            )
            .into_bytes()
        })
        .collect();
    imap.append_many("Backscatter", &foreign);

    // Everything backscatter moved goes back: journaled ones where they
    // came from, filed ones to INBOX; the foreign mail stays.
    let o = cli.run(&["restore", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("2 messages in Backscatter were not moved there by backscatter"),
        "{}",
        text(&o)
    );
    assert_eq!(imap.select("INBOX"), 8);
    let o = cli.run(&["quarantine", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let left: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(left.len(), 2, "{}", text(&o));
    for v in &left {
        assert_eq!(v["source"], "other", "{v}");
        assert!(
            v["reasons"][0]
                .as_str()
                .unwrap()
                .starts_with("not moved by backscatter"),
            "{v}"
        );
    }
    // Fault 7: one named by UID comes back, with the UIDVALIDITY check.
    let uid = left[0]["uid"].to_string();
    let validity = left[0]["uidvalidity"].as_u64().unwrap();
    let wrong = (validity + 1).to_string();
    let o = cli.run(&["restore", "--uid", &uid, "--uidvalidity", &wrong]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("renumbered"), "{}", text(&o));
    let o = cli.run(&["restore", "--uid", "999999"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = cli.run(&[
        "restore",
        "--uid",
        &uid,
        "--uidvalidity",
        &validity.to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(imap.select("INBOX"), 9);
    assert_eq!(contents(&dc, "Backscatter").len(), 1);
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// `clean --each` prints one JSON line per message before the summary,
/// `clean --json` only the summary, and the human dry run names the
/// legitimate responses it keeps (the user's own delivery problems).
#[test]
fn clean_each_and_the_dry_run_listing() {
    let Some(dc) = Dovecot::start_or_skip("clean_each") else {
        return;
    };
    let f = flood(300);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let want = |d: Decision| f.expected.values().filter(|v| **v == d).count();
    let cli = Cli::new(&dc, "clean-each");

    let o = cli.run(&["clean", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(want(Decision::Legitimate) > 0);
    assert_eq!(
        out.matches("would keep  uid").count(),
        want(Decision::Legitimate),
        "{out}"
    );
    assert_eq!(
        out.matches("would move  uid").count(),
        want(Decision::Backscatter)
    );

    let o = cli.run(&["clean", "--dry-run", "--json", "--each"]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 301, "one per message, then the summary");
    let summary = &lines[300];
    assert_eq!(summary["scanned"], 300);
    let per = &lines[..300];
    let uids: std::collections::BTreeSet<u64> =
        per.iter().map(|v| v["uid"].as_u64().unwrap()).collect();
    assert_eq!(uids.len(), 300);
    let n = |action: &str| per.iter().filter(|v| v["action"] == action).count();
    assert_eq!(n("would_move"), want(Decision::Backscatter));
    assert_eq!(n("kept"), 300 - want(Decision::Backscatter));
    let verdicts = |d: &str| per.iter().filter(|v| v["verdict"] == d).count();
    assert_eq!(verdicts("backscatter"), want(Decision::Backscatter));
    assert_eq!(verdicts("legitimate"), want(Decision::Legitimate));
    assert_eq!(verdicts("normal"), want(Decision::Normal));
    assert!(per.iter().all(|v| v["reasons"].is_array()));

    // --json alone: exactly one object, and the sweep happens.
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["quarantined"], want(Decision::Backscatter));
    assert_eq!(v["errors"], 0);
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// Ctrl-C (SIGINT) in `clean`: the batch in flight is finished, the
/// command says so and exits 130, every message is in exactly one place,
/// and the next run finishes the sweep.
#[test]
fn ctrl_c_in_clean_finishes_the_batch_and_exits_130() {
    let Some(dc) = Dovecot::start_or_skip("clean_ctrl_c") else {
        return;
    };
    let f = flood(1500);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let cli = Cli::new(&dc, "clean-ctrl-c");
    let logins = || dc.log_tail(400).matches("Login: user=<alice>").count();
    let before = logins();
    let child = cli
        .command(&["clean"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once it has logged in, its Ctrl-C handler is in place.
    wait_for(
        "clean to log in",
        Duration::from_secs(60),
        || logins() > before,
        &|| dc.log_tail(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(0) {
        // The sweep was over before the signal: nothing to interrupt.
        eprintln!("clean finished before SIGINT; {}", text(&o));
    } else {
        assert_eq!(o.status.code(), Some(130), "{}", text(&o));
        assert!(
            err.contains("interrupted: ") && err.contains("moved, run again to finish"),
            "{err}"
        );
    }
    // Every message in one place; the rest is finished by a rerun.
    let w = crate::sweep::where_is_settled(&dc, "alice");
    assert!(w.values().all(|v| v.len() == 1), "a message in two places");
    assert_eq!(w.len(), 1500);
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    crate::sweep::check_placement(&dc, &f, "alice");
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// `backscatter keep` adds to the config file without disturbing it;
/// `clean` then leaves that sender's automated mail alone, and the
/// generated Sieve script carries the entry.
#[test]
fn the_keep_list_is_honoured_by_clean_and_the_sieve_script() {
    let Some(dc) = Dovecot::start_or_skip("keep_list") else {
        return;
    };
    let forged = hard_backscatter();
    // The sender's domain of one real corpus bounce.
    let kept = &forged[0];
    let from = mail_parser::MessageParser::default()
        .parse_headers(kept)
        .and_then(|m| {
            m.from()
                .and_then(|a| a.first())
                .and_then(|a| a.address.as_deref().map(str::to_string))
        })
        .unwrap();
    let domain = from.rsplit_once('@').unwrap().1.to_lowercase();
    let others: Vec<Vec<u8>> = forged[1..]
        .iter()
        .filter(|m| !String::from_utf8_lossy(m).to_lowercase().contains(&domain))
        .cloned()
        .collect();
    assert!(!others.is_empty());
    let mut imap = dc.imap("alice");
    imap.append("INBOX", kept);
    imap.append_many("INBOX", &others);
    let cli = Cli::new(&dc, "keep");
    let before = std::fs::read_to_string(&cli.cfg).unwrap();
    std::fs::write(&cli.cfg, format!("# hand-written comment\n{before}")).unwrap();

    let o = cli.run(&["keep", &domain]);
    assert!(o.status.success(), "{}", text(&o));
    let after = std::fs::read_to_string(&cli.cfg).unwrap();
    assert!(after.starts_with("# hand-written comment\n"), "{after}");
    assert!(after.contains(&format!("keep = [\"{domain}\"]")), "{after}");
    let o = cli.run(&["keep", &format!("@{domain}")]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("already"));
    let o = cli.run(&["keep", "not a domain"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A bare top-level domain would keep everything under it.
    let tld = domain.rsplit('.').next().unwrap().to_string();
    let o = cli.run(&["keep", &tld]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("top-level domain"),
        "{}",
        text(&o)
    );
    // So would a public suffix (newcomer round 3 #4: `co.jp` was taken).
    for suffix in ["co.jp", "co.uk"] {
        let o = cli.run(&["keep", suffix]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("is a public suffix"),
            "{}",
            text(&o)
        );
    }

    // Kept by the keep list: said so, by entry, apart from restored mail;
    // listed by the dry run and named in `--each`'s reasons.
    let o = cli.run(&["clean", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("Kept 1 message by your keep list ({domain}: 1).")),
        "{out}"
    );
    assert!(!out.contains("you restored before"), "{out}");
    assert!(
        out.contains(&format!("(kept: matches keep entry {domain})")),
        "{out}"
    );
    let o = cli.run(&["clean", "--dry-run", "--json", "--each"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("kept: matches keep entry"))
        .unwrap_or_else(|| panic!("no reason names the entry: {out}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["action"], "kept_by_user", "{line}");
    assert_eq!(
        v["reasons"][0],
        format!("kept: matches keep entry {domain}"),
        "{line}"
    );

    // The dry run predicts the real run: the keep list applies to both.
    let o = cli.run(&["clean", "--dry-run", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kept_by_user"], 1, "{}", text(&o));
    assert_eq!(v["kept_by_keep_list"][&domain], 1, "{}", text(&o));
    assert_eq!(v["quarantined"], others.len(), "{}", text(&o));

    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kept_by_user"], 1, "{}", text(&o));
    assert_eq!(v["quarantined"], others.len(), "{}", text(&o));
    assert_eq!(contents(&dc, "INBOX"), count(std::slice::from_ref(kept)));

    let o = cli.run(&["sieve", "generate"]);
    assert!(o.status.success(), "{}", text(&o));
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("not on your keep list"), "{script}");
    assert!(script.contains(&format!("\"{domain}\"")), "{script}");
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// `-q` drops notes (newcomer round 3 #15n: a rerun's `clean -q` still
/// printed "Skipped N messages an earlier sweep judged"); the result line
/// stays, and without `-q` the note is there.
#[test]
fn clean_q_prints_the_result_without_the_rerun_note() {
    let Some(dc) = Dovecot::start_or_skip("clean_quiet") else {
        return;
    };
    let f = flood(60);
    dc.imap("alice").append_many("INBOX", &f.inbox);
    let cli = Cli::new(&dc, "clean-quiet");
    let o = cli.run(&["clean"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli.run(&["clean", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("an earlier sweep judged"),
        "{}",
        text(&o)
    );
    let o = cli.run(&["clean", "-q", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("an earlier sweep judged"), "{}", text(&o));
    assert!(out.contains("Dry run:"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// The same server through another port (an SSH tunnel, a proxy): the
/// next `clean` is a rerun, not a full re-read (newcomer round 3 #15a:
/// `"full_reason":"inputs"` and every message read again).
#[test]
fn a_port_change_alone_does_not_force_a_full_sweep() {
    let Some(dc) = Dovecot::start_or_skip("clean_port") else {
        return;
    };
    let f = flood(60);
    dc.imap("alice").append_many("INBOX", &f.inbox);
    let cli = Cli::new(&dc, "clean-port");
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let proxy = backscatter_testkit::quirk::QuirkProxy::start(
        dc.imap_port,
        backscatter_testkit::quirk::Rules::default(),
    );
    let cfg = std::fs::read_to_string(&cli.cfg).unwrap().replace(
        &format!("port = {}\n", dc.imap_port),
        &format!("port = {}\n", proxy.port),
    );
    std::fs::write(&cli.cfg, cfg).unwrap();
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sweep"], "rerun", "{v}");
    assert!(v["skipped_known"].as_u64().unwrap() > 0, "{v}");
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// Ctrl-C (SIGINT) in `restore`: as in `clean`, the batch in flight is
/// finished, exit 130, nothing in two places, and a rerun finishes.
#[test]
fn ctrl_c_in_restore_finishes_the_batch_and_exits_130() {
    let Some(dc) = Dovecot::start_or_skip("restore_ctrl_c") else {
        return;
    };
    let f = flood(1500);
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX", &f.inbox);
    let cli = Cli::new(&dc, "restore-ctrl-c");
    let t = Instant::now();
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let moved = v["quarantined"].as_u64().unwrap();
    eprintln!(
        "clean: {moved} of 1500 moved in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(moved > 500, "more than one batch to restore");
    let logins = || dc.log_tail(400).matches("Login: user=<alice>").count();
    let before = logins();
    let t = Instant::now();
    let child = cli
        .command(&["restore", "--all"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "restore to log in",
        Duration::from_secs(60),
        || logins() > before,
        &|| dc.log_tail(20),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    if o.status.code() == Some(0) {
        eprintln!("restore finished before SIGINT; {}", text(&o));
    } else {
        assert_eq!(o.status.code(), Some(130), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("moved, run again to finish"), "{err}");
    }
    let w = crate::sweep::where_is_settled(&dc, "alice");
    assert_eq!(w.len(), 1500);
    assert!(w.values().all(|v| v.len() == 1), "a message in two places");
    let o = cli.run(&["restore", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!(
        "restore of {moved} (interrupted once, then finished) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let w = crate::sweep::where_is_settled(&dc, "alice");
    assert!(w.values().all(|v| v == &vec!["INBOX".to_string()]));
    let _ = std::fs::remove_dir_all(&cli.dir);
}

/// A real sample from `tests/fixtures/extra/` (licence beside it).
fn extra(path: &str) -> Vec<u8> {
    std::fs::read(crate::util::root().join("tests/fixtures/extra").join(path)).unwrap()
}

/// The quarantine's listing as JSON objects.
fn listed(cli: &Cli) -> Vec<serde_json::Value> {
    let o = cli.run(&["quarantine", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `quarantine list` shows subjects and senders as a mail client does:
/// RFC 2047 encoded words decoded (real bounces with a windows-1257 Q
/// subject and a UTF-8 B subject), and nothing from a message reaches
/// the terminal as a control character (a hand-written bounce hides an
/// escape sequence and a bidi override in encoded words).
#[test]
fn quarantine_list_decodes_encoded_words_and_keeps_the_terminal_safe() {
    let Some(dc) = Dovecot::start_or_skip("quarantine_decode") else {
        return;
    };
    // Real: Florian Schulze's `bounced` (MIT) and flufl.bounce (Apache-2.0).
    let latvian = extra("bounced/bounces-tt_bounce_11.eml");
    let russian = extra("flufl-bounce/simple_39.eml");
    // Hand-written (not a real message): an NDR whose encoded From and
    // Subject carry ESC sequences and U+202E.
    let hostile = b"From: =?UTF-8?B?TWFpbCBEZWxpdmVyeSBTeXN0ZW0=?= <MAILER-DAEMON@mx.example.org>\r\n\
To: alice@example.test\r\n\
Subject: =?UTF-8?B?VW56dXN0ZWxsYmFyOiBHcsO8w59l?= =?UTF-8?Q?=1B]0;owned=07=1B[2J_x=E2=80=AEfdp.exe?=\r\n\
Date: Mon, 30 Nov 2026 01:00:00 +0000\r\n\
Message-ID: <hostile-1@mx.example.org>\r\n\
Auto-Submitted: auto-replied\r\n\
X-Failed-Recipients: bob@example.net\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
This is the mail system at host mx.example.org.\r\n\
I'm sorry to have to inform you that your message could not\r\n\
be delivered to one or more recipients.\r\n"
        .to_vec();
    let msgs = [latvian, russian, hostile];
    let cli = Cli::new(&dc, "quarantine-decode");
    dc.imap("alice").append_many("INBOX", &msgs);
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let parser = mail_parser::MessageParser::new();
    let want: Vec<String> = msgs
        .iter()
        .map(|m| parser.parse(m).unwrap().subject().unwrap().to_string())
        .collect();
    assert!(want.iter().all(|s| !s.contains("=?")), "{want:?}");
    let json = listed(&cli);
    assert_eq!(json.len(), 3, "{json:?}");
    let subjects: Vec<&str> = json
        .iter()
        .map(|v| v["subject"].as_str().unwrap())
        .collect();
    for w in &want {
        assert!(subjects.contains(&w.as_str()), "{w:?} not in {subjects:?}");
    }
    let senders: Vec<&str> = json.iter().map(|v| v["sender"].as_str().unwrap()).collect();
    assert!(
        senders.contains(&"Mail Delivery System <MAILER-DAEMON@mx.example.org>"),
        "{senders:?}"
    );
    assert!(senders.iter().all(|s| !s.contains("=?")), "{senders:?}");

    let o = cli.run(&["quarantine", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains("=?"), "{out}");
    assert!(
        !out.chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202E}'),
        "{out:?}"
    );
    assert!(out.contains("Unzustellbar: Grüße"), "{out}");
    assert!(out.contains("Mail Delivery System <MAIL"), "{out}");
    // The Latvian and Russian subjects, as far as the column shows them.
    for w in &want[..2] {
        let head: String = w.chars().take(20).collect();
        assert!(out.contains(&head), "{head:?} not in\n{out}");
    }
    // `show` too.
    let o = cli.run(&["quarantine", "show", "<hostile-1@mx.example.org>"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(out.contains("Subject      Unzustellbar: Grüße"), "{out}");
    assert!(
        !out.chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202E}'),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(cli.data());
}

/// `quarantine show` of a Message-ID that several messages in quarantine
/// carry (a real bounce delivered twice: same Message-ID, same
/// fingerprint; and another bounce given the same ID) shows each of them,
/// after a line naming their UIDs; by UID it shows exactly that one.
#[test]
fn quarantine_show_of_a_shared_message_id_shows_each() {
    let Some(dc) = Dovecot::start_or_skip("quarantine_show_dups") else {
        return;
    };
    let twice = corpus("lhost-postfix-03.eml");
    let id = "<20140701045401.X0000000000000@e1.example.ne.jp>".to_string();
    assert!(
        String::from_utf8_lossy(&twice).contains(&format!("Message-Id: {id}")),
        "the sample's own Message-ID"
    );
    let other = with_message_id(&corpus("lhost-exim-01.eml"), &id);
    let cli = Cli::new(&dc, "quarantine-show-dups");
    dc.imap("alice")
        .append_many("INBOX", &[twice.clone(), other, twice]);
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let json = listed(&cli);
    let uids: Vec<u64> = json
        .iter()
        .filter(|v| v["message_id"].as_str() == Some(id.as_str()))
        .map(|v| v["uid"].as_u64().unwrap())
        .collect();
    assert_eq!(uids.len(), 3, "{json:?}");

    let o = cli.run(&["quarantine", "show", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let shown: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("UID "))
        .map(|u| u.trim().parse().unwrap())
        .collect();
    assert_eq!(shown, uids, "{out}");
    assert_eq!(out.matches("Verdict now:").count(), 3, "{out}");
    let uid_list: Vec<String> = uids.iter().map(u64::to_string).collect();
    assert!(
        out.lines().next().unwrap().contains(&format!(
            "3 messages in Backscatter have Message-ID {id} (UIDs {})",
            uid_list.join(", ")
        )),
        "{out}"
    );
    // Without angle brackets, as JSON: one object per message.
    let bare = id.trim_matches(|c| c == '<' || c == '>');
    let o = cli.run(&["quarantine", "show", "--json", bare]);
    assert!(o.status.success(), "{}", text(&o));
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        objs.iter()
            .map(|v| v["uid"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        uids
    );
    assert!(objs
        .iter()
        .all(|v| v["verdict"]["verdict"] == "backscatter"));
    // By UID: that one alone.
    let o = cli.run(&["quarantine", "show", &uids[1].to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.matches("Verdict now:").count(), 1, "{out}");
    assert!(
        out.lines().next() == Some(format!("UID          {}", uids[1]).as_str()),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(cli.data());
}

/// `clean --dry-run` predicts the sweep: a message the user restored on a
/// server whose mailbox keeps no keywords is on the local list
/// (`kept-ACCOUNT.jsonl`) only, and the dry run leaves it where the run
/// does (it used to count it as "would move"). Simulated on Dovecot by
/// taking `$NotBackscatter` off and writing the list line `restore`
/// writes on such a server.
#[test]
fn clean_dry_run_honours_the_local_list_of_restored_messages() {
    let Some(dc) = Dovecot::start_or_skip("dry_run_kept") else {
        return;
    };
    let forged = hard_backscatter();
    let cli = Cli::new(&dc, "dry-run-kept");
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX", &forged[7..9]);
    let summary = |args: &[&str]| -> serde_json::Value {
        let o = cli.run(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
    };
    assert_eq!(summary(&["clean", "--json"])["quarantined"], 2);
    let o = cli.run(&["restore", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    // The journal's fingerprints of the two; the first goes on the list.
    let journal = cli.data().join("data/backscatter/journal-alice.jsonl");
    let fingerprints: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["op"] == "quarantine")
        .filter_map(|v| v["fingerprint"].as_str().map(str::to_string))
        .collect();
    assert_eq!(fingerprints.len(), 2, "{fingerprints:?}");
    imap.store("INBOX", "1:*", "-FLAGS ($NotBackscatter)");
    std::fs::write(
        cli.data().join("data/backscatter/kept-alice.jsonl"),
        format!("{{\"ts\":1,\"fingerprint\":\"{}\"}}\n", fingerprints[0]),
    )
    .unwrap();
    let dry = summary(&["clean", "--dry-run", "--json"]);
    let run = summary(&["clean", "--json"]);
    for k in ["scanned", "quarantined", "legitimate", "normal", "errors"] {
        assert_eq!(dry[k], run[k], "{k}: dry run {dry}, run {run}");
    }
    assert_eq!(run["quarantined"], 1, "{run}");
    assert_eq!(imap.select("INBOX"), 1);
    let _ = std::fs::remove_dir_all(cli.data());
}

/// `restore --since DAY` east of UTC (TZ=Pacific/Kiritimati, +14:00 on
/// the child process): DAY is the user's day, from local midnight. What
/// entered quarantine after local midnight (moved by `clean` just now, or
/// filed by the server's script with an INTERNALDATE half an hour after
/// it: 13.5 hours before that date's UTC midnight, which the old reading
/// of DAY used) is restored; what came half an hour before local midnight
/// stays. `quarantine list` prints the local times with their offset.
#[test]
fn restore_since_a_day_east_of_utc_is_the_users_day() {
    let Some(dc) = Dovecot::start_or_skip("restore_since_local_day") else {
        return;
    };
    const ZONE: &str = "Pacific/Kiritimati";
    let tz = backscatter::day::TimeZone::get(ZONE).expect("tzdata (scripts/test installs it)");
    let forged = crate::flood::forged(&flood(60), 6);
    assert_eq!(forged.len(), 6);
    let (before, rest) = forged.split_at(2);
    let (after, swept) = rest.split_at(2);
    // The user's day, and its local midnight (computed once: the CLI
    // gets the date, not "today", so a midnight passing meanwhile changes
    // nothing).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = backscatter::day::date(now, &tz);
    let midnight = backscatter::day::parse(&today, now, &tz).unwrap();
    assert_eq!(
        backscatter::day::time(midnight, &tz),
        format!("{today} 00:00 +14:00")
    );
    let cli = Cli::new(&dc, "restore-since-local");
    let mut imap = dc.imap("alice");
    // Moved by a sweep now: after local midnight.
    imap.append_many("INBOX", swept);
    let o = cli.run(&["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(contents(&dc, "Backscatter"), count(swept), "{}", text(&o));
    // Filed by the server's script half an hour before and after local
    // midnight (INTERNALDATE, in UTC).
    for (ts, msgs) in [(midnight - 1800, before), (midnight + 1800, after)] {
        for m in msgs {
            let mut cmd = format!(
                "APPEND Backscatter ({}) \"{}\" {{{}+}}\r\n",
                backscatter::quarantine::FILED_BY_SCRIPT,
                crate::report::imap_datetime(ts),
                m.len()
            )
            .into_bytes();
            cmd.extend_from_slice(m);
            imap.command_bytes(&cmd).unwrap();
        }
    }
    let tz_run = |args: &[&str]| cli.command(args).env("TZ", ZONE).output().unwrap();

    // The listing: local times with the offset, and --since counts the
    // user's day.
    let o = tz_run(&["quarantine", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{today} 00:30 +14:00")),
        "the filed message after midnight, in local time: {out}"
    );
    assert_eq!(out.matches(" +14:00 ").count(), 6, "{out}");
    let o = tz_run(&["quarantine", "list", "--since", &today]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("4 messages in Backscatter shown of 6.\n"),
        "{}",
        text(&o)
    );

    // The restore.
    let o = tz_run(&["restore", "--since", &today, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut want: Vec<Vec<u8>> = after.to_vec();
    want.extend_from_slice(swept);
    assert_eq!(
        contents(&dc, "INBOX"),
        count(&want),
        "after local midnight: {}",
        text(&o)
    );
    assert_eq!(
        contents(&dc, "Backscatter"),
        count(before),
        "before local midnight, left: {}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&cli.dir);
}
