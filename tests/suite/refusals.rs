//! Servers that say NO where Dovecot says OK, played by the test kit's
//! quirk proxy (`backscatter_testkit::quirk`) in front of the real
//! Dovecot: a refused `\Deleted` or UID EXPUNGE after a COPY (an ACL with
//! the `t` right but not `e`, a transient NO), a refused UID SEARCH, a
//! login refused `[UNAVAILABLE]` (RFC 5530: Dovecot's answer while its
//! authentication backend is down). After each: every message in exactly
//! one place (counted by Message-ID in every mailbox), the exit status,
//! and one sentence quoting the server on stderr.

use crate::flood::{flood, id_of};
use crate::harness::Dovecot;
use crate::sweep::tempdir;
use backscatter::Decision;
use backscatter_testkit::quirk::{QuirkProxy, Refusal, Rules};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub(crate) fn config(dir: &Path, port: u16) -> PathBuf {
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

/// `backscatter ARGS`: (exit code, stdout, stderr).
pub(crate) fn run(dir: &Path, cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let o = crate::util::backscatter(dir, cfg, args)
        .env("PW", "alicepw")
        .env("BACKSCATTER_TIMEOUT", "60")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Message-ID -> the mailboxes holding a message with it, over every
/// mailbox LIST shows (a message flagged `\Deleted` but not expunged still
/// counts: it is still there).
pub(crate) fn places(dc: &Dovecot) -> HashMap<String, Vec<String>> {
    let mut imap = dc.imap("alice");
    let listed = imap.command("LIST \"\" \"*\"").unwrap();
    let names: Vec<String> = listed
        .untagged
        .iter()
        .filter(|r| r.kind == "LIST")
        .filter_map(|r| {
            r.values()
                .ok()?
                .last()?
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        })
        .collect();
    assert!(names.iter().any(|n| n == "INBOX"), "{names:?}");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::sweep::where_is_in(dc, "alice", &names)
}

/// Every message of the flood's inbox is in exactly one mailbox; returns
/// how many are in quarantine.
pub(crate) fn each_in_one_place(dc: &Dovecot, ids: &[String], when: &str) -> usize {
    let p = places(dc);
    let doubled: Vec<(&String, &Vec<String>)> = ids
        .iter()
        .filter_map(|id| p.get(id).map(|m| (id, m)))
        .filter(|(_, m)| m.len() != 1)
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !p.contains_key(*id)).collect();
    assert!(
        doubled.is_empty() && missing.is_empty(),
        "{when}: {} messages in more than one place ({:?}), {} nowhere",
        doubled.len(),
        doubled.first(),
        missing.len()
    );
    ids.iter().filter(|id| p[*id] == ["Backscatter"]).count()
}

/// A mailbox with a flood: (its inbox Message-IDs, how many are forged).
pub(crate) fn flooded(dc: &Dovecot, n: usize) -> (Vec<String>, usize) {
    let f = flood(n);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let ids: Vec<String> = f.expected.keys().cloned().collect();
    let forged = ids
        .iter()
        .filter(|id| f.expected[*id] == Decision::Backscatter)
        .count();
    assert!(forged > 0);
    (ids, forged)
}

fn no_move() -> Rules {
    Rules {
        hide_capabilities: vec!["MOVE".into()],
        ..Rules::default()
    }
}

/// A server without MOVE whose every UID EXPUNGE is refused.
fn no_move_expunge_refused() -> Rules {
    let mut rules = no_move();
    rules.refuse = vec![Refusal::no("UID EXPUNGE", "CANNOT", "Expunge refused")];
    rules
}

/// The user's rules for the `filter` tests (written into `dir`): every
/// flood message into the folder `Filed`, created here.
fn flood_into_filed(dc: &Dovecot, dir: &Path) -> PathBuf {
    let rules_file = dir.join("rules.sieve");
    std::fs::write(
        &rules_file,
        "require [\"fileinto\"];\nif header :contains \"message-id\" \"flood\" { fileinto \"Filed\"; }\n",
    )
    .unwrap();
    dc.imap("alice").create("Filed");
    rules_file
}

/// One line on stderr (tracing's warnings aside) that quotes the server.
fn one_sentence(err: &str, quoting: &str) {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(quoting), "{err}");
}

