//! How backscatter fits the shell and the desktop: completion scripts that
//! the shells accept, a manual page that renders, `--version`, `-q`,
//! a quiet end when the reader of its output goes away (`| head`), the
//! sample config, and the user service's install and uninstall.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backscatter"));
    c.current_dir(crate::util::root()).env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run backscatter")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tempdir(tag: &str) -> PathBuf {
    crate::sweep::tempdir(tag)
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    for (shell, check) in [
        ("bash", Some(("bash", "-n"))),
        ("zsh", Some(("zsh", "-n"))),
        ("fish", Some(("fish", "--no-execute"))),
    ] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        for word in ["clean", "restore", "sieve", "account", "dry-run"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        let Some((prog, flag)) = check.filter(|(p, _)| have(p)) else {
            eprintln!("skipping the {shell} syntax check: {shell} is not installed");
            continue;
        };
        let dir = tempdir("completions");
        let file = dir.join(format!("backscatter.{shell}"));
        std::fs::write(&file, &o.stdout).unwrap();
        let c = Command::new(prog).arg(flag).arg(&file).output().unwrap();
        assert!(
            c.status.success(),
            "{shell} rejects the completion script: {}",
            text(&c.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    // bash is on every machine this runs on: its check is never skipped
    // silently.
    assert!(have("bash"), "bash is needed for the completion check");
    let o = run(&["completions", "powershell"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_page_renders() {
    let o = run(&["man"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page = text(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH backscatter 1"),
        "{page}"
    );
    assert!(page.contains(".SH SUBCOMMANDS") || page.contains("SUBCOMMANDS"));
    let dir = tempdir("man");
    let file = dir.join("backscatter.1");
    std::fs::write(&file, &o.stdout).unwrap();
    // Render it as `man` would, warnings on: a roff mistake shows there.
    let rendered = if have("groff") {
        Some(
            Command::new("groff")
                .args(["-man", "-Tutf8", "-ww"])
                .arg(&file)
                .output()
                .unwrap(),
        )
    } else if have("man") {
        Some(
            Command::new("man")
                .arg("-l")
                .arg(&file)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80")
                .output()
                .unwrap(),
        )
    } else {
        eprintln!("skipping the rendering: neither groff nor man is installed");
        None
    };
    if let Some(r) = rendered {
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert!(r.stderr.is_empty(), "roff warnings: {}", text(&r.stderr));
        let shown = text(&r.stdout);
        let plain: String = shown.replace('\u{8}', "");
        assert!(plain.contains("backscatter"), "{shown}");
    }
    // One page per subcommand, to install.
    let pages = dir.join("pages");
    let o = run(&["-q", "man", "--dir", pages.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "-q: {}", text(&o.stderr));
    for name in [
        "backscatter.1",
        "backscatter-clean.1",
        "backscatter-sieve-install.1",
    ] {
        assert!(pages.join(name).exists(), "{name} written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    let v = text(&o.stdout);
    // backscatter 0.1.0 (abc123def456 2026-11-30), or without the commit
    // when built outside git.
    let inner = v
        .trim()
        .strip_prefix(&format!("backscatter {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    let date = inner.rsplit(' ').next().unwrap();
    let b = date.as_bytes();
    assert!(
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && date.replace('-', "").parse::<u32>().is_ok(),
        "{v}"
    );
    if let Some((commit, _)) = inner.split_once(' ') {
        assert_eq!(commit.len(), 12, "{v}");
        assert!(commit.bytes().all(|c| c.is_ascii_hexdigit()), "{v}");
    }
}

#[test]
fn classify_into_head_ends_quietly() {
    // Many rows, a reader that takes one line and goes away.
    let mut child = bin()
        .args(["classify", "tests/corpus"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("VERDICT"), "{first}");
    // The pipe is closed here (the reader is dropped).
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "quiet: {}", text(&out.stderr));
}

#[test]
fn quiet_and_verbose_are_accepted_everywhere() {
    for args in [
        &["-q", "classify", "assets/samples/inbox"][..],
        &["classify", "-v", "assets/samples/inbox"],
        &["config", "sample", "-q"],
        &["sieve", "status", "-q", "--help"],
        &["service", "-v", "status", "--help"],
        &["account", "check", "-q", "--help"],
    ] {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    }
    let o = run(&["-q", "-v", "config", "sample"]);
    assert_eq!(o.status.code(), Some(2), "-q and -v together: usage error");
}

#[test]
fn config_sample_is_the_documented_sample_and_the_hint_points_to_it() {
    let o = run(&["config", "sample"]);
    assert!(o.status.success());
    let shipped = std::fs::read(crate::util::root().join("assets/config.sample.toml")).unwrap();
    assert_eq!(o.stdout, shipped);
    // An installed user has no assets/: the missing-config error names the
    // commands instead.
    let dir = tempdir("no-config");
    let cfg = dir.join("missing.toml");
    let o = crate::util::backscatter(&dir, &cfg, &["clean"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("backscatter config sample"), "{err}");
    assert!(!err.contains("assets/"), "{err}");
    let o = crate::util::backscatter(&dir, &cfg, &["config", "path"])
        .output()
        .unwrap();
    assert_eq!(text(&o.stdout).trim(), cfg.display().to_string());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in `systemctl` on PATH that records its calls (one line each)
/// and runs `body` (sh).
#[cfg(target_os = "linux")]
fn fake_systemctl(dir: &Path, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("systemctl");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}/calls\n{body}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[cfg(target_os = "linux")]
fn service(dir: &Path, path_var: &str, config: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backscatter"));
    c.args(args)
        .env("PATH", path_var)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("NO_COLOR", "1")
        .env_remove("BACKSCATTER_CONFIG");
    if let Some(cfg) = config {
        c.env("BACKSCATTER_CONFIG", cfg);
    }
    c.output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn service_install_uses_the_config_and_uninstall_removes_everything() {
    let dir = tempdir("service");
    let path = fake_systemctl(&dir, "exit 0");
    let unit = dir.join("config/systemd/user/backscatter.service");

    // No config: refused before anything is written.
    let o = service(&dir, &path, None, &["service", "install"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("does not exist"),
        "{}",
        text(&o.stderr)
    );
    assert!(!unit.exists() && !dir.join("calls").exists());

    // The config named by BACKSCATTER_CONFIG (a path with a space).
    let cfg = dir.join("my mail/backscatter.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "[accounts.a]\nhost = \"imap.example.org\"\nusername = \"a@example.org\"\npassword.env = \"PW\"\n",
    )
    .unwrap();
    let o = service(&dir, &path, Some(&cfg), &["service", "install"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&unit).unwrap();
    assert!(
        written.contains(&format!(
            "ExecStart={} --config \"{}\" watch",
            env!("CARGO_BIN_EXE_backscatter"),
            cfg.display()
        )),
        "{written}"
    );
    assert!(written.contains("WantedBy=default.target"));
    // Yours alone, like every file backscatter writes, and so is every
    // file the agent creates (UMask).
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the unit file is mode {mode:o}");
    }
    assert!(written.contains("\nUMask=0077\n"), "{written}");
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    assert!(
        calls.ends_with("--user daemon-reload\n--user enable --now backscatter.service\n"),
        "{calls}"
    );
    assert!(text(&o.stdout).contains("journalctl --user -u backscatter"));
    // --config wins over the environment, and --print writes nothing.
    let other = dir.join("other.toml");
    std::fs::copy(&cfg, &other).unwrap();
    let o = service(
        &dir,
        &path,
        Some(&cfg),
        &[
            "--config",
            other.to_str().unwrap(),
            "service",
            "install",
            "--print",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!("--config {} watch", other.display())),
        "{}",
        text(&o.stdout)
    );

    // `enable` made its link; uninstall removes the unit and the link,
    // even when the user manager cannot be reached any more.
    let wants = dir.join("config/systemd/user/default.target.wants/backscatter.service");
    std::fs::create_dir_all(wants.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&unit, &wants).unwrap();
    let no_bus = fake_systemctl(
        &dir,
        "echo 'Failed to connect to bus: No medium found' >&2; exit 1",
    );
    let o = service(&dir, &no_bus, Some(&cfg), &["service", "uninstall"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!unit.exists(), "unit removed");
    assert!(std::fs::symlink_metadata(&wants).is_err(), "link removed");
    // Again, with nothing installed (newcomer round 3, 15d): said plainly,
    // and no systemctl run whose failure would be shown.
    let calls_before = std::fs::read_to_string(dir.join("calls")).unwrap();
    let o = service(&dir, &no_bus, Some(&cfg), &["service", "uninstall"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        format!(
            "Nothing to uninstall: no backscatter service is installed ({} does not exist).",
            unit.display()
        )
    );
    assert!(
        !text(&o.stderr).contains("systemctl"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("calls")).unwrap(),
        calls_before,
        "systemctl was run"
    );

    // No user session bus at install: explained, nothing written.
    let o = service(&dir, &no_bus, Some(&cfg), &["service", "install"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("loginctl enable-linger") && err.contains("Log in graphically"),
        "{err}"
    );
    assert!(!err.contains("No medium found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!unit.exists(), "nothing left behind");

    // status --json: a report, exit 1 when not running.
    let o = service(&dir, &no_bus, Some(&cfg), &["service", "status", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manager"], "systemd");
    assert_eq!(v["installed"], false);
    assert_eq!(v["running"], false);
    assert!(v["error"].as_str().unwrap().contains("enable-linger"));
    let running = fake_systemctl(
        &dir,
        "case \"$2\" in is-enabled) echo enabled;; is-active) echo active;; esac; exit 0",
    );
    let o = service(&dir, &running, Some(&cfg), &["service", "status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["enabled"], "enabled");
    assert_eq!(v["state"], "active");
    let o = service(&dir, &running, Some(&cfg), &["service", "status"]);
    assert!(text(&o.stdout).contains("backscatter watch is running."));
    let _ = std::fs::remove_dir_all(&dir);
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn account_add_from_flags_writes_a_working_config() {
    let Some(dc) = crate::harness::Dovecot::start_or_skip("account_add") else {
        return;
    };
    let dir = tempdir("account-add");
    let cfg = dir.join("config/backscatter/config.toml");
    let add = |extra: &[&str], pw: &str| {
        let mut args = vec!["account", "add"];
        args.extend_from_slice(extra);
        crate::util::backscatter(&dir, &cfg, &args)
            .env("PW", pw)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (imaps, sieve) = (dc.imaps_port.to_string(), dc.sieve_port.to_string());
    let ca = dc.ca_file.display().to_string();
    let flags = |name: &'static str, user: &'static str| -> Vec<String> {
        [
            name,
            "--address",
            &format!("{user}@example.org"),
            "--host",
            "localhost",
            "--port",
            &imaps,
            "--tls",
            "implicit",
            "--tls-ca-file",
            &ca,
            "--username",
            user,
            "--password-env",
            "PW",
            "--sieve-port",
            &sieve,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // Not on a terminal and no password source: a usage error naming the
    // flags, nothing written.
    let o = add(
        &["x", "--address", "a@example.org", "--host", "localhost"],
        "",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--password-command"),
        "{}",
        text(&o.stderr)
    );
    assert!(!cfg.exists());

    // A wrong password: the login fails and nothing is written.
    let o = add(&strs(&flags("home", "alice")), "wrong");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("nothing was written"),
        "{}",
        text(&o.stderr)
    );
    assert!(!cfg.exists());

    // The right one: written (0600), then checked.
    let o = add(&strs(&flags("home", "alice")), "alicepw");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("Added account \"home\""), "{out}");
    assert!(
        // A fresh account has an empty Sent: said, and the rest is there.
        out.contains("the sent index is empty")
            && out.contains("Everything else backscatter needs is there."),
        "{out}"
    );
    let first = std::fs::read_to_string(&cfg).unwrap();
    assert!(first.contains("[accounts.home]") && first.contains("default = true"));
    assert!(first.contains("# alice@example.org"), "commented: {first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second account is appended; the first stays byte for byte.
    let o = add(&strs(&flags("other", "bob")), "bobpw");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let both = std::fs::read_to_string(&cfg).unwrap();
    assert!(both.starts_with(&first), "{both}");
    assert!(both.contains("[accounts.other]"));
    let o = crate::util::backscatter(
        &dir,
        &cfg,
        &["account", "check", "--account", "other", "--json"],
    )
    .env("PW", "bobpw")
    .output()
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["username"], "bob");
    // The same name again: refused, the file untouched.
    let o = add(&strs(&flags("home", "alice")), "alicepw");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("already has an account called \"home\""));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), both);
    let _ = std::fs::remove_dir_all(&dir);
}
