//! Reruns of `clean` against a real Dovecot: after a sweep, the next one
//! reads only what arrived or changed since (the mark of `rerun`), and its
//! verdicts are those a full sweep gives. A renumbered mailbox, `--full`,
//! a restored message, a removed `$NotBackscatter`, and a server without
//! CONDSTORE. (Kills mid-sweep followed by reruns: `sweep.rs`.)
//!
//! The mail is the sweep tests' flood: real public bounces, auto-replies
//! and ordinary mail from the corpora (see `flood.rs`).

use crate::harness::{password, Dovecot, Options};
use crate::sweep::{account, flood, tempdir, Flood};
use backscatter::clean::{self, CleanOptions, Dirs, Summary};
use backscatter::config::Account;
use backscatter::rerun::Full;
use backscatter::restore::{self, RestoreFilter};
use backscatter::secret::Secret;
use backscatter::Decision;
use std::collections::HashMap;
use std::path::Path;

/// Dovecot's own capability list without CONDSTORE and QRESYNC (and
/// without COMPRESS, which `imap_capability` also drops): a server on
/// which a rerun relies on the UID mark alone.
const NO_CONDSTORE_CONF: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT UNSELECT CHILDREN NAMESPACE UIDPLUS MOVE LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES WITHIN LIST-STATUS SPECIAL-USE LITERAL+\n";

fn dirs(base: &Path) -> Dirs {
    Dirs {
        data: base.join("data"),
        state: base.join("state"),
    }
}

fn sweep(a: &Account, d: &Dirs, mailbox: &str, full: bool) -> Summary {
    let opts = CleanOptions {
        mailbox: mailbox.into(),
        full,
        ..CleanOptions::default()
    };
    let secret = Secret::new(password(&a.username).into());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(clean::clean(a, &secret, &opts, d, &mut |_, _| {}))
        .unwrap()
}

/// Message-ID -> the mailboxes (of `source` and Backscatter) holding it.
fn places(dc: &Dovecot, user: &str, source: &str) -> HashMap<String, Vec<String>> {
    crate::sweep::where_is_in(dc, user, &[source, "Backscatter"])
}