/// A server without MOVE refuses the `\Deleted` flag after the COPY once:
/// the copies are taken back, clean exits 1 quoting the refusal, every
/// message is in one place; the next run moves them all, once.
#[test]
fn refused_deleted_flag_after_copy_moves_nothing_and_the_rerun_moves_once() {
    let Some(dc) = Dovecot::start_or_skip("refused_store") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    let mut rules = no_move();
    rules.refuse = vec![
        Refusal::no("UID STORE", "NOPERM", "Permission denied (no 't' right)")
            .containing("(\\Deleted)")
            .times(1),
    ];
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("refused-store");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(proxy.refused(), 1, "{out}{err}");
    one_sentence(&err, "[NOPERM] Permission denied");
    assert_eq!(each_in_one_place(&dc, &ids, "after the refusal"), 0);

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), forged);
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after restore"), 0);
}

/// UID EXPUNGE refused everywhere (the originals cannot be expunged, nor
/// can the copies be taken back): clean exits 1 saying the messages are
/// in both mailboxes until the next run; the next run (EXPUNGE allowed
/// again) finishes the move from the journal without copying again.
#[test]
fn refused_expunge_leaves_the_batch_for_the_next_run_which_copies_nothing_again() {
    let Some(dc) = Dovecot::start_or_skip("refused_expunge") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    let rules = no_move_expunge_refused();
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("refused-expunge");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    one_sentence(&err, "[CANNOT] Expunge refused");
    assert!(err.contains("next run"), "{err}");
    let copies = dc.imap("alice").status("Backscatter").0 as usize;
    assert!(copies > 0 && copies <= forged, "{copies} copies");

    proxy.set(no_move());
    let before = proxy.seen(|s| s.commands.len());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    let copied_again = proxy.seen(|s| {
        s.commands[before..]
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("UID COPY"))
            .count()
    });
    if copies == forged {
        assert_eq!(copied_again, 0, "the rerun copied again");
    }
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), forged);
    assert_eq!(
        dc.imap("alice").status("Backscatter").0 as usize,
        forged,
        "the rerun copied again"
    );
}

/// A `restore` that finishes one an earlier run left half-done (the
/// COPY fallback, its UID EXPUNGE refused: exit 1, the messages in both
/// mailboxes) says it finished them, not "Restored 0 messages"
/// (newcomer round 3, 15h).
#[test]
fn restore_that_finishes_a_half_done_one_counts_them() {
    let Some(dc) = Dovecot::start_or_skip("restore_finishes") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    let proxy = QuirkProxy::start(dc.imap_port, no_move());
    let dir = tempdir("restore-finishes");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after clean"), forged);

    let rules = no_move_expunge_refused();
    proxy.set(rules);
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 1, "{out}{err}");
    one_sentence(&err, "[CANNOT] Expunge refused");
    // Its own \Deleted is taken off again, as clean does: no message sits
    // flagged for some client's EXPUNGE (newcomer round 4, fault 5a: the
    // quarantine opened by select_keywords was not recorded as selected,
    // so the take-back failed and left every original flagged).
    for mb in ["INBOX", "Backscatter"] {
        assert_eq!(
            deleted_ids(&dc, mb),
            Vec::<String>::new(),
            "{mb}: flagged \\Deleted after the refusals: {err}"
        );
    }

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Restored 0"), "{out}");
    assert!(
        out.contains(&format!(
            "Finished restoring {forged} messages from Backscatter that an interrupted run had left half-done."
        )),
        "{out}"
    );
    assert_eq!(each_in_one_place(&dc, &ids, "after the restores"), 0);
}

/// `filter` (fileinto under the COPY fallback) with the `\Deleted` flag
/// refused: exit 1, nothing doubled, and the next run files them once.
#[test]
fn filter_fileinto_with_a_refused_deleted_flag_doubles_nothing() {
    let Some(dc) = Dovecot::start_or_skip("refused_filter") else {
        return;
    };
    let (ids, _) = flooded(&dc, 20);
    let dir = tempdir("refused-filter");
    let rules_file = flood_into_filed(&dc, &dir);
    let mut rules = no_move();
    // (filter's exit status with errors counted is another issue's: not
    // asserted here.)
    rules.refuse = vec![Refusal::no("UID STORE", "NOPERM", "No 't' right")
        .containing("(\\Deleted)")
        .times(1)];
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let cfg = config(&dir, proxy.port);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("rules = {:?}\n", rules_file.to_str().unwrap()));
    std::fs::write(&cfg, text).unwrap();
    let (_, out, err) = run(&dir, &cfg, &["filter", "--json"]);
    assert_eq!(proxy.refused(), 1, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(summary["moved"], 0, "{out}{err}");
    assert!(summary["errors"].as_u64() > Some(0), "{out}{err}");
    each_in_one_place(&dc, &ids, "after the refusal");

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["filter"]);
    assert_eq!(code, 0, "{out}{err}");
    each_in_one_place(&dc, &ids, "after the rerun");
    assert_eq!(dc.imap("alice").status("Filed").0 as usize, ids.len());
}

