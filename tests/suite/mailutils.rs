//! A real, throw-away GNU Mailutils imap4d 3.15 (Debian 12's
//! `mailutils-imap4d`) on loopback, the suite's third server, and the
//! product against it. Mailutils has neither MOVE nor UIDPLUS, and its
//! BODYSTRUCTURE of an attached message is not valid IMAP (no space
//! between the envelope and the body, imap4d/fetch.c): issue 11's faults 6
//! to 8 on the real server.
//!
//! `tests/mailutils/unpack.sh` (run by `scripts/test`) unpacks the packages
//! and the libraries a Dovecot machine lacks into `target/mailutils` (or
//! `BACKSCATTER_MAILUTILS_DIR`); nothing is installed. The server runs as
//! the test's own user from a fresh directory under /tmp (config, maildirs,
//! a self-signed certificate imap4d insists on loading even with TLS off),
//! deleted on drop. Its one user, `alice@example.test` / `alicepw`, comes
//! from a `virtdomain` password file, so no system account is needed.
//!
//! Tests skip with a notice when imap4d is not unpacked; with
//! `BACKSCATTER_REQUIRE_MAILUTILS=1` they fail instead.

use crate::harness::{free_ports, fresh_dir, Imap};
use backscatter::classify::classify_at;
use backscatter::{Context, Decision, SentIndex};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The user, as imap4d's `virtdomain` module knows it.
const USER: &str = "alice@example.test";
const PASSWORD: &str = "alicepw";
/// SHA-512 crypt(3) of `alicepw` (made with `openssl passwd -6`).
const HASH: &str = "$6$ZWOdXlibdnDdMgAI$TAHm39HFBPa/01d9ZXRCkkIDtR56zH73cHnaSHQigSvLbklH3TtDqATrGUNCZCX6UGrEkaEFiNKkZJrBXg/gg/";

/// Where `tests/mailutils/unpack.sh` puts the packages.
fn cache_dir() -> PathBuf {
    std::env::var_os("BACKSCATTER_MAILUTILS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mailutils"))
}

/// A running throw-away imap4d. Stopped and deleted on drop.
pub struct Mailutils {
    pub dir: PathBuf,
    pub port: u16,
    pub version: String,
    child: Child,
}

impl Mailutils {
    fn missing() -> Option<String> {
        let bin = cache_dir().join("root/usr/sbin/imap4d");
        if !bin.is_file() {
            return Some(format!(
                "GNU Mailutils is not unpacked ({} is missing; run tests/mailutils/unpack.sh or scripts/test)",
                bin.display()
            ));
        }
        if crate::harness::find_program("openssl").is_none() {
            return Some("openssl is not installed".into());
        }
        None
    }

