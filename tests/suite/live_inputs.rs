//! `backscatter watch` against a real Dovecot when what it depends on
//! changes under it: the keep list edited by `backscatter keep` while it
//! runs, the Sent mailbox renamed away (the sent index drops to empty),
//! and a password source that fails for one account (then recovers).

use crate::flood::{flood, id_of, Flood};
use crate::harness::Dovecot;
use crate::sweep::{tempdir, where_is};
use backscatter::Decision;
use backscatter_testkit::watchlog::WatchLog;
use std::process::{Child, Command};
use std::time::Duration;

fn place(dc: &Dovecot, user: &str, id: &str) -> Vec<String> {
    where_is(dc, user).get(id).cloned().unwrap_or_default()
}

/// The flood's inbox messages the classifier calls `d` (with the full
/// Sent loaded).
fn pick(f: &Flood, d: Decision) -> Vec<Vec<u8>> {
    f.inbox
        .iter()
        .filter(|m| {
            mail_parser::MessageParser::default()
                .parse_headers(m.as_slice())
                .and_then(|h| h.message_id().map(|i| format!("<{i}>")))
                .is_some_and(|id| f.expected.get(&id) == Some(&d))
        })
        .cloned()
        .collect()
}

/// The From address of a message (lowercased), as the keep list reads it.
fn from_address(m: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(m);
    let head = text.split("\r\n\r\n").next()?.split("\n\n").next()?;
    let mut lines = head.lines().peekable();
    while let Some(l) = lines.next() {
        if l.len() > 5 && l[..5].eq_ignore_ascii_case("from:") {
            let mut v = l[5..].to_string();
            while lines.peek().is_some_and(|n| n.starts_with([' ', '\t'])) {
                v.push_str(lines.next().unwrap());
            }
            return backscatter_policy::keep::address_of(&v);
        }
    }
    None
}

fn config(dc: &Dovecot, dir: &std::path::Path, accounts: &[(&str, &str)]) -> std::path::PathBuf {
    let cfg = dir.join("config.toml");
    let mut text = String::new();
    for (user, password) in accounts {
        text.push_str(&format!(
            "[accounts.{user}]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"{user}\"\n{password}\n",
            dc.imap_port
        ));
    }
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn stop(mut child: Child, log: WatchLog) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let log = log.finish();
    assert!(status.success(), "exit {status:?}\n{log}");
    log
}