/// A NO to UID SEARCH is an error, not an empty mailbox: clean exits 1
/// with one sentence quoting the server, and moves nothing.
#[test]
fn refused_search_fails_clean() {
    let Some(dc) = Dovecot::start_or_skip("refused_search") else {
        return;
    };
    let (ids, _) = flooded(&dc, 20);
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            refuse: vec![Refusal::no(
                "UID SEARCH",
                "UNAVAILABLE",
                "Search backend down",
            )],
            ..Rules::default()
        },
    );
    let dir = tempdir("refused-search");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(proxy.refused() >= 1);
    one_sentence(&err, "[UNAVAILABLE] Search backend down");
    assert!(err.contains("refused to search"), "{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after the refusal"), 0);
}

/// `watch` whose UID SEARCH is refused a few times warns each time and
/// retries; once the server searches again, the bounce moves.
#[test]
fn watch_retries_a_refused_search() {
    let Some(dc) = Dovecot::start_or_skip("watch_refused_search") else {
        return;
    };
    let f = flood(60);
    let forged = crate::flood::forged(&f, 1).remove(0);
    dc.imap("alice").append_many("Sent", &f.sent);
    let proxy = QuirkProxy::start(dc.imap_port, Rules::default());
    let dir = tempdir("watch-refused-search");
    let cfg = config(&dir, proxy.port);
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW", "alicepw")
            .env("BACKSCATTER_IDLE_CHECK", "2"),
    );
    log.wait_for_text(
        "the agent to connect",
        Duration::from_secs(60),
        "connected to",
    );
    proxy.set(Rules {
        refuse: vec![Refusal::no("UID SEARCH", "UNAVAILABLE", "Search backend down").times(3)],
        ..Rules::default()
    });
    dc.imap("alice").append("INBOX", &forged);
    let id = id_of(&forged);
    log.wait_for(
        "the refusals to be used up",
        Duration::from_secs(90),
        || proxy.refused() >= 3,
    );
    log.wait_for("the bounce to move", Duration::from_secs(120), || {
        places(&dc).get(&id).is_some_and(|m| m == &["Backscatter"])
    });
    crate::util::stop(&mut child);
    let text = log.finish();
    assert!(text.contains("[UNAVAILABLE] Search backend down"), "{text}");
    assert!(text.contains("reconnecting in"), "{text}");
}

/// Newcomer round 4, fault 5h: a server that lists IDLE but answers it
/// `BAD`. `watch` says once that it polls instead and moves new mail at
/// the next look, on the same connection, instead of logging in again
/// and again with a growing backoff.
#[test]
fn watch_polls_where_the_server_refuses_idle() {
    let Some(dc) = Dovecot::start_or_skip("watch_idle_refused") else {
        return;
    };
    let f = flood(60);
    let forged = crate::flood::forged(&f, 1).remove(0);
    dc.imap("alice").append_many("Sent", &f.sent);
    let mut idle_bad = Refusal::no("IDLE", "", "Unknown command");
    idle_bad.status = "BAD".into();
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            refuse: vec![idle_bad],
            ..Rules::default()
        },
    );
    let dir = tempdir("watch-idle-refused");
    let cfg = config(&dir, proxy.port);
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW", "alicepw")
            .env("BACKSCATTER_IDLE_CHECK", "1"),
    );
    log.wait_for_text(
        "the agent to give up IDLE",
        Duration::from_secs(60),
        "checking for new mail every 1 s instead",
    );
    dc.imap("alice").append("INBOX", &forged);
    let id = id_of(&forged);
    log.wait_for("the bounce to move", Duration::from_secs(60), || {
        places(&dc).get(&id).is_some_and(|m| m == &["Backscatter"])
    });
    crate::util::stop(&mut child);
    let text = log.finish();
    assert_eq!(text.matches("instead").count(), 1, "said once: {text}");
    assert!(!text.contains("reconnecting"), "{text}");
    assert_eq!(proxy.seen(|s| s.connections), 1, "{text}");
}

