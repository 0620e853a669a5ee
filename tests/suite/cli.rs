//! The command line, run as a user would: exit statuses, the table, the
//! JSON contract, and clear errors.

use crate::util::root;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backscatter"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run backscatter")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn quick_start_classifies_the_bundled_samples() {
    let o = run(&[
        "classify",
        "--sent",
        "assets/samples/sent",
        "assets/samples/inbox",
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    assert!(out.starts_with("VERDICT"), "{out}");
    let summary = out.lines().last().unwrap();
    assert!(summary.contains("backscatter"), "{summary}");
    for v in ["backscatter", "legitimate", "normal"] {
        assert!(
            out.lines().any(|l| l.starts_with(v)),
            "the samples show a {v} verdict:\n{out}"
        );
    }
}

#[test]
fn json_lines_follow_the_contract() {
    let o = run(&["classify", "--json", "assets/samples/inbox"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let mut n = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        let obj = v.as_object().unwrap();
        assert!(obj["path"].as_str().unwrap().ends_with(".eml"));
        let verdict = obj["verdict"].as_str().unwrap();
        assert!(["backscatter", "legitimate", "normal"].contains(&verdict));
        match obj["kind"].as_str() {
            None => assert!(obj["kind"].is_null() && verdict == "normal"),
            Some(k) => assert!([
                "bounce",
                "autoreply",
                "challenge",
                "virus_notice",
                "feedback_report"
            ]
            .contains(&k)),
        }
        let id = &obj["original_message_id"];
        assert!(id.is_null() || id.as_str().unwrap().starts_with('<'));
        assert!(obj["reasons"].as_array().is_some_and(|r| !r.is_empty()));
        n += 1;
    }
    assert!(n >= 10, "{n} messages");
}

#[test]
fn sent_ids_turn_backscatter_into_legitimate() {
    let dir = tempdir();
    let ids = dir.join("ids.txt");
    // The original of a real Postfix bounce in the corpus.
    let eml = "tests/corpus/sisimai/bsd/lhost-postfix-03.eml";
    let first = run(&["classify", "--json", eml]);
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["verdict"], "backscatter");
    let id = v["original_message_id"].as_str().unwrap().to_string();
    std::fs::write(&ids, format!("# my sent mail\n{id}\n")).unwrap();
    let o = run(&[
        "classify",
        "--json",
        "--sent-ids",
        ids.to_str().unwrap(),
        eml,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "legitimate", "{v}");
    assert!(v["reasons"][0]
        .as_str()
        .unwrap()
        .contains("is in your sent mail"));
}

/// Newcomer round 3 #17: a list saved by Notepad (a byte order mark) with
/// a comment after the ID is read as the user meant; a line that is not
/// a Message-ID refuses the command (exit 2) with the sentence `sieve
/// generate --sent-ids` gives, instead of indexing a mangled ID.
#[test]
fn sent_ids_with_a_bom_and_comments_read_as_meant_and_bad_lines_refuse() {
    let dir = tempdir();
    let eml = "tests/corpus/sisimai/bsd/lhost-postfix-03.eml";
    let first = run(&["classify", "--json", eml]);
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let id = v["original_message_id"].as_str().unwrap().to_string();
    for (name, body) in [
        ("bom.txt", format!("\u{feff}{id}\n<abc@x.org>  # second\n")),
        ("comment.txt", format!("{id}  # mine\n")),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, body).unwrap();
        let o = run(&["classify", "--json", "--sent-ids", f.to_str().unwrap(), eml]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["verdict"], "legitimate", "{name}: {v}");
    }
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, format!("{id}\n{id} mine\n")).unwrap();
    let o = run(&["classify", "--sent-ids", bad.to_str().unwrap(), eml]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "bad.txt: line 2 (\"{id} mine\") is not a Message-ID"
        )),
        "{err}"
    );
}

