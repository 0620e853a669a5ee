//! `watch` and `clean` on one account at the same time, against the real
//! Dovecot: a message one of them moves after the other scheduled it is
//! "already moved by another client", counted, never an error.
//!
//! The race itself is played deterministically by the test kit's quirk
//! proxy (`backscatter_testkit::quirk::Hook`): just before the client's
//! `UID MOVE` (or, without MOVE, its `UID COPY`) reaches Dovecot, another
//! connection moves some of the same messages to quarantine, exactly what a
//! concurrent `watch` does between `clean`'s classification and its move.
//! Dovecot then answers `NO [EXPUNGEISSUED]` (RFC 5530) as it would to the
//! loser of a real race. A soak test runs both as processes on one flood,
//! with mail arriving while they run. After each: every message in exactly
//! one mailbox (counted by Message-ID in every mailbox), both exit 0, the
//! journal holds each quarantined message once, and `restore --all` brings
//! every one back once.

use crate::flood::{flood, id_of};
use crate::harness::Dovecot;
use crate::refusals::{config, each_in_one_place, flooded, places, run};
use crate::sweep::tempdir;
use backscatter::Decision;
use backscatter_testkit::dovecot::password;
use backscatter_testkit::imap_client::Imap;
use backscatter_testkit::quirk::{uids_of, Hook, QuirkProxy, Rules};
use backscatter_testkit::watchlog::WatchLog;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A hook action: another client (its own connection, straight to
/// Dovecot) moves the first `take` UIDs of the command's UID set from
/// INBOX to Backscatter.
fn another_client_moves(port: u16, take: usize) -> impl Fn(&str) + Send + Sync + 'static {
    move |command: &str| {
        let set = command.split_whitespace().nth(2).unwrap_or("");
        let uids: Vec<String> = uids_of(set)
            .into_iter()
            .take(take)
            .map(|u| u.to_string())
            .collect();
        if uids.is_empty() {
            return;
        }
        let mut other = Imap::connect(port, "alice", password("alice"));
        other.select("INBOX");
        other
            .command(&format!("UID MOVE {} Backscatter", uids.join(",")))
            .expect("the other client's move");
        other.logout();
    }
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The account's journal: (messages it holds in quarantine, batches left
/// unfinished).
fn journal_counts(dir: &Path) -> (usize, usize) {
    let entries =
        backscatter::journal::read(&dir.join("data/backscatter/journal-alice.jsonl")).unwrap();
    (
        backscatter::journal::quarantined(&entries).len(),
        backscatter::journal::unfinished(&entries).len(),
    )
}

/// `restore --all` brings back once every quarantined message backscatter
/// moved, and leaves those the other client moved (`by_other`: no journal
/// entry, no keyword of the server's script) as not moved by backscatter;
/// `restore --message-id` then brings those back too, once each. Of the
/// `forged` messages none is left in quarantine.
fn restore_all_once(
    dc: &Dovecot,
    dir: &Path,
    cfg: &Path,
    ids: &[String],
    forged: usize,
    by_other: usize,
) {
    let (code, out, err) = run(dir, cfg, &["restore", "--all", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["restored"], forged - by_other, "{out}{err}");
    assert_eq!(r["not_moved_by_backscatter"], by_other, "{out}{err}");
    assert_eq!(r["missing"], 0, "{out}{err}");
    assert_eq!(each_in_one_place(dc, ids, "after restore --all"), by_other);
    let left = crate::sweep::where_is_in(dc, "alice", &["Backscatter"]);
    for id in ids.iter().filter(|id| left.contains_key(*id)) {
        let (code, out, err) = run(dir, cfg, &["restore", "--message-id", id]);
        assert_eq!(code, 0, "{id}: {out}{err}");
    }
    assert_eq!(each_in_one_place(dc, ids, "after restore --message-id"), 0);
}

/// `clean` whose move (`verb`: `UID MOVE`, or `UID COPY` without MOVE)
/// finds 3 of its messages moved by another client in between.
fn clean_loses_a_race(tag: &str, hide_move: bool, verb: &str) {
    let Some(dc) = Dovecot::start_or_skip(tag) else {
        return;
    };
    let (ids, forged) = flooded(&dc, 40);
    assert!(forged > 3);
    let rules = Rules {
        hide_capabilities: if hide_move {
            vec!["MOVE".into()]
        } else {
            Vec::new()
        },
        before: vec![Hook::before(verb, another_client_moves(dc.imap_port, 3)).times(1)],
        ..Rules::default()
    };
    let proxy = QuirkProxy::start(dc.imap_port, rules);
    let dir = tempdir(tag);
    let cfg = config(&dir, proxy.port);
    if hide_move {
        // What a person reads.
        let (code, out, err) = run(&dir, &cfg, &["clean"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.trim().is_empty(), "{err}");
        let said = format!(
            "{} moved to Backscatter (3 already moved by another client)",
            forged - 3
        );
        assert!(out.contains(&said), "{out}");
    } else {
        let (code, out, err) = run(&dir, &cfg, &["clean", "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let s = json(&out);
        assert_eq!(s["quarantined"], forged - 3, "{out}{err}");
        assert_eq!(s["already_moved"], 3, "{out}{err}");
        assert_eq!(s["gone"], 0, "{out}{err}");
        assert_eq!(s["errors"], 0, "{out}{err}");
    }
    // Sent again for the rest, once.
    let sent: Vec<String> = proxy.seen(|s| {
        s.commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with(verb))
            .cloned()
            .collect()
    });
    assert_eq!(sent.len(), 2, "{sent:?}");
    let first = uids_of(sent[0].split_whitespace().nth(2).unwrap());
    let again = uids_of(sent[1].split_whitespace().nth(2).unwrap());
    assert_eq!(again, first[3..].to_vec());
    assert_eq!(each_in_one_place(&dc, &ids, "after clean"), forged);
    // The journal holds what this sweep moved, once; nothing unfinished.
    assert_eq!(journal_counts(&dir), (forged - 3, 0));
    // A rerun has nothing left to do.
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 moved to Backscatter"), "{out}");
    restore_all_once(&dc, &dir, &cfg, &ids, forged, 3);
}

/// UID MOVE: Dovecot refuses the whole move `NO [EXPUNGEISSUED]`; clean
/// moves the rest and counts the three, exit 0.
#[test]
fn clean_counts_what_another_client_moved_between_classifying_and_moving() {
    clean_loses_a_race("race_clean_move", false, "UID MOVE");
}

/// The same without MOVE: the refused `UID COPY` is sent again for the
/// rest, then `\Deleted` and UID EXPUNGE of exactly those; the summary
/// says what happened, and nothing goes to stderr.
#[test]
fn clean_without_move_counts_what_another_client_moved_before_its_copy() {
    clean_loses_a_race("race_clean_copy", true, "UID COPY");
}

/// Newcomer round 4, fault 4: a mail client deletes one quarantined
/// message just before `restore`'s UID MOVE reaches Dovecot, which then
/// refuses the whole move `NO [EXPUNGEISSUED]`. The rest of the batch is
/// moved without it (as `clean` does), the deleted one is counted as no
/// longer in quarantine, exit 0; before, all 500 stayed with a 100 KB
/// error line.
#[test]
fn restore_moves_the_rest_when_a_client_deletes_one_meanwhile() {
    let Some(dc) = Dovecot::start_or_skip("restore_expunged") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 60);
    let dir = tempdir("restore-expunged");
    let cfg = config(&dir, dc.imap_port);
    let (code, out, err) = run(&dir, &cfg, &["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(each_in_one_place(&dc, &ids, "after clean"), forged);
    let port = dc.imap_port;
    let deleted: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let action = {
        let deleted = deleted.clone();
        move |command: &str| {
            let set = command.split_whitespace().nth(2).unwrap_or("");
            let Some(uid) = uids_of(set).into_iter().next() else {
                return;
            };
            let mut other = Imap::connect(port, "alice", password("alice"));
            let id = other
                .fetch_message_ids("Backscatter")
                .into_iter()
                .find(|(u, _)| *u == uid)
                .and_then(|(_, id)| id);
            other.select("Backscatter");
            other
                .command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
                .expect("the client's flag");
            other
                .command(&format!("UID EXPUNGE {uid}"))
                .expect("the client's expunge");
            other.logout();
            *deleted.lock().unwrap() = id;
        }
    };
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            before: vec![Hook::before("UID MOVE", action).times(1)],
            ..Rules::default()
        },
    );
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["restore", "--all", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["restored"], forged - 1, "{out}");
    assert_eq!(r["missing"], 1, "{out}");
    let gone = deleted
        .lock()
        .unwrap()
        .clone()
        .expect("the client deleted one");
    let rest: Vec<String> = ids.iter().filter(|id| **id != gone).cloned().collect();
    assert_eq!(each_in_one_place(&dc, &rest, "after restore"), 0);
    assert!(!crate::refusals::places(&dc).contains_key(&gone));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Newcomer round 4, fault 1: two `clean`s of one account at once (cron
/// and a person) each had their `UID MOVE` of the same messages answered
/// OK by Dovecot, which left 500 messages twice in quarantine. Now one
/// process moves an account's mail at a time. Played deterministically:
/// just before the first clean's first UID MOVE reaches Dovecot, the proxy
/// starts the second clean and lets the move go on only once the second
/// says it waits for the first. Both exit 0, between them they move each
/// forged message once, the journal holds each once, and every message is
/// in one place.
#[test]
fn two_cleans_at_once_move_each_message_once() {
    let Some(dc) = Dovecot::start_or_skip("two_cleans") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 600);
    let dir = tempdir("two-cleans");
    let cfg = config(&dir, dc.imap_port);
    let second_err = dir.join("second.err");
    let second: std::sync::Arc<std::sync::Mutex<Option<std::process::Child>>> = Default::default();
    let action = {
        let (dir, cfg, second_err, second) =
            (dir.clone(), cfg.clone(), second_err.clone(), second.clone());
        move |_: &str| {
            let child = crate::util::backscatter(&dir, &cfg, &["clean", "--json"])
                .env("PW", "alicepw")
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&second_err).unwrap())
                .spawn()
                .unwrap();
            *second.lock().unwrap() = Some(child);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                let err = std::fs::read_to_string(&second_err).unwrap_or_default();
                if err.contains("waiting for it to finish") {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            before: vec![Hook::before("UID MOVE", action).times(1)],
            ..Rules::default()
        },
    );
    let cfg_first = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg_first, &["clean", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let first = json(&out);
    let child = second
        .lock()
        .unwrap()
        .take()
        .expect("the second clean started");
    let o = child.wait_with_output().unwrap();
    let err2 = std::fs::read_to_string(&second_err).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{err2}");
    assert!(
        err2.contains("is moving mail of this account: waiting for it to finish"),
        "the second clean waited for the first: {err2}"
    );
    let second = json(&String::from_utf8_lossy(&o.stdout));
    let moved = |v: &serde_json::Value| v["quarantined"].as_u64().unwrap() as usize;
    assert_eq!(moved(&first), forged, "{first}");
    assert_eq!(moved(&second), 0, "{second}");
    assert_eq!(each_in_one_place(&dc, &ids, "after both"), forged);
    assert_eq!(journal_counts(&dir), (forged, 0), "each journaled once");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Dovecot runs the MOVEs of one flight side by side: under load the next
/// MOVE's untagged COPYUID reaches the client before the tagged OK of the
/// one before it (seen in `cargo bench --bench sweep` on Dovecot 2.3.19,
/// where half the moves were then read back from both mailboxes: 104
/// round trips instead of 24, and on a mailbox with repeated Message-IDs
/// thousands of phantom "already moved by another client"). The quirk
/// proxy plays that order every time. Each move must still be committed
/// from its own COPYUID: nothing read back after the moves, nothing
/// counted as moved by another client or gone, every batch closed, each
/// message in one place.
#[test]
fn moves_answered_out_of_order_are_each_committed_from_their_own_copyuid() {
    let Some(dc) = Dovecot::start_or_skip("late_move_completions") else {
        return;
    };
    let (ids, forged) = flooded(&dc, 1500);
    assert!(
        forged > 2 * backscatter::clean::BATCH,
        "{forged} forged: at least three MOVEs in one flight"
    );
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            late_move_completions: true,
            ..Rules::default()
        },
    );
    let dir = tempdir("late-moves");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    let reordered = proxy.seen(|s| s.reordered);
    // At least one MOVE saw the next one's COPYUID first (usually two:
    // the proxy waits up to 2 s for the next MOVE).
    assert!(
        reordered >= 1,
        "the proxy reordered {reordered} completions"
    );
    assert_eq!(v["quarantined"], forged, "{v}");
    assert_eq!(v["already_moved"], 0, "{v}");
    assert_eq!(v["gone"], 0, "{v}");
    let commands = proxy.seen(|s| s.commands.clone());
    let first_move = commands
        .iter()
        .position(|c| c.starts_with("UID MOVE"))
        .expect("a UID MOVE");
    let after: Vec<&String> = commands[first_move..]
        .iter()
        .filter(|c| !c.starts_with("UID MOVE") && !c.starts_with("LOGOUT"))
        .collect();
    assert!(
        after.is_empty(),
        "nothing is read back once the moves are sent: {after:?}"
    );
    assert_eq!(journal_counts(&dir), (forged, 0), "every batch committed");
    assert_eq!(each_in_one_place(&dc, &ids, "after the sweep"), forged);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The other client moves 3 backscatter messages just before clean's
/// first FETCH: Dovecot still answers the FETCH for them (mdbox keeps
/// their bytes) and reports their EXPUNGE with it, so clean schedules
/// them, and its one UID MOVE succeeds with a COPYUID that names the
/// others only. Those 3 are counted as already moved, not as this run's.
#[test]
fn a_move_whose_copyuid_names_fewer_uids_commits_only_those() {
    let Some(dc) = Dovecot::start_or_skip("race_partial") else {
        return;
    };
    let f = flood(40);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    let uids = imap.append_many("INBOX", &f.inbox);
    let ids: Vec<String> = f.inbox.iter().map(|m| id_of(m)).collect();
    let forged_uids: Vec<u32> = f
        .inbox
        .iter()
        .zip(&uids)
        .filter(|(m, _)| f.expected[&id_of(m)] == Decision::Backscatter)
        .map(|(_, u)| *u)
        .collect();
    let forged = forged_uids.len();
    let taken: Vec<String> = forged_uids[..3].iter().map(|u| u.to_string()).collect();
    let port = dc.imap_port;
    let action = move |_: &str| {
        let mut other = Imap::connect(port, "alice", password("alice"));
        other.select("INBOX");
        other
            .command(&format!("UID MOVE {} Backscatter", taken.join(",")))
            .expect("the other client's move");
        other.logout();
    };
    let proxy = QuirkProxy::start(
        dc.imap_port,
        Rules {
            before: vec![Hook::before("UID FETCH", action)
                .containing("BODY.PEEK[]<0.")
                .times(1)],
            ..Rules::default()
        },
    );
    let dir = tempdir("race-partial");
    let cfg = config(&dir, proxy.port);
    let (code, out, err) = run(&dir, &cfg, &["clean", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let s = json(&out);
    assert_eq!(s["quarantined"], forged - 3, "{out}{err}");
    assert_eq!(s["already_moved"], 3, "{out}{err}");
    assert_eq!(s["gone"], 0, "{out}{err}");
    let moves: Vec<String> = proxy.seen(|s| {
        s.commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("UID MOVE"))
            .cloned()
            .collect()
    });
    // One move, of all the backscatter: no refusal, no retry.
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        uids_of(moves[0].split_whitespace().nth(2).unwrap()),
        forged_uids
    );
    assert_eq!(each_in_one_place(&dc, &ids, "after clean"), forged);
    assert_eq!(journal_counts(&dir), (forged - 3, 0));
    restore_all_once(&dc, &dir, &cfg, &ids, forged, 3);
}

/// A bounce scheduled by `watch` and moved by another client before
/// watch's MOVE: logged as already in quarantine, no error, no reconnect;
/// the next bounce moves as usual, and SIGTERM ends watch with 0.
#[test]
fn watch_logs_a_bounce_another_client_moved_first_and_goes_on() {
    let Some(dc) = Dovecot::start_or_skip("race_watch") else {
        return;
    };
    let f = flood(60);
    let bounces = crate::flood::forged(&f, 2);
    assert_eq!(bounces.len(), 2);
    dc.imap("alice").append_many("Sent", &f.sent);
    let proxy = QuirkProxy::start(dc.imap_port, Rules::default());
    let dir = tempdir("race-watch");
    let cfg = config(&dir, proxy.port);
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW", "alicepw")
            .env("BACKSCATTER_IDLE_CHECK", "2"),
    );
    log.wait_for_text(
        "the agent to connect",
        Duration::from_secs(90),
        "connected to",
    );
    proxy.set(Rules {
        before: vec![
            Hook::before("UID MOVE", another_client_moves(dc.imap_port, usize::MAX)).times(1),
        ],
        ..Rules::default()
    });
    dc.imap("alice").append("INBOX", &bounces[0]);
    log.wait_for_text(
        "the race to be logged",
        Duration::from_secs(120),
        "already in quarantine (moved by another client)",
    );
    let first = id_of(&bounces[0]);
    assert_eq!(places(&dc)[&first], ["Backscatter"]);
    dc.imap("alice").append("INBOX", &bounces[1]);
    let second = id_of(&bounces[1]);
    log.wait_for("the next bounce to move", Duration::from_secs(120), || {
        places(&dc)
            .get(&second)
            .is_some_and(|m| m == &["Backscatter"])
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let text = log.finish();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(!text.contains("reconnecting in"), "{text}");
    assert!(!text.contains("EXPUNGEISSUED"), "{text}");
    // Only watch's own move is journaled: `restore --all` brings that one
    // back, the other client's is named.
    assert_eq!(journal_counts(&dir), (1, 0));
    let ids = vec![first, second];
    restore_all_once(&dc, &dir, &cfg, &ids, 2, 1);
}

/// The soak: `watch` (catching up on the flood, then taking what arrives)
/// and `clean` as two processes at once on one flood of 300 messages, 100
/// of them arriving while both run. Both exit 0; every message is in
/// exactly one mailbox, the backscatter in quarantine; the journal holds
/// each quarantined message once and nothing unfinished; `restore --all`
/// brings every one back once. How often they collided depends on the
/// machine: it is printed, not asserted (the tests above play the race
/// deterministically).
#[test]
fn watch_and_clean_at_once_on_one_flood_move_each_message_once() {
    let Some(dc) = Dovecot::start_or_skip("race_soak") else {
        return;
    };
    let f = flood(300);
    let ids: Vec<String> = f.expected.keys().cloned().collect();
    let forged = ids
        .iter()
        .filter(|id| f.expected[*id] == Decision::Backscatter)
        .count();
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    let (early, late) = f.inbox.split_at(200);
    imap.append_many("INBOX", early);
    let dir = tempdir("race-soak");
    let cfg = config(&dir, dc.imap_port);
    let mut watch = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW", "alicepw")
        .env("BACKSCATTER_IDLE_CHECK", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = WatchLog::capture(&mut watch);
    // Both start at once: either may reach a message first.
    let clean = crate::util::backscatter(&dir, &cfg, &["clean", "--json"])
        .env("PW", "alicepw")
        .env("BACKSCATTER_TIMEOUT", "120")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mail keeps arriving while both run.
    for chunk in late.chunks(10) {
        imap.append_many("INBOX", chunk);
        std::thread::sleep(Duration::from_millis(150));
    }
    let o = clean.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "clean: {out}{err}\nwatch: {}",
        log.text()
    );
    let s = json(&out);
    assert_eq!(s["errors"], 0, "{out}{err}");
    assert_eq!(s["gone"], 0, "{out}{err}");
    // Whatever clean did not take, watch does.
    let start = Instant::now();
    loop {
        let p = places(&dc);
        let done = ids.iter().all(|id| {
            let want = if f.expected[id] == Decision::Backscatter {
                "Backscatter"
            } else {
                "INBOX"
            };
            p.get(id).is_some_and(|m| m == &[want])
        });
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "not every message in its place after 300 s; watch log:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    let status = watch.wait().unwrap();
    let text = log.finish();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(!text.contains("reconnecting in"), "{text}");
    // Messages clean moved before watch read them are gone, not
    // unreadable: no warning for them (newcomer round 4, fault 5g).
    assert!(!text.contains("could not be judged"), "{text}");
    assert_eq!(each_in_one_place(&dc, &ids, "after both"), forged);
    assert_eq!(journal_counts(&dir), (forged, 0), "{text}");
    eprintln!(
        "soak: {forged} backscatter of {}; clean moved {}, found {} already moved; watch logged {} already in quarantine",
        ids.len(),
        s["quarantined"],
        s["already_moved"],
        text.matches("already in quarantine (moved by another client)").count()
    );
    restore_all_once(&dc, &dir, &cfg, &ids, forged, 0);
}