    /// Start a server, or print a notice and return `None` when imap4d is
    /// not unpacked (a failure with `BACKSCATTER_REQUIRE_MAILUTILS=1`).
    pub fn start_or_skip(test: &str) -> Option<Mailutils> {
        let Some(why) = Self::missing() else {
            return Some(Self::start());
        };
        let required =
            std::env::var("BACKSCATTER_REQUIRE_MAILUTILS").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "{test}: {why}, but BACKSCATTER_REQUIRE_MAILUTILS is set"
        );
        eprintln!("SKIPPED {test}: {why}");
        None
    }

    fn start() -> Mailutils {
        let dir = fresh_dir();
        let d = dir.display();
        let meta = std::fs::metadata(&dir).unwrap();
        std::fs::create_dir_all(dir.join("pw")).unwrap();
        // INBOX exists from the start, as after a first delivery (imap4d
        // makes it on SELECT only, and refuses APPEND before).
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join("mail/alice/INBOX").join(sub)).unwrap();
        }
        std::fs::write(
            dir.join("pw/example.test"),
            format!(
                "alice:{HASH}:{}:{}::{d}/mail/alice:/bin/sh\n",
                meta.uid(),
                meta.gid()
            ),
        )
        .unwrap();
        let cert = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(cert.success(), "openssl req failed");
        let port = free_ports()[0];
        let conf = dir.join("imap4d.conf");
        std::fs::write(
            &conf,
            format!(
                r#"logging {{ syslog false; }}
auth {{ authorization virtdomain; authentication generic; }}
virtdomain {{ passwd-dir "{d}/pw"; }}
mailbox {{ mailbox-pattern "maildir://{d}/mail/${{user}}/INBOX"; }}
namespace personal {{
  prefix "" {{ directory "{d}/mail/${{user}}"; delimiter "/"; mailbox-type "maildir"; }};
}};
tls-mode false;
tls {{ ssl-certificate-file "{d}/cert.pem"; ssl-key-file "{d}/key.pem"; }};
pidfile "{d}/imap4d.pid";
server 127.0.0.1:{port} {{ }};
"#
            ),
        )
        .unwrap();
        let root = cache_dir().join("root");
        let log = std::fs::File::create(dir.join("imap4d.log")).unwrap();
        let child = Command::new(root.join("usr/sbin/imap4d"))
            .env("LD_LIBRARY_PATH", root.join("usr/lib/x86_64-linux-gnu"))
            .arg(format!("--config-file={}", conf.display()))
            .args(["--daemon", "--foreground"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let version = std::fs::read_to_string(cache_dir().join("VERSION"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let mut m = Mailutils {
            dir,
            port,
            version,
            child,
        };
        // Up when a login works (generous for a loaded machine).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if Imap::try_connect(port, USER, PASSWORD).is_ok() {
                return m;
            }
            if Instant::now() > deadline || m.child.try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(m.dir.join("imap4d.log")).unwrap_or_default();
                panic!("imap4d did not come up on port {port}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn imap(&self) -> Imap {
        Imap::connect(self.port, USER, PASSWORD)
    }
}

impl Drop for Mailutils {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A message with every line ending as CRLF (imap4d's maildir refuses an
/// APPEND with bare newlines, `NO APPEND [TRYCREATE] failed`).
fn crlf(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() + m.len() / 30);
    for line in m.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        out.extend_from_slice(body.strip_suffix(b"\r").unwrap_or(body));
        if line.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn config(dir: &Path, port: u16) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nusername = \"{USER}\"\npassword.env = \"PW\"\nsent = [\"Sent\"]\n"
        ),
    )
    .unwrap();
    cfg
}

fn cli(dir: &Path, cfg: &Path, args: &[&str]) -> Output {
    crate::util::backscatter(dir, cfg, args)
        .env("PW", PASSWORD)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// On the real Mailutils: `account check` names what is missing, says
/// that clean, restore and watch will refuse there and exits 1; `clean
/// --dry-run` judges every message, the one with an attached message too
/// (its BODYSTRUCTURE is not IMAP: the sweep reads its bytes), with the
/// verdicts the classifier gives the files, says none can move and exits
/// 1; `clean` and `restore` refuse with exit 1 before writing anything;
/// nothing moves, no folder is created.
#[test]
fn mailutils_judges_everything_and_refuses_to_move() {
    let Some(mu) = Mailutils::start_or_skip("mailutils_real") else {
        return;
    };
    eprintln!("GNU Mailutils imap4d {} on port {}", mu.version, mu.port);
    let f = crate::flood::flood(30);
    let nested =
        std::fs::read(crate::util::root().join("tests/fixtures/extra/rt/nested-rfc-822.eml"))
            .unwrap();
    let mut imap = mu.imap();
    imap.create("Sent");
    // One APPEND each (Mailutils has neither MULTIAPPEND nor UIDPLUS);
    // it refuses some corpus messages with malformed headers
    // (`NO APPEND [TRYCREATE] failed`): those are left out.
    // A refused APPEND leaves the rest of its LITERAL+ literal to be read
    // as commands: each APPEND on a connection of its own.
    let append = |mailbox: &str, m: &[u8]| -> Option<Vec<u8>> {
        let m = crlf(m);
        let mut cmd = format!("APPEND \"{mailbox}\" {{{}+}}\r\n", m.len()).into_bytes();
        cmd.extend_from_slice(&m);
        match mu.imap().command_bytes(&cmd) {
            Ok(_) => Some(m),
            Err(e) => {
                eprintln!("{mailbox}: {e}");
                None
            }
        }
    };
    let sent: Vec<Vec<u8>> = f.sent.iter().filter_map(|m| append("Sent", m)).collect();
    let inbox: Vec<Vec<u8>> = f.inbox.iter().filter_map(|m| append("INBOX", m)).collect();
    assert!(append("INBOX", &nested).is_some());
    assert!(sent.len() * 2 > f.sent.len() && inbox.len() * 2 > f.inbox.len());
    // The verdicts the classifier gives the stored messages' files, each
    // judged against the sent mail of the days before it arrived: imap4d
    // dates every message by its Date header (it ignores APPEND's
    // date-time too), so each bounce "arrived" when its Date says and is
    // judged against the Sent originals of the 30 days before that. The
    // originals are years old, so the index of the last 30 days that
    // `account check` shows is empty.
    let mut index = SentIndex::new();
    for m in &sent {
        index.insert(&backscatter::SentMessage::from_raw(m).unwrap());
    }
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    // A message without a Date is dated when it was stored: now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let date_of = |m: &[u8]| {
        mail_parser::MessageParser::default()
            .parse_headers(m)
            .and_then(|p| p.date().map(|d| d.to_timestamp()))
            .or(Some(now))
    };
    let expected: HashMap<String, Decision> = inbox
        .iter()
        .map(|m| {
            (
                crate::flood::id_of(m),
                classify_at(m, &ctx, date_of(m)).verdict,
            )
        })
        .collect();
    // The server's own reply, as the agent will read it.
    imap.select("INBOX");
    let r = imap
        .command("UID FETCH 1:* (UID BODYSTRUCTURE)")
        .map(|r| {
            r.untagged
                .iter()
                .map(|u| u.text())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|e| e);
    assert!(
        r.contains("\"<877k76uxk2.fsf@example.com>\")(\"text\" \"plain\""),
        "Mailutils' form (no space after the envelope) not seen: {r}"
    );
    let before = imap.uids("INBOX").len();
    drop(imap);
    let dir = crate::sweep::tempdir("mailutils");
    let cfg = config(&dir, mu.port);

    let o = cli(&dir, &cfg, &["account", "check"]);
    let said = text(&o);
    assert!(said.contains("UIDPLUS"), "{said}");
    assert!(said.contains("Sent index:  0 messages"), "{said}");
    // Plainly: this server cannot be used for moves (exit 1).
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains("This server cannot be used: clean, restore and watch will all refuse on it"),
        "{said}"
    );
    assert!(said.contains("Warning: the sent index is empty"), "{said}");

    let o = cli(&dir, &cfg, &["clean", "--dry-run", "--json", "--each"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let mut lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.pop().unwrap();
    // The sweep asked for the attached message's structure (it is long,
    // multipart/mixed, with no sign of an automated sender: the proxy test
    // `quirks::mailutils_bodystructure_falls_back_to_the_bytes` sees the
    // request), could not parse the reply, and read its bytes: without
    // that containment there is no summary at all.
    assert_eq!(summary["errors"], 0, "{}", text(&o));
    assert_eq!(summary["scanned"], before, "{}", text(&o));
    assert!(
        summary["refused"]
            .as_str()
            .is_some_and(|r| r.contains("neither MOVE nor UIDPLUS")),
        "{}",
        text(&o)
    );
    let mut checked = 0;
    for l in &lines {
        let id = l["message_id"].as_str().unwrap_or_default();
        if id == "<87d6gxt7ay.fsf@example.com>" {
            assert_eq!(l["verdict"], "normal", "{l}");
            checked += 1;
        } else if let Some(want) = expected.get(id) {
            let want = serde_json::to_value(want).unwrap();
            assert_eq!(l["verdict"], want, "{l}");
            checked += 1;
        }
    }
    assert_eq!(checked, before, "{}", text(&o));

    for args in [&["clean"][..], &["restore", "--all"]] {
        let o = cli(&dir, &cfg, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("neither MOVE nor UIDPLUS"),
            "{args:?}: {}",
            text(&o)
        );
    }
    let mut imap = mu.imap();
    assert_eq!(imap.uids("INBOX").len(), before, "nothing moved");
    let list: Vec<String> = imap
        .command("LIST \"\" \"*\"")
        .unwrap()
        .untagged
        .iter()
        .map(|u| u.text())
        .collect();
    let list = list.join("\n");
    assert!(!list.contains("Backscatter"), "no quarantine made: {list}");
    let journal = dir.join("data/backscatter/journal-alice.jsonl");
    let j = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(!j.contains("\"quarantine\""), "no intent written: {j}");
}