/// `NO [UNAVAILABLE]` at LOGIN is not a wrong password: clean says it is
/// temporary (exit 1), and watch keeps retrying until the login works,
/// then moves the bounce.
#[test]
fn login_unavailable_is_temporary() {
    let Some(dc) = Dovecot::start_or_skip("login_unavailable") else {
        return;
    };
    let f = flood(60);
    let forged = crate::flood::forged(&f, 1).remove(0);
    dc.imap("alice").append_many("Sent", &f.sent);
    let unavailable = || Rules {
        refuse: vec![Refusal::no(
            "LOGIN",
            "UNAVAILABLE",
            "Temporary authentication failure.",
        )],
        ..Rules::default()
    };
    let proxy = QuirkProxy::start(dc.imap_port, unavailable());
    let dir = tempdir("login-unavailable");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    one_sentence(&err, "[UNAVAILABLE] Temporary authentication failure.");
    assert!(err.contains("not a wrong password"), "{err}");

    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("PW", "alicepw"),
    );
    log.wait_for("two refused logins", Duration::from_secs(90), || {
        proxy.refused() >= 3
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch gave up: {}",
        log.text()
    );
    proxy.set(Rules::default());
    log.wait_for_text(
        "the agent to connect",
        Duration::from_secs(120),
        "connected to",
    );
    dc.imap("alice").append("INBOX", &forged);
    let id = id_of(&forged);
    log.wait_for("the bounce to move", Duration::from_secs(120), || {
        places(&dc).get(&id).is_some_and(|m| m == &["Backscatter"])
    });
    crate::util::stop(&mut child);
}

/// Ctrl-C (SIGINT) during the scan, before any move was sent: nothing
/// moves, exit 130 with the "interrupted" line. The proxy only watches:
/// the signal goes as soon as the first FETCH passes it.
#[test]
fn ctrl_c_during_the_scan_moves_nothing() {
    let Some(dc) = Dovecot::start_or_skip("ctrl_c_scan") else {
        return;
    };
    let (ids, _) = flooded(&dc, 900);
    let proxy = QuirkProxy::start(dc.imap_port, Rules::default());
    let dir = tempdir("ctrl-c-scan");
    let cfg = config(&dir, proxy.port);
    let child = crate::util::backscatter(&dir, &cfg, &["clean"])
        .env("PW", "alicepw")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fetching = || {
        proxy.seen(|s| {
            s.commands
                .iter()
                .any(|c| c.to_ascii_uppercase().starts_with("UID FETCH"))
        })
    };
    let moving = || {
        proxy.seen(|s| {
            s.commands
                .iter()
                .any(|c| c.to_ascii_uppercase().starts_with("UID MOVE"))
        })
    };
    let start = std::time::Instant::now();
    while !fetching() {
        assert!(start.elapsed() < Duration::from_secs(120), "no FETCH");
        std::thread::sleep(Duration::from_millis(2));
    }
    let early = moving();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !early,
        "a move was sent before the signal: the scan was too fast to test"
    );
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted: 0 moved"), "{err}");
    assert!(!moving(), "a move was sent after Ctrl-C");
    assert_eq!(each_in_one_place(&dc, &ids, "after Ctrl-C"), 0);
}

/// Ctrl-C during the scan over a slow link (the proxy passes the
/// server's answers at a rate that makes the sweep's prefix FETCH take
/// 20 s): the FETCH in flight is not read on (no MOVE is in flight, so
/// the connection is dropped), nothing is judged or moved, exit 130. The
/// measure is the bytes the proxy passed on after the signal: at most a
/// third of that FETCH (about 7 s of the link for the signal to be acted
/// on; before, the whole rest of it came, and was judged).
#[test]
fn ctrl_c_on_a_slow_link_stops_downloading() {
    let Some(dc) = Dovecot::start_or_skip("ctrl_c_slow") else {
        return;
    };
    let f = flood(900);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let prefix = u64::from(backscatter::plan::PREFIX);
    let total: u64 = f.inbox.iter().map(|m| (m.len() as u64).min(prefix)).sum();
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            down_rate: Some(total / 20),
            ..Rules::default()
        },
    );
    let dir = tempdir("ctrl-c-slow");
    let cfg = config(&dir, proxy.port);
    let child = crate::util::backscatter(&dir, &cfg, &["clean", "--json"])
        .env("PW", "alicepw")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker = format!("BODY.PEEK[]<0.{prefix}>");
    let sweeping = || {
        proxy.seen(|s| {
            s.commands
                .iter()
                .any(|c| c.to_ascii_uppercase().contains(&marker))
        })
    };
    let start = std::time::Instant::now();
    while !sweeping() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no prefix FETCH"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Well into the FETCH's answer (a tenth of it, 2 s of the link).
    let at_fetch = proxy.seen(|s| s.down_bytes);
    while proxy.seen(|s| s.down_bytes) < at_fetch + total / 10 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the prefix FETCH's answer did not come"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_signal = proxy.seen(|s| s.down_bytes);
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let after = proxy.seen(|s| s.down_bytes) - at_signal;
    eprintln!(
        "after SIGINT: {after} bytes of a {total}-byte FETCH passed on; exit in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(o.status.code(), Some(130), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(v["interrupted"], true, "{out}");
    assert_eq!(v["scanned"], 0, "a round was judged after Ctrl-C: {out}");
    assert_eq!(v["quarantined"], 0, "{out}");
    assert!(
        after < total / 3,
        "{after} bytes of the {total}-byte FETCH were downloaded after Ctrl-C"
    );
    assert!(!proxy.seen(|s| s
        .commands
        .iter()
        .any(|c| c.to_ascii_uppercase().starts_with("UID MOVE"))));
    let ids: Vec<String> = f.expected.keys().cloned().collect();
    assert_eq!(each_in_one_place(&dc, &ids, "after Ctrl-C"), 0);
}

