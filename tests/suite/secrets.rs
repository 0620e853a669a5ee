//! Secrets and private state: the password (right or wrong, and its SASL
//! base64 form) never appears in any output of any command, `watch -v`
//! included; every file backscatter writes is readable by the user alone;
//! a config file that others can read and that holds a password gets a
//! warning.

use crate::harness::Dovecot;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn forms(pw: &str) -> Vec<String> {
    vec![
        pw.to_string(),
        backscatter::managesieve::base64(format!("\0alice\0{pw}").as_bytes()),
        backscatter::managesieve::base64(pw.as_bytes()),
    ]
}

fn run(dir: &Path, cfg: &Path, pw: &str, args: &[&str]) -> String {
    let mut c = crate::util::backscatter(dir, cfg, args);
    c.env("PW", pw)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    if args[0] == "watch" {
        std::thread::sleep(Duration::from_secs(3));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_private(root: &Path) -> usize {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    for e in entries.flatten() {
        let p = e.path();
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is mode {:o}",
            p.display(),
            mode & 0o777
        );
        n += 1;
        if p.is_dir() {
            n += assert_private(&p);
        }
    }
    n
}

#[test]
fn passwords_never_appear_and_state_files_are_private() {
    let Some(dc) = Dovecot::start_or_skip("secrets") else {
        return;
    };
    let f = crate::flood::flood(60);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let dir = crate::sweep::tempdir("secrets");
    let cfg = dir.join("config.toml");
    let write_cfg = |password: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\n{password}\n[accounts.alice.sieve]\nport = {}\n",
                dc.imap_port, dc.sieve_port
            ),
        )
        .unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_cfg("password.env = \"PW\"");
    let right = "alicepw";
    let wrong = "Wr0ng-Battery-0xF00D";
    let commands: [&[&str]; 8] = [
        &["account", "check"],
        &["clean", "--dry-run", "--json"],
        &["clean"],
        &["sieve", "install"],
        &["sieve", "status"],
        &["watch", "-v"],
        &["restore", "--all"],
        &["sieve", "uninstall"],
    ];
    let mut outputs = 0;
    for pw in [right, wrong] {
        for args in commands {
            let out = run(&dir, &cfg, pw, args);
            for form in forms(pw) {
                assert!(
                    !out.contains(&form),
                    "{args:?} with {pw:?} printed {form:?}:\n{out}"
                );
            }
            assert!(!out.contains("panicked"), "{args:?}: {out}");
            outputs += 1;
        }
    }
    // The agent's log at debug level did say something.
    let log = run(&dir, &cfg, right, &["watch", "-v"]);
    assert!(log.contains("DEBUG") || log.contains("INFO"), "{log}");

    // The HTML report (a file the user names; also when it was there
    // before, readable by others) and the rules journal of `filter`.
    let out_dir = dir.join("exports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let html = out_dir.join("report.html");
    std::fs::write(&html, "old").unwrap();
    std::fs::set_permissions(&html, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fresh = out_dir.join("fresh.html");
    for page in [&html, &fresh] {
        let out = run(
            &dir,
            &cfg,
            right,
            &["report", "--html", page.to_str().unwrap()],
        );
        assert!(out.contains("HTML report written"), "{out}");
        assert!(!out.contains(right), "{out}");
    }
    assert_eq!(assert_private(&out_dir), 2);
    let rules = dir.join("rules.sieve");
    std::fs::write(
        &rules,
        "require \"imap4flags\";\naddflag \"$seen-by-rules\";\n",
    )
    .unwrap();
    let rules_line = format!("rules = \"{}\"", rules.display());
    write_cfg(&format!("password.env = \"PW\"\n{rules_line}"));
    let out = run(&dir, &cfg, right, &["filter"]);
    assert!(out.contains("Filtered"), "{out}");
    write_cfg("password.env = \"PW\"");

    // Every file and directory backscatter wrote: journal, sent cache,
    // watch state, Sieve install state, the backup of the user's script,
    // the rules journal.
    let files = assert_private(&dir.join("state")) + assert_private(&dir.join("data"));
    assert!(files >= 3, "only {files} state files");
    assert!(
        dir.join("data/backscatter/rules-journal-alice.jsonl")
            .exists(),
        "no rules journal"
    );

    // A password written into a config file others can read: a warning
    // that names the account, not the password.
    write_cfg(&format!(
        "password.command = [\"printf\", \"%s\", \"{right}\"]"
    ));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&dir, &cfg, "", &["account", "check"]);
    assert!(
        out.contains("can be read by other users") && out.contains("chmod 600"),
        "{out}"
    );
    assert!(!out.contains(right), "{out}");
    // The same password echoed by a shell script (newcomer round 3, 15f).
    write_cfg(&format!(
        "password.command = [\"sh\", \"-c\", \"echo {right}\"]"
    ));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&dir, &cfg, "", &["account", "check"]);
    assert!(out.contains("can be read by other users"), "{out}");
    assert!(!out.contains(right), "{out}");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&dir, &cfg, "", &["account", "check"]);
    assert!(!out.contains("can be read by other users"), "{out}");
    eprintln!("{outputs} command outputs checked, {files} private files");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `password.command` that never returns (a prompt nobody answers) is
/// stopped after the command timeout, with its children: one sentence,
/// no hang. The command starts a child that keeps the output pipe open,
/// as `sh -c` does: the run must not wait for it either.
#[test]
fn a_password_command_that_never_returns_times_out() {
    let dir = crate::sweep::tempdir("pw-timeout");
    let cfg = dir.join("config.toml");
    // A sleep of its own length, to find it by.
    let sleep = format!("sleep 999.{}", std::process::id() % 1000);
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"alice\"\npassword.command = [\"sh\", \"-c\", \"{sleep}; echo pw\"]\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = std::time::Instant::now();
    let out = crate::util::backscatter(&dir, &cfg, &["clean"])
        .env("BACKSCATTER_TIMEOUT", "2")
        .output()
        .unwrap();
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    // 2 s of waiting; generous for a loaded machine, far from 1000 s.
    assert!(took < Duration::from_secs(60), "took {took:?}: {err}");
    assert!(
        err.contains("(password.command) did not finish within 2 s and was stopped"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The whole group was stopped: the shell's sleep did not outlive it.
    std::thread::sleep(Duration::from_millis(300));
    let pgrep = Command::new("pgrep")
        .args(["-f", "-x", &sleep])
        .output()
        .unwrap();
    assert!(
        pgrep.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&pgrep.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