#[test]
fn mbox_sent_folder_is_read() {
    let dir = tempdir();
    let mbox = dir.join("Sent");
    // A real original, extracted from the sample set's sent folder, in an mbox.
    let mut data = Vec::new();
    for e in std::fs::read_dir(root().join("assets/samples/sent")).unwrap() {
        let p = e.unwrap().path();
        data.extend_from_slice(b"From me@example.org Mon Jan  1 00:00:00 2024\n");
        data.extend_from_slice(&std::fs::read(p).unwrap());
        data.extend_from_slice(b"\n");
    }
    std::fs::write(&mbox, data).unwrap();
    let a = run(&[
        "classify",
        "--sent",
        "assets/samples/sent",
        "--json",
        "assets/samples/inbox",
    ]);
    let b = run(&[
        "classify",
        "--sent",
        mbox.to_str().unwrap(),
        "--json",
        "assets/samples/inbox",
    ]);
    assert!(a.status.success() && b.status.success());
    assert_eq!(text(&a.stdout), text(&b.stdout));
}

#[test]
fn usage_errors_exit_2_runtime_errors_exit_1() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["classify"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "classify",
        "--sent",
        "/nonexistent/Sent",
        "assets/samples/inbox",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("backscatter: /nonexistent/Sent does not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one sentence: {err}");

    // A missing input: the others are still classified, then exit 1.
    let o = run(&["classify", "/nonexistent/x.eml", "assets/samples/inbox"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("messages:"));
    let err = text(&o.stderr);
    assert!(err.contains("cannot read /nonexistent/x.eml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_teaches() {
    let o = run(&["classify", "--help"]);
    assert!(o.status.success());
    let h = text(&o.stdout);
    for w in [
        "--sent",
        "--sent-ids",
        "--json",
        "backscatter",
        "legitimate",
        "normal",
        "Examples",
    ] {
        assert!(h.contains(w), "help lacks {w}:\n{h}");
    }
}

/// A fresh private directory under the target dir (no tempfile crate needed).
fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_file_that_is_not_mail_in_sent_is_skipped_with_a_warning() {
    let dir = tempdir();
    // A Maildir: the samples' sent messages in cur/, and a stray file that
    // is not mail (hand-written: notes, as a sync tool or a user leaves).
    let cur = dir.join("Sent/cur");
    std::fs::create_dir_all(&cur).unwrap();
    for e in std::fs::read_dir(root().join("assets/samples/sent")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, cur.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(cur.join("notes.txt"), "to do: renew the domain\nmilk\n").unwrap();
    let sent = dir.join("Sent");
    let with = run(&[
        "classify",
        "--sent",
        sent.to_str().unwrap(),
        "assets/samples/inbox",
    ]);
    let without = run(&[
        "classify",
        "--sent",
        "assets/samples/sent",
        "assets/samples/inbox",
    ]);
    assert!(with.status.success(), "{}", text(&with.stderr));
    // The same table and the same count of sent messages.
    assert_eq!(text(&with.stdout), text(&without.stdout));
    let err = text(&with.stderr);
    assert!(
        err.contains("notes.txt in --sent: not a mail message"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_empty_password_variable_is_called_empty() {
    let dir = tempdir();
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[accounts.alice]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"ALICE_PW\"\n",
    )
    .unwrap();
    let check = |value: Option<&str>| {
        let mut c = bin();
        c.args(["account", "check"])
            .env("BACKSCATTER_CONFIG", &cfg)
            .env("NO_COLOR", "1")
            .env_remove("ALICE_PW");
        if let Some(v) = value {
            c.env("ALICE_PW", v);
        }
        let o = c.output().unwrap();
        text(&o.stderr)
    };
    let empty = check(Some(""));
    assert!(
        empty.contains("the environment variable ALICE_PW (password.env) is set but empty"),
        "{empty}"
    );
    let unset = check(None);
    assert!(
        unset.contains("the environment variable ALICE_PW (password.env) is not set"),
        "{unset}"
    );
}

/// A reader that goes away (`backscatter ... | head`) ends a command
/// quietly with status 0, whether the command writes with `writeln!`
/// (classify) or `println!` (keep). The pipe's read end is closed before
/// the command starts, so every write to standard output fails with EPIPE.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let dir = tempdir();
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[accounts.a]\nhost = \"127.0.0.1\"\nusername = \"a\"\npassword.env = \"PW\"\n",
    )
    .unwrap();
    let cases: [&[&str]; 3] = [
        &[
            "classify",
            "--sent",
            "assets/samples/sent",
            "assets/samples/inbox",
        ],
        &["classify", "--json", "assets/samples/inbox"],
        &["keep", "partner.example"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(args)
            .current_dir(root())
            .env("BACKSCATTER_CONFIG", &cfg)
            .env("NO_COLOR", "1")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{args:?}");
    }
}

/// `account login` teaches where the password comes from: NAME is the
/// account, never the password (what was typed is not echoed when it
/// names no account; `--password` is refused); an account that reads
/// password.env or password.command is told what to change instead of
/// storing a password nothing reads; without a terminal it says so. All
/// usage errors: exit 2, one sentence. `account add --password-env` and
/// the config refuse a value that is no variable name without echoing it.
#[test]
fn account_login_and_password_env_teach_where_the_password_comes_from() {
    let dir = tempdir();
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[accounts.work]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"me\"\npassword.env = \"WORK_PW\"\ndefault = true\n\
         [accounts.home]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"me\"\npassword.command = [\"pass\", \"show\", \"mail/my home\"]\n\
         [accounts.desk]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"me\"\npassword.keyring = true\n",
    )
    .unwrap();
    let secret = "S3cr3t-Battery";
    // No controlling terminal (setsid): login cannot ask, and says so.
    let login = |args: &[&str]| {
        let o = Command::new("setsid")
            .arg("-w")
            .arg(env!("CARGO_BIN_EXE_backscatter"))
            .args(["--config", cfg.to_str().unwrap(), "account", "login"])
            .args(args)
            .env("NO_COLOR", "1")
            .env("HOME", &dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains(secret), "{args:?} echoed the password: {err}");
        err
    };
    let err = login(&[secret]);
    assert!(
        err.contains("takes the name of an account") && err.contains("accounts: desk, home, work"),
        "{err}"
    );
    let err = login(&["--password", secret, "desk"]);
    assert!(err.contains("no password on the command line"), "{err}");
    let err = login(&["work"]);
    assert!(
        err.contains("environment variable WORK_PW (password.env)")
            && err.contains("password.keyring = true in [accounts.work]"),
        "{err}"
    );
    let err = login(&["--account", "home"]);
    assert!(
        err.contains("the command `pass show 'mail/my home'` (password.command)")
            || err.contains("the command `pass show \"mail/my home\"` (password.command)"),
        "{err}"
    );
    let err = login(&["desk"]);
    assert!(err.contains("asks for the password on a terminal"), "{err}");
    let help = text(&run(&["account", "login", "--help"]).stdout);
    assert!(
        help.contains("Usage: backscatter account login [OPTIONS] [NAME]")
            && help.contains("Not the password"),
        "{help}"
    );

    // account add --password-env with the password instead of a name, or
    // a variable that is not set: refused, not echoed, nothing written.
    let new_cfg = dir.join("new.toml");
    for (value, says) in [
        (secret.to_string() + "!", "not the password itself"),
        ("MAIL_PW_NOT_SET_HERE".to_string(), "is not set here"),
    ] {
        let o = bin()
            .args(["--config", new_cfg.to_str().unwrap(), "account", "add", "t"])
            .args(["--address", "me@example.org", "--host", "127.0.0.1"])
            .args(["--port", "9", "--tls", "plain", "--password-env", &value])
            .env("NO_COLOR", "1")
            .env("HOME", &dir)
            .env_remove("MAIL_PW_NOT_SET_HERE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says) && !err.contains(&value), "{err}");
        assert!(!new_cfg.exists(), "{err}");
    }
    // --tls plain to a host that is not loopback: the option is named,
    // not a config file and key (newcomer round 3, 15g).
    let o = bin()
        .args([
            "--config",
            new_cfg.to_str().unwrap(),
            "account",
            "add",
            "w5",
        ])
        .args(["--address", "me@example.org", "--host", "192.0.2.1"])
        .args(["--tls", "plain", "--password-env", "MAIL_PW", "--no-check"])
        .env("NO_COLOR", "1")
        .env("HOME", &dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "backscatter: --tls plain sends your password unencrypted and is allowed only to a loopback address, not 192.0.2.1: use --tls implicit or --tls starttls; nothing written"
    );
    assert!(!new_cfg.exists(), "{err}");
    // A config that holds the password there: the key is named, the
    // value never printed.
    std::fs::write(
        &new_cfg,
        format!("[accounts.t]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"me\"\npassword.env = \"{secret}!\"\n"),
    )
    .unwrap();
    let o = bin()
        .args(["--config", new_cfg.to_str().unwrap(), "account", "check"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("accounts.t.password.env") && !err.contains(secret),
        "{err}"
    );
}