/// UIDs of `mailbox` flagged `\Deleted` (UID SEARCH DELETED).
fn deleted_in(dc: &Dovecot, mailbox: &str) -> Vec<u32> {
    let mut imap = dc.imap("alice");
    if imap.select(mailbox) == 0 {
        return Vec::new();
    }
    let reply = imap.command("UID SEARCH DELETED").unwrap();
    reply
        .untagged
        .iter()
        .filter(|r| r.kind == "SEARCH")
        .flat_map(|r| {
            r.text()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// EXPUNGE of a whole mailbox, as a mail client's "compact" or "expunge
/// on exit" does: whatever is flagged `\Deleted` there is gone.
fn client_expunges(dc: &Dovecot, mailbox: &str) {
    let mut imap = dc.imap("alice");
    imap.select(mailbox);
    imap.command("EXPUNGE").unwrap();
}

/// Message-IDs of the messages of `mailbox` flagged `\Deleted`.
fn deleted_ids(dc: &Dovecot, mailbox: &str) -> Vec<String> {
    let uids = deleted_in(dc, mailbox);
    dc.imap("alice")
        .fetch_message_ids(mailbox)
        .into_iter()
        .filter(|(u, _)| uids.contains(u))
        .map(|(u, id)| id.unwrap_or_else(|| format!("uid {u}")))
        .collect()
}

/// Newcomer round 3, fault 3: without MOVE, a server refusing every UID
/// EXPUNGE (for the move and for taking the copies back) must not leave a
/// `\Deleted` of backscatter's on any copy: the messages sit in both
/// mailboxes unflagged; the rerun (EXPUNGE allowed) finishes the move and
/// leaves the quarantined copy unflagged; restore brings it back
/// unflagged; a client's EXPUNGE of every mailbox then loses nothing. A
/// `\Deleted` the user had set stays the user's, wherever it goes.
#[test]
fn refused_expunge_and_take_back_leave_no_deleted_flag_of_ours() {
    let Some(dc) = Dovecot::start_or_skip("refused_expunge_flags") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    // One message the user had marked \Deleted before anything ran.
    let (users, users_id) = dc.imap("alice").fetch_message_ids("INBOX")[0].clone();
    let users_id = users_id.expect("the flood's messages have Message-IDs");
    dc.imap("alice")
        .store("INBOX", &users.to_string(), "+FLAGS (\\Deleted)");
    let only_users = |when: &str| {
        for mb in ["INBOX", "Backscatter"] {
            let d = deleted_ids(&dc, mb);
            assert!(
                d.iter().all(|id| *id == users_id),
                "{when}: {mb} holds {} messages flagged \\Deleted not by the user",
                d.len()
            );
        }
    };
    let rules = no_move_expunge_refused();
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("refused-expunge-flags");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    one_sentence(&err, "[CANNOT] Expunge refused");
    assert!(err.contains("none of them marked \\Deleted"), "{err}");
    assert!(dc.imap("alice").status("Backscatter").0 > 0);
    only_users("after the refusals");
    assert_eq!(deleted_ids(&dc, "INBOX"), vec![users_id.clone()]);

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), forged);
    only_users("after the rerun");

    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    only_users("after restore");
    assert_eq!(deleted_ids(&dc, "INBOX"), vec![users_id.clone()]);
    client_expunges(&dc, "INBOX");
    client_expunges(&dc, "Backscatter");
    let p = places(&dc);
    let lost: Vec<&String> = ids.iter().filter(|id| !p.contains_key(*id)).collect();
    assert_eq!(lost, vec![&users_id], "only the user's own deleted message");
}

/// Fault 3 in `watch`: without MOVE, a server refusing every UID EXPUNGE
/// while the agent moves an arriving bounce. The agent logs the refusal
/// and goes on; no copy is left with a `\Deleted` of backscatter's (a
/// client's EXPUNGE would destroy it), the user's own `\Deleted` stays;
/// once the server expunges again, the next sweep leaves each message in
/// one place.
#[test]
fn watch_with_refused_expunges_leaves_no_deleted_flag_of_ours() {
    let Some(dc) = Dovecot::start_or_skip("watch_refused_expunge") else {
        return;
    };
    let f = flood(60);
    let forged = crate::flood::forged(&f, 3);
    assert_eq!(forged.len(), 3);
    dc.imap("alice").append_many("Sent", &f.sent);
    // One ordinary message the user marked \Deleted before anything ran.
    let ham = b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\nSubject: lunch\r\nMessage-ID: <users-own@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nAt noon?\r\n";
    dc.imap("alice").append("INBOX", ham);
    dc.imap("alice").store("INBOX", "1", "+FLAGS (\\Deleted)");
    let users_id = "<users-own@example.org>".to_string();
    let rules = no_move_expunge_refused();
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("watch-refused-expunge");
    let cfg = config(&dir, proxy.port);
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW", "alicepw")
            .env("BACKSCATTER_TIMEOUT", "60"),
    );
    log.wait_for_text(
        "the agent to wait for new mail",
        Duration::from_secs(120),
        "waiting for new mail (IDLE)",
    );
    let before = proxy.refused();
    dc.imap("alice").append_many("INBOX", &forged);
    log.wait_for("a refused expunge", Duration::from_secs(120), || {
        proxy.refused() > before
    });
    log.wait_for_text(
        "the agent to report the refusal",
        Duration::from_secs(120),
        "Expunge refused",
    );
    // The take-back (and its flag removal) follows the refusal: poll
    // until no \Deleted but the user's is left, or fail after 60 s.
    let ours_gone = || {
        ["INBOX", "Backscatter"]
            .iter()
            .all(|mb| deleted_ids(&dc, mb).iter().all(|id| *id == users_id))
    };
    log.wait_for("no \\Deleted of ours", Duration::from_secs(60), ours_gone);
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch gave up: {}",
        log.text()
    );
    crate::util::stop(&mut child);
    let text = log.finish();
    assert!(ours_gone(), "{text}");
    assert_eq!(deleted_ids(&dc, "INBOX"), vec![users_id.clone()], "{text}");

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    let ids: Vec<String> = forged.iter().map(|m| id_of(m)).collect();
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), 3);
    client_expunges(&dc, "INBOX");
    client_expunges(&dc, "Backscatter");
    assert_eq!(each_in_one_place(&dc, &ids, "after a client's EXPUNGE"), 3);
    assert!(
        !places(&dc).contains_key(&users_id),
        "the user's own deleted message goes"
    );
}

