//! Accounts against a real Dovecot: TLS (implicit and STARTTLS, verified
//! against the test server's certificate), clear errors for an unknown
//! certificate, a wrong password and a missing mailbox, and the `clean`,
//! `restore` and `account check` commands as a user runs them.

use crate::harness::{password, Dovecot};
use crate::sweep::{account, tempdir};
use backscatter::config::TlsMode;
use backscatter::imap::{self, ErrorKind};
use backscatter::secret::Secret;
use std::path::Path;
use std::process::Command;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn tls_is_verified_and_errors_are_one_clear_sentence() {
    let Some(dc) = Dovecot::start_or_skip("tls_and_errors") else {
        return;
    };
    let rt = rt();
    let pw = Secret::new(password("alice").into());

    // Implicit TLS, trusting the test server's certificate.
    let mut a = account(&dc, "alice");
    a.imap.host = "localhost".into();
    a.imap.tls = TlsMode::Implicit;
    a.imap.port = dc.imaps_port;
    a.imap.ca_file = Some(dc.ca_file.clone());
    let s = rt
        .block_on(imap::connect(&a, &pw))
        .expect("IMAPS with the CA");
    assert!(s.has("MOVE") && s.has("IDLE") && s.has("UIDPLUS"));
    rt.block_on(s.logout());

    // STARTTLS, same trust.
    let mut b = a.clone();
    b.imap.tls = TlsMode::Starttls;
    b.imap.port = dc.imap_port;
    let s = rt
        .block_on(imap::connect(&b, &pw))
        .expect("STARTTLS with the CA");
    rt.block_on(s.logout());

    // A self-signed certificate nobody trusts is refused.
    let mut c = a.clone();
    c.imap.ca_file = None;
    let e = rt.block_on(imap::connect(&c, &pw)).err().expect("refused");
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(e.message.contains("could not be verified"), "{e}");
    assert!(e.message.contains("tls-ca-file"), "{e}");
    assert!(!e.message.contains('\n'), "one sentence: {e}");

    // The wrong password: refused, and never echoed.
    let wrong = Secret::new("Wr0ng-Pa55word!".into());
    let e = rt
        .block_on(imap::connect(&a, &wrong))
        .err()
        .expect("refused");
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(e.message.contains("refused the login for alice"), "{e}");
    assert!(!e.message.contains("Wr0ng-Pa55word!"), "{e}");

    // Nothing listens: a connection error, not a hang.
    let mut d = account(&dc, "alice");
    d.imap.port = 1;
    let e = rt
        .block_on(imap::connect(&d, &pw))
        .err()
        .expect("no server");
    assert_eq!(e.kind, ErrorKind::Connect);
}

fn write_config(dir: &Path, dc: &Dovecot, user: &str, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.{user}]\nhost = \"localhost\"\nport = {}\ntls = \"implicit\"\ntls-ca-file = \"{}\"\nusername = \"{user}\"\npassword.env = \"BS_TEST_PASSWORD\"\n{extra}[accounts.{user}.sieve]\nport = {}\n",
            dc.imaps_port,
            dc.ca_file.display(),
            dc.sieve_port
        ),
    )
    .unwrap();
    cfg
}