/// Each of `ids` is in exactly one place: quarantine when the classifier
/// calls its whole message backscatter, else `source`. Returns how many
/// are in quarantine.
fn check(dc: &Dovecot, user: &str, source: &str, f: &Flood, ids: &[String]) -> usize {
    let w = places(dc, user, source);
    let mut wrong = Vec::new();
    let mut q = 0;
    for id in ids {
        let want = if f.expected[id] == Decision::Backscatter {
            q += 1;
            "Backscatter"
        } else {
            source
        };
        let got = w.get(id).cloned().unwrap_or_default();
        if got != [want] {
            wrong.push(format!("{id}: in {got:?}, expected {want}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misplaced:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(15)].join("\n")
    );
    q
}

/// The outer Message-IDs of flood messages `range` (the flood's own
/// naming).
fn ids(f: &Flood, range: std::ops::Range<usize>) -> Vec<String> {
    assert!(range.end <= f.inbox.len());
    range.map(|i| format!("<flood-{i}@test.invalid>")).collect()
}

/// The flood sweep, then a rerun with nothing new (no message read, a
/// few round trips), then 100 new arrivals (only they are read, and end
/// where a full sweep puts them), then `--full` (reads everything, finds
/// nothing more to move).
#[test]
fn a_rerun_reads_only_new_mail_with_the_verdicts_of_a_full_sweep() {
    let Some(dc) = Dovecot::start_or_skip("rerun_reads_only_new_mail") else {
        return;
    };
    let (first, late) = (1500, 100);
    let f = flood(first + late);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox[..first]);
    let a = account(&dc, "alice");
    let base = tempdir("rerun");
    let d = dirs(&base);

    let s1 = sweep(&a, &d, "INBOX", false);
    assert_eq!(s1.full, Some(Full::First));
    assert_eq!(s1.scanned, first);
    let q1 = check(&dc, "alice", "INBOX", &f, &ids(&f, 0..first));
    assert_eq!(s1.quarantined, q1);
    assert!(q1 > 0 && q1 < first, "{q1}");

    // Nothing new: no message read.
    let s2 = sweep(&a, &d, "INBOX", false);
    eprintln!(
        "rerun, nothing new: {} bytes, {} round trips (the sweep: {} bytes, {} round trips)",
        s2.bytes_fetched, s2.round_trips, s1.bytes_fetched, s1.round_trips
    );
    assert_eq!(s2.full, None);
    assert_eq!((s2.scanned, s2.quarantined), (0, 0));
    assert_eq!(s2.skipped_known, first - q1);
    // Login, capabilities, namespace, the Sent mailbox's check, SELECT,
    // LOGOUT: no FETCH at all.
    assert!(s2.bytes_fetched < 8 * 1024, "{}", s2.bytes_fetched);
    assert!(s2.round_trips <= 12, "{}", s2.round_trips);

    // New arrivals: only they are read, and go where a full sweep puts
    // them.
    imap.append_many("INBOX", &f.inbox[first..]);
    let s3 = sweep(&a, &d, "INBOX", false);
    assert_eq!(s3.full, None);
    assert_eq!(s3.scanned, late);
    assert_eq!(s3.skipped_known, first - q1);
    let q = check(&dc, "alice", "INBOX", &f, &ids(&f, 0..first + late));
    assert_eq!(s3.quarantined, q - q1);

    // --full reads every message again and agrees: nothing more to move.
    let s4 = sweep(&a, &d, "INBOX", true);
    assert_eq!(s4.full, Some(Full::Requested));
    assert_eq!(s4.scanned, first + late - q);
    assert_eq!(s4.quarantined, 0);
    assert_eq!(s4.skipped_known, 0);
    // ... and leaves a mark as good as the first sweep's.
    let s5 = sweep(&a, &d, "INBOX", false);
    assert_eq!((s5.full, s5.scanned), (None, 0));
    let _ = std::fs::remove_dir_all(&base);
}

/// A mailbox deleted and created again under the same name has a new
/// UIDVALIDITY, and its messages get UIDs the mark already covers: the
/// rerun must read them all.
#[test]
fn a_renumbered_mailbox_is_read_whole() {
    let Some(dc) = Dovecot::start_or_skip("rerun_renumbered_mailbox") else {
        return;
    };
    let f = flood(300);
    let mut imap = dc.imap("bob");
    imap.append_many("Sent", &f.sent);
    imap.create("Flood");
    imap.append_many("Flood", &f.inbox[..200]);
    let (_, validity, _) = imap.status("Flood");
    let a = account(&dc, "bob");
    let base = tempdir("rerun-renumbered");
    let d = dirs(&base);
    let s = sweep(&a, &d, "Flood", false);
    assert_eq!(s.scanned, 200);
    check(&dc, "bob", "Flood", &f, &ids(&f, 0..200));

    imap.select("INBOX");
    imap.command("DELETE Flood").unwrap();
    imap.create("Flood");
    imap.append_many("Flood", &f.inbox[200..]);
    let (_, renumbered, next) = imap.status("Flood");
    assert_ne!(renumbered, validity);
    assert!(next <= 101, "the new UIDs are below the old mark: {next}");
    let s = sweep(&a, &d, "Flood", false);
    assert_eq!(s.full, Some(Full::Uidvalidity));
    assert_eq!(s.scanned, 100);
    check(&dc, "bob", "Flood", &f, &ids(&f, 200..300));
    let _ = std::fs::remove_dir_all(&base);
}

/// A restored message comes back with a new UID above the mark and
/// `$NotBackscatter`: the rerun reads it and keeps it. When the user takes
/// the keyword away, the next rerun reads it again and moves it, as a
/// full sweep would. With and without CONDSTORE.
fn restored_then_unmarked(test: &str, options: Options, condstore: bool) {
    let Some(dc) = Dovecot::start_with_or_skip(test, options) else {
        return;
    };
    let f = flood(300);
    let mut imap = dc.imap("carol");
    assert_eq!(imap.has_capability("CONDSTORE"), condstore);
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let a = account(&dc, "carol");
    let base = tempdir("rerun-restored");
    let d = dirs(&base);
    let secret = Secret::new(password("carol").into());
    let s = sweep(&a, &d, "INBOX", false);
    let q = check(&dc, "carol", "INBOX", &f, &ids(&f, 0..300));
    assert_eq!(s.quarantined, q);

    let one = ids(&f, 0..300)
        .into_iter()
        .find(|id| f.expected[id] == Decision::Backscatter)
        .unwrap();
    let r = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(restore::restore(
            &a,
            &secret,
            &RestoreFilter::MessageId(one.clone()),
            &d,
        ))
        .unwrap();
    assert_eq!(r.restored, 1);

    let s = sweep(&a, &d, "INBOX", false);
    assert_eq!(s.full, None);
    assert_eq!((s.scanned, s.kept_by_user, s.quarantined), (1, 1, 0));
    assert_eq!(places(&dc, "carol", "INBOX")[&one], ["INBOX"]);
    let s = sweep(&a, &d, "INBOX", false);
    assert_eq!((s.scanned, s.kept_by_user), (0, 0), "nothing changed");

    // The user takes the keyword away (another client, a filter).
    let uid = imap
        .fetch_message_ids("INBOX")
        .into_iter()
        .find(|(_, id)| id.as_deref() == Some(one.as_str()))
        .map(|(u, _)| u)
        .unwrap();
    imap.store("INBOX", &uid.to_string(), "-FLAGS ($NotBackscatter)");
    let s = sweep(&a, &d, "INBOX", false);
    assert_eq!(s.full, None);
    assert_eq!((s.scanned, s.quarantined), (1, 1));
    assert_eq!(places(&dc, "carol", "INBOX")[&one], ["Backscatter"]);
    check(&dc, "carol", "INBOX", &f, &ids(&f, 0..300));
    // A full sweep agrees.
    let s = sweep(&a, &d, "INBOX", true);
    assert_eq!(s.quarantined, 0);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_restored_message_is_kept_until_its_keyword_goes() {
    restored_then_unmarked("rerun_restored", Options::default(), true);
}

#[test]
fn without_condstore_the_uid_mark_alone_does() {
    restored_then_unmarked(
        "rerun_without_condstore",
        Options {
            extra_conf: Some(NO_CONDSTORE_CONF.to_string()),
            ..Options::default()
        },
        false,
    );
}

/// `clean --json` says what kind of sweep ran and what it skipped; a dry
/// run and `--since` use the mark but never advance it; the mark is a
/// private file.
#[test]
fn the_command_line_reports_reruns_and_keeps_the_mark_private() {
    let Some(dc) = Dovecot::start_or_skip("rerun_cli") else {
        return;
    };
    let f = flood(200);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox[..150]);
    let base = tempdir("rerun-cli");
    let cfg = base.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"BS_TEST_PASSWORD\"\n",
            dc.imap_port
        ),
    )
    .unwrap();
    let run = |args: &[&str]| -> serde_json::Value {
        let o = crate::util::backscatter(&base, &cfg, args)
            .env("BS_TEST_PASSWORD", "alicepw")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    };
    // A dry run records nothing: the first real run is still full.
    let v = run(&["clean", "--dry-run", "--json"]);
    assert_eq!(
        (v["sweep"].as_str(), v["scanned"].as_u64()),
        (Some("full"), Some(150))
    );
    let v = run(&["clean", "--json"]);
    assert_eq!(v["sweep"], "full", "{v}");
    assert_eq!(v["full_reason"], "first", "{v}");
    let q = v["quarantined"].as_u64().unwrap() as usize;
    let v = run(&["clean", "--json"]);
    assert_eq!(v["sweep"], "rerun", "{v}");
    assert_eq!(v["full_reason"], serde_json::Value::Null, "{v}");
    assert_eq!(v["scanned"], 0, "{v}");
    assert_eq!(v["skipped_known"], 150 - q, "{v}");
    for k in ["bytes_fetched", "round_trips"] {
        assert!(v[k].as_u64().is_some(), "{k}: {v}");
    }
    // New mail: a dry run and --since see it, and leave it for the real
    // run.
    imap.append_many("INBOX", &f.inbox[150..]);
    let v = run(&["clean", "--dry-run", "--json"]);
    assert_eq!(
        (v["sweep"].as_str(), v["scanned"].as_u64()),
        (Some("rerun"), Some(50))
    );
    let v = run(&["clean", "--json", "--since", "2000-01-01"]);
    assert_eq!(v["scanned"], 50, "{v}");
    let moved = v["quarantined"].as_u64().unwrap();
    // --since did not advance the mark: what it left is read again.
    let v = run(&["clean", "--json"]);
    assert_eq!(v["scanned"].as_u64(), Some(50 - moved), "{v}");
    assert_eq!(v["quarantined"], 0, "{v}");
    let v = run(&["clean", "--json"]);
    assert_eq!(v["scanned"], 0, "{v}");
    let v = run(&["clean", "--json", "--full"]);
    assert_eq!(
        (v["sweep"].as_str(), v["full_reason"].as_str()),
        (Some("full"), Some("requested"))
    );
    assert_eq!(v["quarantined"], 0, "{v}");
    check(&dc, "alice", "INBOX", &f, &ids(&f, 0..200));
    // One private state file for the mailbox.
    let state = base.join("state/backscatter");
    let marks: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("sweep-alice-"))
        .collect();
    assert_eq!(
        marks.len(),
        1,
        "{:?}",
        std::fs::read_dir(&state).unwrap().collect::<Vec<_>>()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = marks[0].metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let _ = std::fs::remove_dir_all(&base);
}