/// Newcomer round 4, fault 2 (data loss): two bounces of one spam run that
/// differ only in their text (same Message-ID, Date, From, Subject and
/// size, so the same fingerprint) — one quarantined, its look-alike then
/// arriving in INBOX. The server refuses `restore`'s move (with MOVE: the
/// UID MOVE; without: the UID COPY). The check that follows a refusal
/// took the look-alike in INBOX for the restored message and removed the
/// quarantined one from Backscatter. Now a message still in its mailbox
/// counts as moved only through a copy above the destination's UIDNEXT
/// from before the COPY; with MOVE, never (RFC 6851 section 3.3). Both
/// messages survive the refusal, and the next restore brings the
/// quarantined one back.
#[test]
fn a_refused_restore_never_takes_a_look_alike_for_the_message() {
    for (name, rules, command) in [
        ("lookalike_move", Rules::default(), "UID MOVE"),
        ("lookalike_copy", no_move(), "UID COPY"),
    ] {
        let Some(dc) = Dovecot::start_or_skip(name) else {
            return;
        };
        // A real Postfix bounce (Sisimai's lhost-postfix-03), and the same
        // bounce for another recipient of the run: one letter of the
        // failed address changed, nothing else.
        let a = crate::flood::with_message_id(
            &std::fs::read(
                crate::util::root().join("tests/corpus/sisimai/bsd/lhost-postfix-03.eml"),
            )
            .unwrap(),
            "<run-4711@mx.remote.example>",
        );
        // As the server stores it (CRLF), so that what is read back compares.
        let mut crlf = Vec::with_capacity(a.len() + 200);
        for (i, &c) in a.iter().enumerate() {
            if c == b'\n' && (i == 0 || a[i - 1] != b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(c);
        }
        let a = crlf;
        let at = a
            .windows(10)
            .position(|w| w == b"<kijitora@")
            .expect("the failed recipient");
        let mut b = a.clone();
        b[at + 1] = b'm';
        assert_eq!(a.len(), b.len());
        dc.imap("alice").append("INBOX", &a);
        let proxy = QuirkProxy::start(dc.imap_port, rules.clone());
        let dir = tempdir(name);
        let cfg = config(&dir, proxy.port);
        let (code, out, err) = run(&dir, &cfg, &["clean", "--json"]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert_eq!(dc.imap("alice").status("Backscatter").0, 1, "{name}: {out}");
        dc.imap("alice").append("INBOX", &b);
        let mut refusing = rules.clone();
        refusing.refuse = vec![Refusal::no(command, "CANNOT", "Move refused").times(1)];
        proxy.set(refusing);
        let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(err.contains("Move refused"), "{name}: {err}");
        // Each mailbox's messages, named: "A", "B", or another's length.
        let held = |mb: &str| -> Vec<String> {
            let mut imap = dc.imap("alice");
            let uids = imap.uids(mb);
            let mut v: Vec<String> = uids
                .iter()
                .map(|u| match imap.fetch_raw(mb, *u) {
                    r if r == a => "A".to_string(),
                    r if r == b => "B".to_string(),
                    r => format!("another message of {} bytes", r.len()),
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            held("Backscatter"),
            ["A"],
            "{name}: the quarantined one stays"
        );
        assert_eq!(held("INBOX"), ["B"], "{name}: the look-alike is untouched");
        proxy.set(rules);
        let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert_eq!(held("INBOX"), ["A", "B"], "{name}: both in INBOX once");
        assert!(held("Backscatter").is_empty(), "{name}");
    }
}

/// Newcomer round 4, fault 5b: a server without MOVE that refuses every
/// `UID STORE`: nothing gets flagged, and the error says so ("none of
/// them marked \Deleted"), not "some still marked \Deleted (do not expunge
/// either mailbox)". The next run, with STORE allowed, finishes the move.
#[test]
fn refused_stores_say_nothing_is_flagged() {
    let Some(dc) = Dovecot::start_or_skip("refused_all_stores") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 30);
    let mut rules = no_move();
    rules.refuse = vec![Refusal::no("UID STORE", "CANNOT", "Flags refused")];
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("refused-all-stores");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("none of them marked \\Deleted"), "{err}");
    for mb in ["INBOX", "Backscatter"] {
        assert_eq!(deleted_ids(&dc, mb), Vec::<String>::new(), "{mb}");
    }
    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), forged);
}

