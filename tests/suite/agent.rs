//! `backscatter watch` against a real Dovecot: messages appended while it
//! watches are moved (forged) or left alone (ordinary, legitimate), across
//! a Dovecot restart, for two accounts at once (one of them compressed),
//! and SIGTERM exits 0.

use crate::flood::{flood, id_of};
use crate::harness::Dovecot;
use crate::sweep::{tempdir, where_is};
use backscatter::Decision;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    backscatter_testkit::watchlog::wait_for(what, timeout, &String::new, f)
}

fn place(dc: &Dovecot, user: &str, id: &str) -> Vec<String> {
    where_is(dc, user).get(id).cloned().unwrap_or_default()
}

#[test]
fn watch_moves_new_backscatter_survives_a_restart_and_stops_on_sigterm() {
    let Some(mut dc) = Dovecot::start_or_skip("watch") else {
        return;
    };
    let f = flood(900);
    let pick = |d: Decision, n: usize| -> Vec<Vec<u8>> {
        f.inbox
            .iter()
            .zip(f.sources.iter())
            .filter(|(m, _)| {
                let id = id_of(m);
                f.expected[&id] == d
            })
            .map(|(m, _)| m.clone())
            .take(n)
            .collect()
    };
    let forged = pick(Decision::Backscatter, 4);
    let legit = pick(Decision::Legitimate, 1);
    let normal = pick(Decision::Normal, 1);
    for user in ["alice", "bob"] {
        dc.imap(user).append_many("Sent", &f.sent);
    }
    let dir = tempdir("watch");
    let cfg = dir.join("config.toml");
    let mut text = String::new();
    // bob's connection is compressed (COMPRESS=DEFLATE): IDLE, DONE and
    // the moves go through the deflate layer.
    for (user, compress) in [("alice", "auto"), ("bob", "always")] {
        text.push_str(&format!(
            "[accounts.{user}]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"{user}\"\npassword.env = \"PW_{user}\"\ncompress = \"{compress}\"\n",
            dc.imap_port
        ));
    }
    std::fs::write(&cfg, text).unwrap();
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW_alice", "alicepw")
            .env("PW_bob", "bobpw"),
    );
    log.wait_for("both accounts to connect", Duration::from_secs(60), || {
        log.count("connected to") >= 2
    });
    // A second agent for the same accounts refuses to start.
    let second = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW_alice", "alicepw")
        .env("PW_bob", "bobpw")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("already watching account"), "{err}");

    // New mail while watching: forged moves, the rest stays.
    let t0 = Instant::now();
    let mut imap = dc.imap("alice");
    imap.append("INBOX", &forged[0]);
    imap.append("INBOX", &legit[0]);
    imap.append("INBOX", &normal[0]);
    dc.imap("bob").append("INBOX", &forged[1]);
    let (f0, f1) = (id_of(&forged[0]), id_of(&forged[1]));
    log.wait_for(
        "the forged response to be quarantined",
        Duration::from_secs(60),
        || place(&dc, "alice", &f0) == ["Backscatter"],
    );
    eprintln!("watch: appended -> quarantined in {:?}", t0.elapsed());
    wait_for(
        "bob's forged response to be quarantined",
        Duration::from_secs(60),
        || place(&dc, "bob", &f1) == ["Backscatter"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(place(&dc, "alice", &id_of(&legit[0])), ["INBOX"]);
    assert_eq!(place(&dc, "alice", &id_of(&normal[0])), ["INBOX"]);

    // Dovecot goes down and comes back: what arrives afterwards is handled.
    dc.restart();
    let mut imap = dc.imap("alice");
    imap.append("INBOX", &forged[2]);
    let f2 = id_of(&forged[2]);
    wait_for(
        "a forged response after the restart",
        Duration::from_secs(60),
        || place(&dc, "alice", &f2) == ["Backscatter"],
    );

    // SIGTERM: exits 0 within a few seconds (30 s allowed on a loaded
    // machine; a watch that ignores SIGTERM runs forever).
    let t = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "watch did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log.finish();
    assert!(status.success(), "exit {status:?}\n{log}");
    eprintln!("watch: stopped {:?} after SIGTERM", t.elapsed());
    assert!(log.contains("quarantine"), "{log}");
    assert!(
        !log.contains("alicepw") && !log.contains("bobpw"),
        "no secret in the log"
    );
    // One line per action, with its reason.
    assert!(
        log.lines()
            .any(|l| l.contains("quarantine bounce") || l.contains("quarantine ")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_login_stops_that_account_only() {
    let Some(dc) = Dovecot::start_or_skip("watch_auth") else {
        return;
    };
    let dir = tempdir("watch-auth");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.bad]\nhost = \"127.0.0.1\"\nport = {p}\ntls = \"plain\"\nusername = \"carol\"\npassword.env = \"PW_BAD\"\n[accounts.good]\nhost = \"127.0.0.1\"\nport = {p}\ntls = \"plain\"\nusername = \"bob\"\npassword.env = \"PW_GOOD\"\n",
            p = dc.imap_port
        ),
    )
    .unwrap();
    let mut child = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW_BAD", "not-carols-password")
        .env("PW_GOOD", "bobpw")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // Still running for the good account.
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch must keep the good account"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("refused the login for carol"), "{log}");
    assert_eq!(
        log.matches("refused the login").count(),
        1,
        "no fast retry: {log}"
    );
    assert!(!log.contains("not-carols-password"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGKILL `watch` at random moments while it moves a burst of new mail
/// (and while it catches up after each restart): after every kill each
/// message is in exactly one mailbox; the last run finishes the job, every
/// message ends where the classifier says, and the journal agrees.
#[test]
fn sigkill_watch_mid_move_loses_and_duplicates_nothing() {
    let Some(dc) = Dovecot::start_or_skip("sigkill_watch") else {
        return;
    };
    let f = flood(1500);
    dc.imap("carol").append_many("Sent", &f.sent);
    let dir = tempdir("sigkill-watch");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.carol]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"carol\"\npassword.env = \"PW\"\n",
            dc.imap_port
        ),
    )
    .unwrap();
    let start = || {
        crate::util::backscatter(&dir, &cfg, &["watch"])
            .env("PW", "carolpw")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let quarantined = || {
        where_is(&dc, "carol")
            .values()
            .filter(|v| v.contains(&"Backscatter".to_string()))
            .count()
    };
    let exactly_once = |when: &str| {
        let w = crate::sweep::where_is_settled(&dc, "carol");
        for id in f.expected.keys() {
            let n = w.get(id).map_or(0, Vec::len);
            assert_eq!(n, 1, "{id} is in {n} places after {when}");
        }
    };
    let want_q = f
        .expected
        .values()
        .filter(|d| **d == Decision::Backscatter)
        .count();
    // Pseudo-random kill moments, seeded by the clock (printed to rerun).
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("sigkill watch: seed {seed}");
    let mut next_ms = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo)
    };

    // A burst of new mail while watching.
    let mut child = start();
    std::thread::sleep(Duration::from_millis(1500));
    dc.imap("carol").append_many("INBOX", &f.inbox);
    let mut mid = 0;
    let mut moments = Vec::new();
    let ms = next_ms(100, 900);
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
    moments.push(ms);
    exactly_once("a kill during the burst");
    let q = quarantined();
    eprintln!("kill at {ms} ms after the burst: {q} of {want_q} quarantined");
    if q > 0 && q < want_q {
        mid += 1;
    }
    // Restarts catch up, killed again: every other one at a random moment
    // (which on a loaded machine often lands before the first move), the
    // others as soon as a move is seen, so that some kills land while a
    // catch-up is under way however slow the machine.
    let mut lo = 450;
    for round in 0..16 {
        if quarantined() >= want_q {
            break;
        }
        let before = quarantined();
        let mut child = start();
        let t0 = std::time::Instant::now();
        let ms = if round % 2 == 1 {
            let poll_until = t0 + Duration::from_secs(60);
            while quarantined() == before && std::time::Instant::now() < poll_until {
                std::thread::sleep(Duration::from_millis(5));
            }
            t0.elapsed().as_millis() as u64
        } else {
            let ms = next_ms(lo, lo + 550);
            std::thread::sleep(Duration::from_millis(ms));
            ms
        };
        let _ = child.kill();
        let _ = child.wait();
        moments.push(ms);
        exactly_once(&format!("a kill at {ms} ms"));
        let after = quarantined();
        eprintln!("kill at {ms} ms: {before} -> {after} of {want_q} quarantined");
        if after > before && after < want_q {
            mid += 1;
        }
        if after == before && round % 2 == 0 {
            // Grow by half: a loaded 2-core machine can take seconds to
            // reach the first move of a restart.
            lo += lo / 2;
        }
    }
    // The last run finishes the job.
    let mut child = start();
    wait_for("the agent to finish", Duration::from_secs(240), || {
        quarantined() >= want_q
    });
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let (q, kept) = crate::sweep::check_placement(&dc, &f, "carol");
    eprintln!(
        "sigkill watch: kills at {moments:?} ms, {mid} of them mid-move; final {q} quarantined, {kept} kept"
    );
    // A kill seen to land after a move and before the last one; none
    // when the burst's own kill came after everything had moved.
    assert!(
        mid >= 1 || moments.len() == 1,
        "no kill landed mid-move: {moments:?}"
    );
    let journal = dir.join("data/backscatter/journal-carol.jsonl");
    let entries = backscatter::journal::read(&journal).unwrap();
    assert!(backscatter::journal::unfinished(&entries).is_empty());
    let in_journal: std::collections::BTreeSet<String> =
        backscatter::journal::quarantined(&entries)
            .into_iter()
            .filter_map(|e| e.message_id)
            .collect();
    let in_q: std::collections::BTreeSet<String> = where_is(&dc, "carol")
        .into_iter()
        .filter(|(_, v)| v.contains(&"Backscatter".to_string()))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(in_journal, in_q, "the journal agrees with the server");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The agent's supervisor as a library, mini-redis style
/// (`agent::run(accounts, dirs, timing, shutdown)`): a second agent for an
/// account is refused by its lock; new backscatter is moved while it runs;
/// it returns `Ok` once the shutdown future completes; a watched mailbox
/// that does not exist stops it with a configuration error.
#[test]
fn agent_run_moves_until_its_shutdown_future_completes() {
    use backscatter::agent::{self, AgentError};
    use backscatter::watch::Timing;
    let Some(dc) = Dovecot::start_or_skip("agent_run") else {
        return;
    };
    let f = flood(900);
    let forged = crate::flood::forged(&f, 2);
    dc.imap("alice").append_many("Sent", &f.sent);
    let dir = tempdir("agent-run");
    let dirs = backscatter::clean::Dirs {
        data: dir.join("data"),
        state: dir.join("state"),
    };
    let a = crate::sweep::account(&dc, "alice");
    let pw = backscatter::secret::Secret::new(crate::harness::password("alice").into());
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };

    // Another agent holds the account's lock: refused, nothing watched.
    {
        let _held = agent::lock(&dirs, &a.name).unwrap();
        let e = rt()
            .block_on(agent::run(
                vec![(a.clone(), pw.clone())],
                dirs.clone(),
                Timing::from_env(),
                std::future::pending(),
            ))
            .unwrap_err();
        assert!(matches!(e, AgentError::Locked(_)), "{e}");
        assert!(e.to_string().contains("already watching account"), "{e}");
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = std::thread::spawn({
        let (a, pw, dirs) = (a.clone(), pw.clone(), dirs.clone());
        move || {
            rt().block_on(agent::run(vec![(a, pw)], dirs, Timing::from_env(), async {
                let _ = stopped.await;
            }))
        }
    });
    let mut imap = dc.imap("alice");
    for m in &forged {
        imap.append("INBOX", m);
    }
    wait_for(
        "the forged responses to be quarantined",
        Duration::from_secs(120),
        || {
            forged
                .iter()
                .all(|m| place(&dc, "alice", &id_of(m)) == ["Backscatter"])
        },
    );
    assert!(!running.is_finished(), "it runs until shutdown");
    stop.send(()).unwrap();
    wait_for("the agent to stop", Duration::from_secs(60), || {
        running.is_finished()
    });
    assert_eq!(running.join().unwrap(), Ok(()));

    // Every watcher stops on a configuration error: the agent says so.
    let mut missing = a.clone();
    missing.watch = vec!["NoSuchMailbox".into()];
    let e = rt()
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(120),
                agent::run(
                    vec![(missing, pw)],
                    dirs,
                    Timing::from_env(),
                    std::future::pending(),
                ),
            )
            .await
        })
        .expect("stopped on its own")
        .unwrap_err();
    match &e {
        AgentError::Stopped { failures, config } => {
            assert!(*config, "{e}");
            assert_eq!(failures.len(), 1, "{e}");
            assert!(failures[0].contains("NoSuchMailbox"), "{e}");
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .starts_with("every watched account stopped: test: "),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