fn cli(dir: &Path, cfg: &Path, pw: &str, args: &[&str]) -> std::process::Output {
    crate::util::backscatter(dir, cfg, args)
        .env("BS_TEST_PASSWORD", pw)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn clean_restore_and_check_from_the_command_line() {
    let Some(dc) = Dovecot::start_or_skip("clean_cli") else {
        return;
    };
    let f = crate::sweep::flood(400);
    let mut imap = dc.imap("bob");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let dir = tempdir("cli-clean");
    let cfg = write_config(&dir, &dc, "bob", "");

    let o = cli(&dir, &cfg, "bobpw", &["account", "check"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}{}", out, text(&o.stderr));
    assert!(out.contains("logged in to localhost"), "{out}");
    assert!(out.contains("TLS, certificate verified"), "{out}");
    assert!(
        out.contains("ManageSieve: localhost:")
            && out.contains("STARTTLS, verified; include available"),
        "{out}"
    );
    assert!(
        out.contains("MOVE") && out.contains("Sent:        Sent"),
        "{out}"
    );
    assert!(
        out.contains("Everything backscatter needs is there."),
        "{out}"
    );
    // The same report as JSON.
    let o = cli(&dir, &cfg, "bobpw", &["account", "check", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["account"], "bob");
    assert_eq!(v["tls"], "implicit");
    assert_eq!(v["sent"], serde_json::json!(["Sent"]));
    assert_eq!(v["managesieve"]["reachable"], true);
    assert_eq!(v["managesieve"]["include"], true);
    assert_eq!(v["missing"], serde_json::json!([]));
    assert!(v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "MOVE" && c["offered"] == true));
    // ManageSieve not reachable: said so, not "Everything ... is there".
    let no_sieve = dir.join("no-sieve.toml");
    let t = std::fs::read_to_string(&cfg).unwrap();
    let t = t.replace(&format!("port = {}\n", dc.sieve_port), "port = 1\n");
    std::fs::write(&no_sieve, t).unwrap();
    let o = crate::util::backscatter(&dir, &no_sieve, &["account", "check"])
        .env("BS_TEST_PASSWORD", "bobpw")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.contains("ManageSieve: localhost:1 not reachable"),
        "{out}"
    );
    assert!(
        out.contains("`backscatter sieve install` will not work"),
        "{out}"
    );
    assert!(!out.contains("Everything"), "{out}");

    // --since a day long past: every message; a day to come: none.
    let o = cli(
        &dir,
        &cfg,
        "bobpw",
        &["clean", "--dry-run", "--json", "--since", "2000-01-01"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scanned"], 400);
    let o = cli(
        &dir,
        &cfg,
        "bobpw",
        &["clean", "--dry-run", "--json", "--since", "2999-01-01"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scanned"], 0);

    let o = cli(&dir, &cfg, "bobpw", &["clean", "--dry-run"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.lines().any(|l| l.starts_with("would move  uid ")),
        "{out}"
    );
    assert!(out.contains("Dry run: 400 messages of INBOX"), "{out}");
    assert_eq!(imap.select("INBOX"), 400);

    let o = cli(&dir, &cfg, "bobpw", &["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for k in [
        "scanned",
        "quarantined",
        "legitimate",
        "normal",
        "errors",
        "seconds",
    ] {
        assert!(v.get(k).is_some(), "clean --json has {k}: {v}");
    }
    assert_eq!(v["scanned"], 400);
    let q = v["quarantined"].as_u64().unwrap();
    assert!(q > 0);
    assert_eq!(
        v["quarantined"].as_u64().unwrap()
            + v["legitimate"].as_u64().unwrap()
            + v["normal"].as_u64().unwrap(),
        400
    );
    crate::sweep::check_placement(&dc, &f, "bob");
    // The journal is the user's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let j = dir.join("data/backscatter/journal-bob.jsonl");
        let mode = std::fs::metadata(&j).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "journal mode");
        let s = dir.join("state/backscatter/sent-bob.json");
        let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "sent cache mode");
    }

    let o = cli(&dir, &cfg, "bobpw", &["restore", "--all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["restored"].as_u64().unwrap(), q);
    assert_eq!(imap.select("INBOX"), 400);

    // A missing mailbox, a wrong password, a usage error: one line, the
    // right exit status, no secret.
    // A mailbox that does not exist is a usage/configuration error (2).
    let o = cli(&dir, &cfg, "bobpw", &["clean", "--mailbox", "Nope"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("\"Nope\" does not exist") && err.lines().count() == 1,
        "{err}"
    );
    let o = cli(&dir, &cfg, "bobpw", &["clean", "--mailbox", "Backscatter"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("is the quarantine mailbox"));
    let o = cli(&dir, &cfg, "s3cret-wrong", &["clean"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("refused the login"), "{err}");
    assert!(!err.contains("s3cret-wrong"), "{err}");
    let o = cli(&dir, &cfg, "bobpw", &["clean", "--since", "last week"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("YYYY-MM-DD"));
    let o = cli(&dir, &cfg, "bobpw", &["restore"]);
    assert_eq!(o.status.code(), Some(2));

    // A bad config names the file and the key.
    let bad = write_config(&dir, &dc, "bob", "quarantine = \"INBOX\"\n");
    let o = cli(&dir, &bad, "bobpw", &["clean"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("config.toml") && err.contains("accounts.bob.quarantine"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn password_command_is_run_without_a_shell() {
    let Some(dc) = Dovecot::start_or_skip("password_command") else {
        return;
    };
    let dir = tempdir("pwcmd");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.command = [\"printf\", \"%s\\\\nsecond line\\\\n\", \"alicepw\"]\n",
            dc.imap_port
        ),
    )
    .unwrap();
    let o = cli(&dir, &cfg, "unused", &["account", "check"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A command that fails: its name and status, no output of it.
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.command = [\"false\"]\n",
            dc.imap_port
        ),
    )
    .unwrap();
    let o = cli(&dir, &cfg, "unused", &["account", "check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr)
            .contains("the password command `false` (password.command) failed (exit status 1)"),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `account add --password-command` splits the command as a shell user
/// expects (`"my tools/pw" "mail/my account"`: two words, each with a
/// space) and runs it without a shell; a command that fails is one
/// sentence with its exit status and the last line of its standard
/// error, never what it printed on standard output; what only a shell
/// could do, and an unclosed quote, are usage errors (2) that write
/// nothing.
#[test]
fn password_command_takes_quoted_words_and_fails_in_one_sentence() {
    use std::os::unix::fs::PermissionsExt;
    let Some(dc) = Dovecot::start_or_skip("password_command_words") else {
        return;
    };
    let dir = tempdir("pwcmd-words");
    // Hand-written stand-in for `pass show NAME`.
    let tools = dir.join("my tools");
    std::fs::create_dir_all(&tools).unwrap();
    let pw = tools.join("pw");
    std::fs::write(
        &pw,
        "#!/bin/sh\nif [ $# -eq 1 ] && [ \"$1\" = \"mail/my account\" ]; then echo alicepw; exit 0; fi\necho LEAKED-STDOUT-alicepw\necho \"Error: $1 is not in the password store.\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.join("config.toml");
    let add = |name: &str, command: &str| {
        let port = dc.imap_port.to_string();
        crate::util::backscatter(
            &dir,
            &cfg,
            &[
                "account",
                "add",
                name,
                "--address",
                "alice@example.test",
                "--username",
                "alice",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--tls",
                "plain",
                "--password-command",
                command,
            ],
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
    };
    let line = format!("\"{}\" \"mail/my account\"", pw.display());
    let o = add("work", &line);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&cfg).unwrap();
    let parsed: toml::Value = toml::from_str(&written).unwrap();
    assert_eq!(
        parsed["accounts"]["work"]["password"]["command"],
        toml::Value::Array(vec![
            toml::Value::String(pw.display().to_string()),
            toml::Value::String("mail/my account".into())
        ]),
        "{written}"
    );
    // Usage errors: exit 2, one sentence, the config left as it was.
    for (bad, says) in [
        ("pass show \"mail/my account", "unclosed quote"),
        ("gpg -dq ~/.pw.gpg | head -n 1", "sh -c"),
        ("", "is empty"),
    ] {
        let o = add("work2", bad);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{bad:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), written);
    }
    // The command fails: one sentence, its status and its error line;
    // nothing it printed on standard output.
    let broken = written.replace("mail/my account", "mail/other");
    std::fs::write(&cfg, &broken).unwrap();
    let o = cli(&dir, &cfg, "unused", &["account", "check"]);
    let err = text(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("the password command `")
            && err.contains(
                " mail/other` (password.command) failed (exit status 1): Error: mail/other is not in the password store."
            ),
        "{err}"
    );
    assert!(!err.contains("LEAKED") && !err.contains("alicepw"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_sent_mailbox_is_a_configuration_error() {
    let Some(dc) = Dovecot::start_or_skip("no_sent_mailbox") else {
        return;
    };
    let dir = tempdir("nosent");
    let cfg = write_config(&dir, &dc, "carol", "sent = [\"Does Not Exist\"]\n");
    let o = cli(&dir, &cfg, "carolpw", &["clean"]);
    // A configured Sent mailbox that does not exist: a configuration
    // error (2), one sentence naming it.
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("\"Does Not Exist\" does not exist"),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_mailbox_big_message_and_a_server_that_goes_away() {
    let Some(mut dc) = Dovecot::start_or_skip("edge_cases") else {
        return;
    };
    let dir = tempdir("edges");
    let cfg = write_config(&dir, &dc, "alice", "");
    let mut imap = dc.imap("alice");
    imap.create("Empty");

    // An empty mailbox: nothing to do, success.
    let o = cli(
        &dir,
        &cfg,
        "alicepw",
        &["clean", "--mailbox", "Empty", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scanned"], 0);

    // A 20 MB bounce (a huge attached original) is classified from at most
    // what the classifier reads of any message (its first 516 KB: the fetch
    // plan takes exactly that, so the verdict is the whole file's) and
    // moved whole.
    let bounce =
        std::fs::read(crate::util::root().join("tests/corpus/sisimai/bsd/lhost-postfix-03.eml"))
            .unwrap();
    let mut big = bounce.clone();
    let pad = b"X-Padding: ".iter().copied();
    let mut filler: Vec<u8> = pad.collect();
    filler.extend(std::iter::repeat_n(b'a', 76));
    filler.extend_from_slice(b"\r\n");
    // Put the padding inside the attached original's headers region at the end.
    for _ in 0..(20 * 1024 * 1024 / filler.len()) {
        big.extend_from_slice(&filler);
    }
    imap.append("INBOX", &big);
    let o = cli(&dir, &cfg, "alicepw", &["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scanned"], 1);
    assert!(
        v["bytes_fetched"].as_u64().unwrap() < u64::from(backscatter::plan::WHOLE) + 64 * 1024,
        "a 20 MB message costs at most what the classifier reads: {v}"
    );

    // The server goes away in the middle of a sweep: a clear error, nothing
    // lost; after it is back, the next run finishes the job.
    let f = crate::sweep::flood(3000);
    let mut imap = dc.imap("carol");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    let cfg = write_config(&dir, &dc, "carol", "");
    let child = crate::util::backscatter(&dir, &cfg, &["clean"])
        .env("BS_TEST_PASSWORD", "carolpw")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    dc.kill_server();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    dc.start_again();
    let o = cli(&dir, &cfg, "carolpw", &["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    crate::sweep::check_placement(&dc, &f, "carol");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Microsoft 365 writes 13-15 KB of header (Sisimai's real
/// `lhost-office365-*` samples), more than the sweep's 8 KB prefix. An
/// ordinary message with such a header costs its header and its prefix,
/// not all the classifier could read (it cost up to 516 KB each before the
/// header was read first); bounces with such headers are still judged on
/// all the classifier reads, so their verdicts are the whole files'.
#[test]
fn a_header_longer_than_the_prefix_costs_the_header_not_the_message() {
    let Some(dc) = Dovecot::start_or_skip("long_headers") else {
        return;
    };
    let root = crate::util::root();
    // A person's real list message with a 15 KB header; its body made
    // 300 KB long by hand (quoted-text lines), as a long letter is.
    let person = std::fs::read(
        root.join("tests/fixtures/extra/list-talk/person-quotes-mailman-bounce-notice.eml"),
    )
    .unwrap();
    let mut long = person.clone();
    while long.len() < person.len() + 300 * 1024 {
        long.extend_from_slice(b"> and so the thread went on, quoting itself at length\r\n");
    }
    let header = long
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| long.windows(2).position(|w| w == b"\n\n"))
        .expect("a header that ends");
    assert!(header > backscatter::plan::PREFIX as usize, "{header}");
    let dir = tempdir("long-headers");
    let cfg = write_config(&dir, &dc, "bob", "");
    dc.imap("bob").append("INBOX", &long);
    let o = cli(&dir, &cfg, "bobpw", &["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["normal"], 1, "{v}");
    let fetched = v["bytes_fetched"].as_u64().unwrap() - v["sent_bytes_fetched"].as_u64().unwrap();
    // Its header, its prefix, and the commands' own bytes (a few KB).
    let bound = (header + backscatter::plan::PREFIX as usize + 16 * 1024) as u64;
    assert!(
        fetched < bound,
        "{fetched} bytes read for one message with a {header}-byte header: {v}"
    );

    // Real Microsoft 365 bounces (no Sent: all forged, by their verdicts).
    let none = backscatter::SentIndex::new();
    let ctx = backscatter::Context {
        sent: &none,
        own_addresses: &[],
    };
    let mut imap = dc.imap("bob");
    let mut want: Vec<(String, &str)> = Vec::new();
    for n in 4..=10 {
        let raw = std::fs::read(root.join(format!(
            "tests/corpus/sisimai/bsd/lhost-office365-{n:02}.eml"
        )))
        .unwrap();
        let raw = crate::flood::with_message_id(&raw, &format!("<o365-{n}@test.invalid>"));
        let place = match backscatter::classify(&raw, &ctx).verdict {
            backscatter::Decision::Backscatter => "Backscatter",
            _ => "INBOX",
        };
        imap.append("INBOX", &raw);
        want.push((crate::flood::id_of(&raw), place));
    }
    assert!(want.iter().any(|(_, p)| *p == "Backscatter"), "{want:?}");
    let o = cli(&dir, &cfg, "bobpw", &["clean", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (id, place) in &want {
        assert_eq!(places(&dc, "bob", &[id]), [[place.to_string()]], "{id}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keyring_without_a_desktop_session_says_what_to_do() {
    let dir = tempdir("keyring");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[accounts.k]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"plain\"\nusername = \"k\"\npassword.keyring = true\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_backscatter"))
        .args(["clean"])
        .env("BACKSCATTER_CONFIG", &cfg)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", &dir)
        .env("HOME", &dir)
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("password.command"),
        "suggests the command form: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `compress = "always"` (COMPRESS=DEFLATE, Dovecot's imap_zlib, over TLS):
/// the same decisions and summary as without, one more round trip (the
/// COMPRESS command), and fewer bytes on the wire, which inflate to what
/// the uncompressed sweep read.
#[test]
fn a_compressed_sweep_decides_the_same_and_reads_fewer_bytes() {
    let Some(dc) = Dovecot::start_or_skip("compressed_sweep") else {
        return;
    };
    let f = crate::sweep::flood(1500);
    let mut runs = Vec::new();
    for (user, compress) in [("alice", "never"), ("bob", "always")] {
        let mut imap = dc.imap(user);
        imap.append_many("Sent", &f.sent);
        imap.append_many("INBOX", &f.inbox);
        let dir = tempdir(&format!("compress-{compress}"));
        let cfg = write_config(&dir, &dc, user, &format!("compress = \"{compress}\"\n"));
        let o = cli(
            &dir,
            &cfg,
            crate::harness::password(user),
            &["clean", "--json"],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        crate::sweep::check_placement(&dc, &f, user);
        runs.push(v);
        let o = cli(
            &dir,
            &cfg,
            crate::harness::password(user),
            &["account", "check"],
        );
        let out = text(&o.stdout);
        let want = if compress == "always" {
            "Compression: on (COMPRESS=DEFLATE)"
        } else {
            "Compression: off (compress = \"never\")"
        };
        assert!(out.contains(want), "{out}");
    }
    let (plain, deflated) = (&runs[0], &runs[1]);
    eprintln!("uncompressed: {plain}\ncompressed:   {deflated}");
    for key in ["scanned", "quarantined", "legitimate", "normal", "errors"] {
        assert_eq!(plain[key], deflated[key], "{key}: {plain} vs {deflated}");
    }
    assert!(plain["quarantined"].as_u64().unwrap() > 100, "{plain}");
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(plain, "bytes_inflated"), 0, "{plain}");
    assert_eq!(
        n(deflated, "round_trips"),
        n(plain, "round_trips") + 1,
        "{plain} vs {deflated}"
    );
    assert!(
        n(deflated, "bytes_fetched") * 2 < n(plain, "bytes_fetched"),
        "less than half the bytes on the wire: {plain} vs {deflated}"
    );
    // Inflated, the compressed sweep read what the plain one did (give or
    // take the COMPRESS exchange and Dovecot's timings in its OKs).
    let (a, b) = (n(plain, "bytes_fetched"), n(deflated, "bytes_inflated"));
    assert!(a.abs_diff(b) * 100 < a, "{plain} vs {deflated}");
}

/// A server with neither MOVE nor UIDPLUS (Dovecot told to advertise
/// neither, as GNU Mailutils has neither): `account check` says plainly
/// that clean, restore and watch will all refuse there, and exits 1
/// (it listed what was missing and exited 0). An empty Sent mailbox is a
/// warning there too: the sent index is empty.
#[test]
fn account_check_says_when_the_server_cannot_be_used() {
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip("check_unusable");
        return;
    }
    let dc = Dovecot::start_with(crate::harness::Options {
        extra_conf: Some(
            "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE SPECIAL-USE NAMESPACE\n}\n"
                .into(),
        ),
        ..crate::harness::Options::default()
    });
    let dir = tempdir("check-unusable");
    let cfg = write_config(&dir, &dc, "carol", "sent = [\"Sent\"]\n");
    dc.imap("carol").create("Sent");
    let o = cli(&dir, &cfg, "carolpw", &["account", "check"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("This server cannot be used: clean, restore and watch will all refuse on it (the server has neither MOVE nor UIDPLUS"),
        "{out}"
    );
    assert!(!out.contains("Everything"), "{out}");
    assert!(
        text(&o.stderr).contains("clean, restore and watch will all refuse on this server"),
        "{}",
        text(&o.stderr)
    );
    assert!(out.contains("Warning: the sent index is empty"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An empty sent index on a server that can be used: `account check`
/// warns (exit 0) instead of "Everything backscatter needs is there",
/// and `clean` says it on stderr with its summary.
#[test]
fn an_empty_sent_index_is_a_warning() {
    let Some(dc) = Dovecot::start_or_skip("empty_sent_index") else {
        return;
    };
    let dir = tempdir("empty-sent-index");
    let cfg = write_config(&dir, &dc, "carol", "sent = [\"Sent\"]\n");
    dc.imap("carol").create("Sent");
    let o = cli(&dir, &cfg, "carolpw", &["account", "check"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("Warning: the sent index is empty"), "{out}");
    assert!(
        !out.contains("Everything backscatter needs is there"),
        "{out}"
    );
    let o = cli(&dir, &cfg, "carolpw", &["clean"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the sent index is empty"),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sent mail and an INBOX 44 days old, for the tests of the window each
/// message is judged against: Sisimai's bsd/lhost-postfix-03.eml
/// (BSD-2-Clause), a real bounce of a message whose Sent copy (hand-written
/// from the original's Message-ID) was saved 45 days ago, APPENDed with an
/// INTERNALDATE 44 days ago; beside it bsd/lhost-postfix-06.eml, a real
/// bounce of mail this user never sent (its original is not in Sent),
/// APPENDed 43 days ago; and one recent, unrelated sent message
/// (hand-written). Returns the bounces' outer Message-IDs (real, forged).
fn old_bounces(dc: &Dovecot, user: &str) -> (String, String) {
    let read = |name: &str| {
        std::fs::read(
            crate::util::root()
                .join("tests/corpus/sisimai/bsd")
                .join(name),
        )
        .unwrap()
    };
    let (bounce, forged) = (read("lhost-postfix-03.eml"), read("lhost-postfix-06.eml"));
    let original = |raw: &[u8]| {
        backscatter::classify(
            raw,
            &backscatter::Context {
                sent: &backscatter::SentIndex::new(),
                own_addresses: &[],
            },
        )
        .original
        .message_id
        .expect("the original's ID")
        .to_string()
    };
    let id = original(&bounce);
    assert_ne!(id, original(&forged));
    let outer = |raw: &[u8]| {
        let m = backscatter::classify::PARSER.parse_headers(raw).unwrap();
        format!("<{}>", m.message_id().unwrap())
    };
    let now = backscatter::clock::now();
    let day = 86_400;
    // Hand-written: the Sent copy of that original.
    let sent = format!(
        "From: sender@example.jp\r\nTo: someone@example.org\r\nSubject: sent long ago\r\nMessage-ID: {id}\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n"
    );
    let mut imap = dc.imap(user);
    // And one recent, unrelated (hand-written too).
    let recent = "From: sender@example.jp\r\nTo: friend@example.org\r\nSubject: lunch tomorrow?\r\nMessage-ID: <recent-1@example.jp>\r\n\r\nhi\r\n";
    crate::report::append_dated(
        &mut imap,
        "Sent",
        &[
            (now - 45 * day, sent.into_bytes()),
            (now - day, recent.as_bytes().to_vec()),
        ],
    );
    let ids = (outer(&bounce), outer(&forged));
    crate::report::append_dated(
        &mut imap,
        "INBOX",
        &[(now - 44 * day, bounce), (now - 43 * day, forged)],
    );
    ids
}

/// Where each of these outer Message-IDs is (INBOX, Backscatter).
fn places(dc: &Dovecot, user: &str, ids: &[&str]) -> Vec<Vec<String>> {
    let w = crate::sweep::where_is_in(dc, user, &["INBOX", "Backscatter"]);
    ids.iter()
        .map(|id| w.get(*id).cloned().unwrap_or_default())
        .collect()
}

/// Without `--since`, each message of a sweep is judged against the sent
/// mail of the `sent-days` before it arrived (its INTERNALDATE), not
/// before the sweep: the real bounce of mail sent 45 days ago stays, the
/// forged one beside it goes, and neither moves on a rerun, on a full
/// sweep after the window moved on, or with another `sent-days` (a full
/// sweep: the inputs changed) as long as the original stays in its
/// window. The sent mail is read once: later runs fetch none of it.
/// (Fixtures: [`old_bounces`].)
#[test]
fn each_message_is_judged_against_the_sent_mail_before_it_arrived() {
    let Some(dc) = Dovecot::start_or_skip("sent_window") else {
        return;
    };
    let (real, forged) = old_bounces(&dc, "carol");
    let dir = tempdir("sent-window");
    let cfg = write_config(&dir, &dc, "carol", "sent = [\"Sent\"]\n");
    let run = |cfg: &Path, args: &[&str]| -> Vec<serde_json::Value> {
        let o = cli(&dir, cfg, "carolpw", args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let verdict = |v: &serde_json::Value| v["verdict"].as_str().unwrap_or_default().to_string();
    let out = run(&cfg, &["clean", "--json", "--each"]);
    let (rows, summary) = (&out[..2], &out[2]);
    eprintln!("first sweep: {summary}");
    assert_eq!(verdict(&rows[0]), "legitimate", "{}", rows[0]);
    assert!(
        rows[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("is in your sent mail"),
        "{}",
        rows[0]
    );
    assert_eq!(verdict(&rows[1]), "backscatter", "{}", rows[1]);
    assert_eq!(rows[1]["action"], "moved", "{}", rows[1]);
    let reason = rows[1]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("is not among your sent mail of the 30 days before it arrived (2 sent messages indexed)"),
        "{reason}"
    );
    assert_eq!(summary["quarantined"], 1, "{summary}");
    assert_eq!(summary["sent_fetched"], 2, "{summary}");
    assert_eq!(
        places(&dc, "carol", &[&real, &forged]),
        [["INBOX"], ["Backscatter"]]
    );
    // A rerun: nothing new to read, nothing moves, no sent mail fetched.
    let summary = run(&cfg, &["clean", "--json"]).pop().unwrap();
    eprintln!("rerun: {summary}");
    assert_eq!(summary["sweep"], "rerun", "{summary}");
    assert_eq!(summary["quarantined"], 0, "{summary}");
    assert_eq!(summary["sent_fetched"], 0, "{summary}");
    // A full sweep, today or next month, gives the same verdict: the
    // index reaches back as far as the cache does (nothing read again).
    let out = run(&cfg, &["clean", "--json", "--each", "--full", "--dry-run"]);
    eprintln!("full sweep again: {}", out[1]);
    assert_eq!(verdict(&out[0]), "legitimate", "{}", out[0]);
    assert_eq!(out[1]["sent_fetched"], 0, "{}", out[1]);
    // Another sent-days: what verdicts depend on changed, so every
    // message is read again. The original was sent a day before the
    // bounce arrived, inside 10 days too: it stays.
    // (The same config file, rewritten.)
    let narrow = write_config(&dir, &dc, "carol", "sent = [\"Sent\"]\nsent-days = 10\n");
    let out = run(&narrow, &["clean", "--json", "--each"]);
    assert_eq!(out[1]["sweep"], "full", "{}", out[1]);
    assert_eq!(out[1]["full_reason"], "inputs", "{}", out[1]);
    assert_eq!(verdict(&out[0]), "legitimate", "{}", out[0]);
    assert_eq!(out[1]["quarantined"], 0, "{}", out[1]);
    assert_eq!(
        places(&dc, "carol", &[&real, &forged]),
        [["INBOX"], ["Backscatter"]]
    );
    // `--since` a day before the bounce (every message since then read
    // with --full): the same verdict.
    let now = backscatter::clock::now();
    let since = backscatter::report::utc(now - 45 * 86_400)[..10].to_string();
    let args = [
        "clean",
        "--dry-run",
        "--full",
        "--json",
        "--each",
        "--since",
        &since,
    ];
    let out = run(&narrow, &args);
    assert_eq!(verdict(&out[0]), "legitimate", "{}", out[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Years of INBOX against years of Sent: the first sweep reads the Sent
/// mail its oldest message needs, once; a second full sweep reads none of
/// it again (one EXAMINE and one empty `SEARCH … BEFORE`) and gives every
/// message the same verdict. The flood of real responses
/// (`crate::flood`, Sisimai and the other corpora, licences in
/// tests/corpus) spread over two years by INTERNALDATE, each of its Sent
/// originals saved a day before the first response to it arrived. `SENT_WINDOW_N=3000` for a measurement; 300 by default.
#[test]
fn old_mail_reads_the_sent_mail_it_needs_once() {
    let Some(dc) = Dovecot::start_or_skip("sent_window_cost") else {
        return;
    };
    let n: usize = crate::util::env_num("SENT_WINDOW_N", 300);
    let f = crate::flood::flood(n);
    let now = backscatter::clock::now();
    let day = 86_400;
    let spread = |msgs: &[Vec<u8>], days: i64| -> Vec<(i64, Vec<u8>)> {
        let k = msgs.len().max(1) as i64;
        msgs.iter()
            .enumerate()
            .map(|(i, m)| (now - days * day + days * day * i as i64 / k, m.clone()))
            .collect()
    };
    let inbox = spread(&f.inbox, 700);
    // Each Sent original saved a day before the first response to it
    // arrived (the others spread over the two years).
    let empty = backscatter::SentIndex::new();
    let ctx = backscatter::Context {
        sent: &empty,
        own_addresses: &[],
    };
    let mut first_response: std::collections::HashMap<String, i64> = Default::default();
    for (t, m) in &inbox {
        if let Some(id) = backscatter::classify(m, &ctx).original.message_id {
            first_response.entry(id.key().to_string()).or_insert(*t);
        }
    }
    let sent: Vec<(i64, Vec<u8>)> = spread(&f.sent, 730)
        .into_iter()
        .map(|(t, m)| {
            let id = backscatter::SentMessage::from_raw(&m)
                .and_then(|s| s.message_id)
                .and_then(|id| first_response.get(id.key()).copied());
            (id.map_or(t, |r| r - day), m)
        })
        .collect();
    let mut imap = dc.imap("carol");
    crate::report::append_dated(&mut imap, "Sent", &sent);
    crate::report::append_dated(&mut imap, "INBOX", &inbox);
    drop(imap);
    let dir = tempdir("sent-window-cost");
    let cfg = write_config(&dir, &dc, "carol", "sent = [\"Sent\"]\n");
    let sweep = || -> (Vec<(u64, String)>, serde_json::Value) {
        let o = cli(
            &dir,
            &cfg,
            "carolpw",
            &["clean", "--dry-run", "--full", "--json", "--each"],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let mut lines: Vec<serde_json::Value> = text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary = lines.pop().unwrap();
        let rows = lines
            .iter()
            .map(|r| {
                (
                    r["uid"].as_u64().unwrap(),
                    r["verdict"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (rows, summary)
    };
    let (first, s1) = sweep();
    let (second, s2) = sweep();
    let figures = |s: &serde_json::Value| {
        format!(
            "sent: {} fetched, {} round trips, {} bytes; sweep: {} round trips, {} bytes, {} s",
            s["sent_fetched"],
            s["sent_round_trips"],
            s["sent_bytes_fetched"],
            s["round_trips"],
            s["bytes_fetched"],
            s["seconds"]
        )
    };
    eprintln!(
        "{} in INBOX over 700 days, {} in Sent over 730 days\nfirst sweep:  {}\nsecond sweep: {}",
        f.inbox.len(),
        f.sent.len(),
        figures(&s1),
        figures(&s2)
    );
    assert_eq!(first.len(), f.inbox.len());
    assert_eq!(first, second, "the same verdict for every message");
    let legit = first.iter().filter(|(_, v)| v == "legitimate").count();
    eprintln!("{legit} legitimate, kept");
    assert!(legit > 0, "some originals are in their window: {s1}");
    // The oldest message needs the Sent mail of 31 days before it: all
    // of it here, read once.
    assert_eq!(s1["sent_fetched"], f.sent.len(), "{s1}");
    assert_eq!(s2["sent_fetched"], 0, "{s2}");
    assert!(s2["sent_round_trips"].as_u64().unwrap() <= 2, "{s2}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `watch`'s catch-up on its first start (`catch-up-days = 60`) judges
/// mail that came while it was not running the same way: the real bounce
/// of mail sent 45 days ago stays, the forged one goes. So does older
/// mail moved into INBOX while it watches. (Fixtures: [`old_bounces`].)
#[test]
fn the_catch_up_judges_old_mail_against_the_sent_mail_before_it_arrived() {
    let Some(dc) = Dovecot::start_or_skip("sent_window_watch") else {
        return;
    };
    let (real, forged) = old_bounces(&dc, "carol");
    let dir = tempdir("sent-window-watch");
    let cfg = write_config(
        &dir,
        &dc,
        "carol",
        "sent = [\"Sent\"]\ncatch-up-days = 60\n",
    );
    let (mut child, log) = crate::util::spawn_watch(
        crate::util::backscatter(&dir, &cfg, &["watch"]).env("BS_TEST_PASSWORD", "carolpw"),
    );
    log.wait_for(
        "the forged bounce to be quarantined",
        std::time::Duration::from_secs(90),
        || places(&dc, "carol", &[&forged]) == [["Backscatter"]],
    );
    // The catch-up handles both in one batch; a moment more for a
    // (wrong) second move.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(places(&dc, "carol", &[&real]), [["INBOX"]]);
    // While it watches, older mail moved in by hand (APPENDed with its old
    // INTERNALDATE, as a MOVE keeps it): Sisimai's bsd/lhost-postfix-04.eml
    // (BSD-2-Clause), the bounce of mail saved in Sent 91 days ago (its
    // Sent copy hand-written), arriving 90 days ago, and beside it
    // bsd/lhost-postfix-07.eml, of mail never sent, 89 days ago. The
    // arrival path leaves them to the search, which widens the index.
    let read = |name: &str| {
        std::fs::read(
            crate::util::root()
                .join("tests/corpus/sisimai/bsd")
                .join(name),
        )
        .unwrap()
    };
    let (bounce2, forged2) = (read("lhost-postfix-04.eml"), read("lhost-postfix-07.eml"));
    let outer = |raw: &[u8]| {
        let m = backscatter::classify::PARSER.parse_headers(raw).unwrap();
        format!("<{}>", m.message_id().unwrap())
    };
    let (real2, fake2) = (outer(&bounce2), outer(&forged2));
    let now = backscatter::clock::now();
    let day = 86_400;
    let sent2 = "From: sender@example.jp\r\nTo: someone@example.org\r\nSubject: sent in the summer\r\nMessage-ID: <A8F82EDD-E518-4F5C-8C70-BC4EFF24AB9F@example.ne.jp>\r\n\r\nhello\r\n";
    let mut imap = dc.imap("carol");
    crate::report::append_dated(
        &mut imap,
        "Sent",
        &[(now - 91 * day, sent2.as_bytes().to_vec())],
    );
    crate::report::append_dated(
        &mut imap,
        "INBOX",
        &[(now - 90 * day, bounce2), (now - 89 * day, forged2)],
    );
    drop(imap);
    log.wait_for(
        "the second forged bounce to be quarantined",
        std::time::Duration::from_secs(90),
        || places(&dc, "carol", &[&fake2]) == [["Backscatter"]],
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(places(&dc, "carol", &[&real2]), [["INBOX"]]);
    backscatter_testkit::cli::stop(&mut child);
    let log = log.finish();
    // The log gives the verdict the real bounce was left by.
    assert!(
        log.lines()
            .any(|l| l.contains("keep bounce") && l.contains("is in your sent mail")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