/// What an earlier version left (fault 3): a batch finished by a rerun
/// whose quarantined copies still carry backscatter's `\Deleted`.
/// `restore` takes the flag off (the journal says the move was
/// interrupted and the message was not `\Deleted` before) and a client's
/// EXPUNGE of INBOX loses nothing.
#[test]
fn restore_takes_off_a_deleted_flag_an_interrupted_move_left() {
    let Some(dc) = Dovecot::start_or_skip("restore_undeletes") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 30);
    let rules = no_move_expunge_refused();
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir("restore-undeletes");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 1, "{out}{err}");
    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after the rerun"), forged);
    // As the version before this fix left them.
    dc.imap("alice")
        .store("Backscatter", "1:*", "+FLAGS (\\Deleted)");
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(deleted_in(&dc, "INBOX"), Vec::<u32>::new());
    client_expunges(&dc, "INBOX");
    assert_eq!(each_in_one_place(&dc, &ids, "after restore and EXPUNGE"), 0);
}

/// Fault 3 in `filter`: a rules move under the same refusals leaves no
/// `\Deleted` of ours in the user's folder or INBOX, and the rerun that
/// finishes it neither.
#[test]
fn filter_with_refused_expunges_leaves_no_deleted_flag() {
    let Some(dc) = Dovecot::start_or_skip("refused_filter_flags") else {
        return;
    };
    let (ids, _) = flooded(&dc, 20);
    let dir = tempdir("refused-filter-flags");
    let rules_file = flood_into_filed(&dc, &dir);
    let rules = no_move_expunge_refused();
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let cfg = config(&dir, proxy.port);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("rules = {:?}\n", rules_file.to_str().unwrap()));
    std::fs::write(&cfg, text).unwrap();
    let (_, out, err) = run(&dir, &cfg, &["filter"]);
    assert!(proxy.refused() > 0, "{out}{err}");
    assert_eq!(deleted_in(&dc, "Filed"), Vec::<u32>::new(), "{out}{err}");
    assert_eq!(deleted_in(&dc, "INBOX"), Vec::<u32>::new(), "{out}{err}");

    proxy.set(no_move());
    let (code, out, err) = run(&dir, &cfg, &["filter"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(deleted_in(&dc, "Filed"), Vec::<u32>::new(), "{out}{err}");
    client_expunges(&dc, "Filed");
    client_expunges(&dc, "INBOX");
    each_in_one_place(&dc, &ids, "after the rerun and a client's EXPUNGE");
    assert_eq!(dc.imap("alice").status("Filed").0 as usize, ids.len());
}

/// Newcomer round 3, fault 9: a quarantine that is the Sent mailbox (by
/// SPECIAL-USE, not configured as `sent`), Drafts or Trash is refused by
/// every command that uses it, before anything moves: one sentence,
/// exit 2. Nothing lands in Sent.
#[test]
fn every_command_refuses_a_quarantine_with_a_role() {
    let Some(dc) = Dovecot::start_or_skip("unfit_quarantine") else {
        return;
    };
    let (ids, _) = flooded(&dc, 20);
    let sent_before = dc.imap("alice").status("Sent").0;
    let dir = tempdir("unfit-quarantine");
    for q in ["Sent", "Drafts", "Trash"] {
        dc.imap("alice").command(&format!("CREATE {q}")).ok();
        let cfg = config(&dir, dc.imap_port);
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&format!("quarantine = \"{q}\"\n"));
        std::fs::write(&cfg, text).unwrap();
        for args in [
            &["clean"][..],
            &["clean", "--dry-run"],
            &["restore", "--all", "--dry-run"],
            &["restore", "--all"],
            &["quarantine", "list"],
        ] {
            let (code, out, err) = run(&dir, &cfg, args);
            assert_eq!(code, 2, "{q} {args:?}: {out}{err}");
            let err: String = err
                .lines()
                .filter(|l| !l.contains(": warning: "))
                .collect::<Vec<_>>()
                .join("\n");
            one_sentence(
                &err,
                &format!("the quarantine \"{q}\" of account \"alice\" is"),
            );
        }
    }
    // watch, as the service runs it: stops at once with the same sentence.
    let cfg = config(&dir, dc.imap_port);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("quarantine = \"Sent\"\n");
    std::fs::write(&cfg, text).unwrap();
    let o = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW", "alicepw")
        .env("BACKSCATTER_TIMEOUT", "60")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the quarantine \"Sent\" of account \"alice\" is the server's Sent mailbox"),
        "{err}"
    );
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert_eq!(dc.imap("alice").status("Sent").0, sent_before);
    assert_eq!(each_in_one_place(&dc, &ids, "after the refusals"), 0);
}