/// `backscatter keep ADDRESS` while `watch` runs: the next forged
/// response from that address stays in INBOX, with a log line naming the
/// entry; other backscatter is still moved.
#[test]
fn a_keep_entry_added_while_watch_runs_applies_at_the_next_batch() {
    let Some(dc) = Dovecot::start_or_skip("live_keep") else {
        return;
    };
    let f = flood(900);
    dc.imap("alice").append_many("Sent", &f.sent);
    let forged = pick(&f, Decision::Backscatter);
    let (kept, other) = {
        let k = forged
            .iter()
            .find(|m| from_address(m).is_some())
            .expect("a forged response with a From address")
            .clone();
        let who = from_address(&k).unwrap();
        let o = forged
            .iter()
            .find(|m| from_address(m).is_some_and(|a| a != who))
            .expect("one from someone else")
            .clone();
        (k, o)
    };
    let who = from_address(&kept).unwrap();
    let dir = tempdir("live-keep");
    let cfg = config(&dc, &dir, &[("alice", "password.env = \"PW\"")]);
    let (child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("PW", "alicepw"),
    );
    log.wait_for_text("watch to connect", Duration::from_secs(60), "connected to");
    let out = crate::util::backscatter(&dir, &cfg, &["keep", &who])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut imap = dc.imap("alice");
    imap.append("INBOX", &kept);
    imap.append("INBOX", &other);
    let (k, o) = (id_of(&kept), id_of(&other));
    log.wait_for(
        "the other response to be quarantined",
        Duration::from_secs(60),
        || place(&dc, "alice", &o) == ["Backscatter"],
    );
    log.wait_for_text(
        "the kept response to be logged",
        Duration::from_secs(60),
        &format!("matches keep entry \"{who}\""),
    );
    assert_eq!(place(&dc, "alice", &k), ["INBOX"], "{}", log.text());
    stop(child, log);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sent renamed away while `watch` runs (Dovecot re-creates an empty
/// `\Sent` mailbox): the agent says once, in the log and as a desktop
/// notice, that the sent index is empty, and holds its verdicts: neither
/// the user's own bounce nor a forged one is moved. Once Sent holds mail
/// again, backscatter is moved as before.
#[test]
fn an_emptied_sent_index_is_said_and_holds_the_moves() {
    let Some(dc) = Dovecot::start_or_skip("live_sent") else {
        return;
    };
    let f = flood(900);
    dc.imap("alice").append_many("Sent", &f.sent);
    let forged = pick(&f, Decision::Backscatter);
    let legit = pick(&f, Decision::Legitimate);
    let dir = tempdir("live-sent");
    let cfg = config(&dc, &dir, &[("alice", "password.env = \"PW\"")]);
    let (child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("PW", "alicepw"),
    );
    log.wait_for_text("watch to connect", Duration::from_secs(60), "connected to");
    // Judged normally first.
    let mut imap = dc.imap("alice");
    imap.append("INBOX", &forged[0]);
    let f0 = id_of(&forged[0]);
    log.wait_for(
        "a forged response to be quarantined",
        Duration::from_secs(60),
        || place(&dc, "alice", &f0) == ["Backscatter"],
    );
    assert!(!log.contains("sent index"), "{}", log.text());
    // Sent renamed away, as a client's "archive sent mail" does.
    imap.command("RENAME \"Sent\" \"Old Sent\"")
        .expect("RENAME Sent");
    imap.append("INBOX", &legit[0]);
    imap.append("INBOX", &forged[1]);
    let (l0, f1) = (id_of(&legit[0]), id_of(&forged[1]));
    log.wait_for_text(
        "the empty sent index to be said",
        Duration::from_secs(60),
        "sent index of account \"alice\" is now empty",
    );
    log.wait_for("both to be held", Duration::from_secs(60), || {
        log.count("hold ") >= 2
    });
    assert_eq!(place(&dc, "alice", &l0), ["INBOX"], "{}", log.text());
    assert_eq!(place(&dc, "alice", &f1), ["INBOX"], "{}", log.text());
    // The desktop notice (logged where there is no notification service).
    log.wait_for_text(
        "the notice",
        Duration::from_secs(30),
        "the sent index of \"alice\" is empty",
    );
    assert!(!log.contains("is sending spam"), "{}", log.text());
    // Sent holds mail again: backscatter moves again.
    dc.imap("alice").append("Sent", &f.sent[0]);
    imap.append("INBOX", &forged[2]);
    let f2 = id_of(&forged[2]);
    log.wait_for("moves to resume", Duration::from_secs(60), || {
        place(&dc, "alice", &f2) == ["Backscatter"]
    });
    let log = stop(child, log);
    assert_eq!(
        log.matches("WARN The sent index of account").count(),
        1,
        "said once: {log}"
    );
    assert!(log.contains("holds 1 message(s) again"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One account's password command fails (a locked keyring or gpg-agent):
/// the other account is watched at once; the failing one is reported and
/// asked again with backoff, and watched as soon as the command succeeds,
/// without a restart. An account whose only source is an unset
/// environment variable, alone, is a configuration error (exit 2).
#[test]
fn a_failing_password_source_delays_only_its_account() {
    let Some(dc) = Dovecot::start_or_skip("live_secret") else {
        return;
    };
    let f = flood(900);
    for user in ["alice", "bob"] {
        dc.imap(user).append_many("Sent", &f.sent);
    }
    let forged = pick(&f, Decision::Backscatter);
    let dir = tempdir("live-secret");
    let unlocked = dir.join("unlocked");
    let cfg = config(
        &dc,
        &dir,
        &[
            ("alice", "password.env = \"PW\""),
            (
                "bob",
                &format!(
                    "password.command = [\"sh\", \"-c\", \"cat '{}' || {{ echo keyring locked >&2; exit 2; }}\"]",
                    unlocked.display()
                ),
            ),
        ],
    );
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("PW", "alicepw"),
    );
    log.wait_for_text("alice to connect", Duration::from_secs(60), "connected to");
    log.wait_for_text(
        "bob's failure to be reported",
        Duration::from_secs(30),
        "keyring locked; the password is asked for again",
    );
    assert!(child.try_wait().unwrap().is_none(), "{}", log.text());
    dc.imap("alice").append("INBOX", &forged[0]);
    let f0 = id_of(&forged[0]);
    log.wait_for(
        "alice's backscatter to move",
        Duration::from_secs(60),
        || place(&dc, "alice", &f0) == ["Backscatter"],
    );
    // The keyring is unlocked: bob is watched without a restart.
    std::fs::write(&unlocked, "bobpw\n").unwrap();
    log.wait_for("bob to connect", Duration::from_secs(90), || {
        log.count("connected to") >= 2
    });
    dc.imap("bob").append("INBOX", &forged[1]);
    let f1 = id_of(&forged[1]);
    log.wait_for("bob's backscatter to move", Duration::from_secs(60), || {
        place(&dc, "bob", &f1) == ["Backscatter"]
    });
    let log = stop(child, log);
    assert!(!log.contains("bobpw") && !log.contains("alicepw"), "{log}");

    // Nothing can start, for a reason only the configuration can fix.
    let cfg2 = config(
        &dc,
        &dir,
        &[("alice", "password.env = \"NOT_SET_ANYWHERE\"")],
    );
    let out = crate::util::backscatter(&dir, &cfg2, &["watch"])
        .env_remove("NOT_SET_ANYWHERE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("NOT_SET_ANYWHERE (password.env) is not set"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