/// A NO to UID FETCH is an error, not "no messages": with the quarantine
/// full, `quarantine list` and `restore --all` whose FETCHes are refused
/// exit 1 with one sentence quoting the server, and nothing moves (no
/// message is written off as gone); once the server answers again, the
/// restore brings every message back, once.
#[test]
fn refused_fetch_fails_list_and_restore_and_loses_nothing() {
    let Some(dc) = Dovecot::start_or_skip("refused_fetch") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    let proxy = QuirkProxy::start(dc.imap_port, Rules::default());
    let dir = tempdir("refused-fetch");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after clean"), forged);
    let journal = std::fs::read_to_string(dir.join("data/backscatter/journal-alice.jsonl"))
        .unwrap_or_default();

    proxy.set(Rules {
        refuse: vec![Refusal::no(
            "UID FETCH",
            "UNAVAILABLE",
            "Internal error occurred. Refer to server log for more information.",
        )],
        ..Rules::default()
    });
    for args in [&["quarantine", "list"][..], &["restore", "--all"][..]] {
        let before = proxy.refused();
        let (code, out, err) = run(&dir, &cfg, args);
        assert_eq!(
            code,
            1,
            "{args:?}: {out}{err}{:?}",
            proxy.seen(|s| s.commands.clone())
        );
        assert!(proxy.refused() > before, "{args:?}: no FETCH was refused");
        one_sentence(&err, "[UNAVAILABLE] Internal error occurred.");
        assert!(err.contains("refused to fetch messages"), "{err}");
        assert_eq!(
            each_in_one_place(&dc, &ids, "after the refusal"),
            forged,
            "{args:?}"
        );
    }
    let after = std::fs::read_to_string(dir.join("data/backscatter/journal-alice.jsonl"))
        .unwrap_or_default();
    assert!(
        !after.contains("\"op\":\"gone\""),
        "a refused FETCH wrote messages off as gone"
    );
    assert!(after.starts_with(&journal));

    proxy.set(Rules::default());
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after restore"), 0);
}
