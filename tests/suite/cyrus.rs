//! A real, throw-away Cyrus IMAP 3.6 (Debian's build: imapd, timsieved,
//! lmtpd, idled) on loopback, the suite's second server, with Debian's
//! default namespace: every personal folder lives under `INBOX.` with `.`
//! as the hierarchy delimiter (`altnamespace: no`, `unixhierarchysep: no`),
//! so `CREATE "Backscatter"` is refused and the Sent folder is `INBOX.Sent`.
//!
//! ```ignore
//! let Some(cy) = Cyrus::start_or_skip("my_test") else { return };
//! let mut imap = cy.imap("alice");           // crate::harness::Imap
//! imap.append("INBOX.Sent", sent);
//! lmtp_deliver(cy.lmtp_port, "<>", "alice@example.test", bounce)?;
//! ```
//!
//! Debian's `cyrus-imapd` conflicts with the installed `dovecot-imapd`, so
//! `tests/cyrus/unpack.sh` (run by `scripts/test`) only unpacks the packages
//! into `target/cyrus` (or `BACKSCATTER_CYRUS_DIR`). The server is
//! `tests/cyrus/start.sh` run in a fresh short directory under /tmp: config,
//! sasldb, spool and sieve scripts live there and are deleted on drop (a
//! watchdog also removes them if the test binary is killed). Run as root,
//! the server becomes `nobody`: Cyrus refuses to run as root.
//!
//! Users: `alice/alicepw` and `bob/bobpw` (`alice@example.test` works for
//! LMTP), each with INBOX, `INBOX.Sent` (`\Sent`), `INBOX.Drafts`
//! (`\Drafts`) and `INBOX.Trash` (`\Trash`), as a mail client would have
//! created them; the administrator `cyrus/cyruspw` creates the users'
//! mailboxes (`user.alice`). No TLS: plain IMAP, ManageSieve and LMTP.
//!
//! Tests skip with a notice when Cyrus is not unpacked; with
//! `BACKSCATTER_REQUIRE_CYRUS=1` (set by `scripts/test`) they fail instead.

#![allow(dead_code)] // a toolbox: not every test uses every tool

use crate::harness::{free_ports, fresh_dir, lmtp_deliver, password, tail, Imap};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The test users (with mailboxes) and the administrator.
pub const USERS: [&str; 2] = ["alice", "bob"];
pub const ADMIN: (&str, &str) = ("cyrus", "cyruspw");

/// The folders each user has besides INBOX, with their special use
/// (RFC 6154), created with `CREATE ... (USE (...))`.
pub const FOLDERS: [(&str, &str); 3] = [
    ("INBOX.Sent", "\\Sent"),
    ("INBOX.Drafts", "\\Drafts"),
    ("INBOX.Trash", "\\Trash"),
];

const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running throw-away Cyrus. Stopped and deleted on drop.
pub struct Cyrus {
    /// everything lives here: imapd.conf, cyrus.conf, sasldb2, spool/, sieve/, lib/, run/
    pub dir: PathBuf,
    /// plain IMAP (LOGIN and AUTHENTICATE PLAIN allowed without TLS)
    pub imap_port: u16,
    /// ManageSieve (timsieved)
    pub sieve_port: u16,
    /// LMTP over TCP, preauthorized (`lmtpd -a`); Sieve runs on delivery
    pub lmtp_port: u16,
    /// LMTP on a unix socket
    pub lmtp_socket: PathBuf,
    /// what the master printed (Cyrus itself logs to syslog only)
    pub log_file: PathBuf,
    /// pid of the master process
    pub pid: u32,
    /// the Debian package version, e.g. `3.6.1-4+deb12u5`
    pub version: String,
    /// start.sh alone (master up, every service greeting)
    pub start_sh_time: Duration,
    /// start.sh plus creating the users' mailboxes, as seen from here
    pub start_time: Duration,
    /// every KEY=VALUE line start.sh printed (also in `DIR/env`)
    pub env: HashMap<String, String>,
    removed: bool,
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cyrus")
}

/// Where `tests/cyrus/unpack.sh` puts the packages.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BACKSCATTER_CYRUS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cyrus"))
}

impl Cyrus {
    /// Why Cyrus cannot run here, or `None` when it can: the unpacked
    /// server and `saslpasswd2` (package sasl2-bin) are both there.
    pub fn missing() -> Option<String> {
        let master = cache_dir().join("root/usr/lib/cyrus/bin/master");
        if !master.is_file() {
            return Some(format!(
                "Cyrus is not unpacked ({} is missing; run tests/cyrus/unpack.sh or scripts/test)",
                master.display()
            ));
        }
        if crate::harness::find_program("saslpasswd2").is_none() {
            return Some("saslpasswd2 is not installed (apt-get install sasl2-bin)".into());
        }
        None
    }

    pub fn available() -> bool {
        Self::missing().is_none()
    }

    /// Start a server, or print a notice and return `None` when Cyrus is
    /// not available. With `BACKSCATTER_REQUIRE_CYRUS=1` a missing Cyrus is
    /// a failure instead (scripts/test sets it: a skipped test proves
    /// nothing).
    pub fn start_or_skip(test: &str) -> Option<Cyrus> {
        let Some(why) = Self::missing() else {
            return Some(Self::start());
        };
        let required =
            std::env::var("BACKSCATTER_REQUIRE_CYRUS").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "{test}: {why}, but BACKSCATTER_REQUIRE_CYRUS is set"
        );
        eprintln!("SKIPPED {test}: {why}");
        None
    }

    /// Start a server with alice's and bob's mailboxes. Panics, with the
    /// log, if it does not come up.
    pub fn start() -> Cyrus {
        let t = Instant::now();
        let dir = fresh_dir();
        let mut last_err = String::new();
        // A port the kernel handed us may be taken again before the master
        // binds it; then try other ports.
        for _attempt in 0..3 {
            let [imap, sieve, lmtp, _, _] = free_ports();
            match run_start(&dir, imap, sieve, lmtp) {
                Ok((env, start_sh_time)) => {
                    let get = |k: &str| -> String {
                        env.get(k)
                            .cloned()
                            .unwrap_or_else(|| panic!("start.sh printed no {k}: {env:?}"))
                    };
                    let num = |k: &str| -> u32 {
                        get(k)
                            .parse()
                            .unwrap_or_else(|_| panic!("start.sh: bad {k}={}", get(k)))
                    };
                    let mut cy = Cyrus {
                        dir: dir.clone(),
                        imap_port: num("IMAP_PORT") as u16,
                        sieve_port: num("SIEVE_PORT") as u16,
                        lmtp_port: num("LMTP_PORT") as u16,
                        lmtp_socket: PathBuf::from(get("LMTP_SOCKET")),
                        log_file: PathBuf::from(get("CYRUS_LOG")),
                        pid: num("CYRUS_PID"),
                        version: get("CYRUS_VERSION"),
                        start_sh_time,
                        start_time: Duration::ZERO,
                        env: env.clone(),
                        removed: false,
                    };
                    cy.create_users();
                    cy.start_time = t.elapsed();
                    return cy;
                }
                Err(e) => {
                    let _ = run_stop(&dir, &["--kill"]);
                    last_err = e;
                }
            }
        }
        let _ = run_stop(&dir, &["--kill", "--rm"]);
        let _ = std::fs::remove_dir_all(&dir);
        panic!("cyrus did not start:\n{last_err}")
    }

    /// As the administrator: `user.NAME` for each test user; then as the
    /// user, the folders a mail client creates, with their special use.
    fn create_users(&self) {
        let mut admin = Imap::connect(self.imap_port, ADMIN.0, ADMIN.1);
        for user in USERS {
            admin
                .command(&format!("CREATE user.{user}"))
                .unwrap_or_else(|e| panic!("cyrus: creating user.{user}: {e}"));
        }
        admin.logout();
        for user in USERS {
            let mut imap = self.imap(user);
            for (name, usage) in FOLDERS {
                imap.command(&format!("CREATE \"{name}\" (USE ({usage}))"))
                    .unwrap_or_else(|e| panic!("cyrus: {user} creating {name}: {e}"));
            }
            imap.logout();
        }
    }

    /// Stop the server and delete its directory. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(e) = run_stop(&self.dir, &["--kill", "--rm"]) {
            eprintln!("stopping cyrus in {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.removed = true;
    }

    /// The last `n` lines of what the master printed.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_file, n)
    }

    /// A logged-in plain IMAP connection for a test user.
    pub fn imap(&self, user: &str) -> Imap {
        Imap::connect(self.imap_port, user, password(user))
    }

    /// A logged-in ManageSieve connection for a test user.
    pub fn sieve(&self, user: &str) -> ManageSieve {
        ManageSieve::connect(self.sieve_port, user, password(user))
            .unwrap_or_else(|e| panic!("ManageSieve login as {user}: {e}"))
    }

    /// Deliver over LMTP to `user@example.test` (see [`lmtp_deliver`]).
    pub fn deliver(&self, mail_from: &str, user: &str, msg: &[u8]) -> Result<(), String> {
        lmtp_deliver(
            self.lmtp_port,
            mail_from,
            &format!("{user}@example.test"),
            msg,
        )
    }

    /// Outer Message-ID -> the mailboxes it is in (with multiplicity), over
    /// every mailbox the user can LIST.
    pub fn where_is(&self, user: &str) -> HashMap<String, Vec<String>> {
        let mut imap = self.imap(user);
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for mb in list_names(&mut imap) {
            if imap.command(&format!("EXAMINE \"{mb}\"")).is_err() {
                continue;
            }
            for (_, id) in imap.fetch_message_ids(&mb) {
                if let Some(id) = id {
                    out.entry(id).or_default().push(mb.clone());
                }
            }
        }
        out
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.removed {
            eprintln!(
                "--- cyrus master log ({}), last lines ---\n{}",
                self.log_file.display(),
                self.log_tail(20)
            );
        }
        self.stop();
    }
}

/// The names of every mailbox `LIST "" "*"` shows (all ASCII here).
pub fn list_names(imap: &mut Imap) -> Vec<String> {
    let reply = imap
        .command("LIST \"\" \"*\"")
        .unwrap_or_else(|e| panic!("IMAP {e}"));
    reply
        .untagged
        .iter()
        .filter(|r| r.kind == "LIST")
        .filter_map(|r| {
            let v = r.values().ok()?;
            Some(String::from_utf8_lossy(v.get(2)?.bytes()?).into_owned())
        })
        .collect()
}

fn run_start(
    dir: &Path,
    imap: u16,
    sieve: u16,
    lmtp: u16,
) -> Result<(HashMap<String, String>, Duration), String> {
    let mut cmd = Command::new("bash");
    cmd.arg(scripts_dir().join("start.sh"))
        .arg(dir)
        .env("BACKSCATTER_CYRUS_DIR", cache_dir())
        .env("CYRUS_OWNER_PID", std::process::id().to_string())
        .env("IMAP_PORT", imap.to_string())
        .env("SIEVE_PORT", sieve.to_string())
        .env("LMTP_PORT", lmtp.to_string())
        .stdin(Stdio::null());
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run bash start.sh: {e}"))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        return Err(format!(
            "start.sh {} failed ({}):\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
        ));
    }
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((env, elapsed))
}

fn run_stop(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("bash")
        .arg(scripts_dir().join("stop.sh"))
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash stop.sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "stop.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

// ---------------------------------------------------------------------------
// ManageSieve (RFC 5804): a small blocking client, independent of the
// product's, for setting up and checking scripts
// ---------------------------------------------------------------------------

/// A logged-in ManageSieve connection (AUTHENTICATE PLAIN, no TLS).
pub struct ManageSieve {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// the capability lines of the greeting, e.g. `"SIEVE" "fileinto ..."`
    pub capabilities: Vec<String>,
}

impl ManageSieve {
    pub fn connect(port: u16, user: &str, pass: &str) -> Result<ManageSieve, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut s = ManageSieve {
            reader: BufReader::new(stream),
            writer,
            capabilities: Vec::new(),
        };
        s.capabilities = s.response("greeting")?;
        let token = backscatter::managesieve::base64(format!("\0{user}\0{pass}").as_bytes());
        s.command(&format!("AUTHENTICATE \"PLAIN\" \"{token}\""))?;
        Ok(s)
    }

    /// The lines up to a final OK (returned without it); NO/BYE is an error.
    fn response(&mut self, what: &str) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| format!("ManageSieve {what}: {e}"))?;
            if n == 0 {
                return Err(format!("ManageSieve {what}: connection closed"));
            }
            let line = line.trim_end().to_string();
            if line == "OK" || line.starts_with("OK ") {
                return Ok(lines);
            }
            if line.starts_with("NO") || line.starts_with("BYE") {
                return Err(format!("ManageSieve {what}: {line}"));
            }
            lines.push(line);
        }
    }

    /// Send one command line; its response lines before the OK.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<String>, String> {
        self.writer
            .write_all(format!("{cmd}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.response(&verb)
    }

    /// PUTSCRIPT (the server compiles it: a script it rejects is an error).
    pub fn put(&mut self, name: &str, script: &str) -> Result<(), String> {
        self.command(&format!(
            "PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}",
            script.len()
        ))
        .map(|_| ())
    }

    pub fn set_active(&mut self, name: &str) -> Result<(), String> {
        self.command(&format!("SETACTIVE \"{name}\"")).map(|_| ())
    }

    /// (name, active) of every script.
    pub fn list(&mut self) -> Result<Vec<(String, bool)>, String> {
        Ok(self
            .command("LISTSCRIPTS")?
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix('"')?;
                let (name, tail) = rest.split_once('"')?;
                Some((name.to_string(), tail.trim() == "ACTIVE"))
            })
            .collect())
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

// ---------------------------------------------------------------------------
// The harness's own tests: a real server with Debian's layout
// ---------------------------------------------------------------------------

/// A hand-written bounce (null sender) with the given Message-ID.
pub fn bounce(id: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@example.net\r\nTo: alice@example.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {id}\r\n\r\n\
         .a line starting with a dot\r\nend\r\n"
    )
    .into_bytes()
}

#[test]
fn cyrus_namespace_login_and_lmtp() {
    let Some(mut cy) = Cyrus::start_or_skip("cyrus_namespace_login_and_lmtp") else {
        return;
    };
    let mut imap = cy.imap("alice");
    assert!(imap.has_capability("NAMESPACE") && imap.has_capability("MOVE"));
    assert!(imap.has_capability("IDLE") && imap.has_capability("SPECIAL-USE"));
    // A quirk issue 11 noted: LOGINDISABLED is still listed after login.
    assert!(
        imap.has_capability("LOGINDISABLED"),
        "{:?}",
        imap.capabilities
    );

    // RFC 2342: personal namespace "INBOX." with delimiter "."
    let reply = imap.command("NAMESPACE").unwrap();
    let ns = reply
        .untagged
        .iter()
        .find(|r| r.kind == "NAMESPACE")
        .expect("a NAMESPACE response");
    let values = ns.values().unwrap();
    let personal = values[0].list().expect("a personal namespace")[0]
        .list()
        .unwrap();
    assert_eq!(personal[0].bytes(), Some(&b"INBOX."[..]), "{ns}");
    assert_eq!(personal[1].bytes(), Some(&b"."[..]), "{ns}");

    // The folders, with their special use.
    let list = imap.command("LIST \"\" \"*\"").unwrap();
    let sent = list
        .untagged
        .iter()
        .find(|r| r.kind == "LIST" && r.text().ends_with("INBOX.Sent"))
        .unwrap_or_else(|| panic!("no INBOX.Sent in {:?}", list.untagged));
    assert!(sent.text().contains("\\Sent"), "{sent}");
    assert_eq!(
        list_names(&mut imap),
        ["INBOX", "INBOX.Drafts", "INBOX.Sent", "INBOX.Trash"]
    );

    // Nothing outside INBOX.: Debian's Cyrus refuses a top-level folder.
    let err = imap.command("CREATE \"Backscatter\"").unwrap_err();
    assert!(err.contains("NO"), "{err}");
    imap.command("CREATE \"INBOX.Backscatter\"").unwrap();
    assert!(list_names(&mut imap).contains(&"INBOX.Backscatter".to_string()));

    // LMTP with the null sender lands in INBOX.
    cy.deliver("<>", "alice", &bounce("<cyrus-lmtp-1@example.net>"))
        .unwrap();
    assert_eq!(imap.select("INBOX"), 1);
    let ids = imap.fetch_message_ids("INBOX");
    assert_eq!(ids[0].1.as_deref(), Some("<cyrus-lmtp-1@example.net>"));
    let raw = String::from_utf8_lossy(&imap.fetch_raw("INBOX", ids[0].0)).into_owned();
    assert!(
        raw.contains("\r\n\r\n.a line starting with a dot\r\n"),
        "{raw}"
    );
    let err = cy.deliver("", "nobody-here", b"Subject: x\r\n\r\nx\r\n");
    assert!(err.is_err_and(|e| e.contains("RCPT TO")));
    // a MOVE into the user's own folder works
    imap.command(&format!("UID MOVE {} \"INBOX.Backscatter\"", ids[0].0))
        .unwrap();
    assert_eq!(imap.status("INBOX.Backscatter").0, 1);

    // A real password check.
    assert!(Imap::try_connect(cy.imap_port, "alice", "wrong").is_err());
    let mut bob = cy.imap("bob");
    assert_eq!(bob.select("INBOX"), 0);
    bob.logout();
    imap.logout();

    let dir = cy.dir.clone();
    let pid = cy.pid;
    cy.stop();
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the master {pid} is still running"
    );
    println!(
        "cyrus harness ({}): start {:?} (start.sh {:?})",
        cy.version, cy.start_time, cy.start_sh_time
    );
}

/// timsieved stores and activates a script; lmtpd runs it at delivery.
/// A `fileinto` a folder outside `INBOX.` fails there, and the message is
/// kept in INBOX (what issue 11 saw with the installed script).
#[test]
fn cyrus_managesieve_script_files_a_delivery() {
    let Some(cy) = Cyrus::start_or_skip("cyrus_managesieve_script_files_a_delivery") else {
        return;
    };
    let mut imap = cy.imap("alice");
    imap.command("CREATE \"INBOX.Q\"").unwrap();
    let mut sieve = cy.sieve("alice");
    assert!(
        sieve
            .capabilities
            .iter()
            .any(|c| c.starts_with("\"SIEVE\"") && c.contains("fileinto")),
        "{:?}",
        sieve.capabilities
    );
    // hand-written
    let script = "require [\"fileinto\"];\r\n\
                  if header :contains \"subject\" \"Undelivered\" { fileinto \"INBOX.Q\"; }\r\n";
    sieve.put("q", script).unwrap();
    sieve.set_active("q").unwrap();
    assert_eq!(sieve.list().unwrap(), [("q".to_string(), true)]);
    assert!(
        sieve.put("bad", "fileinto \"x\";").is_err(),
        "a script without require"
    );

    cy.deliver("<>", "alice", &bounce("<cyrus-sieve-1@example.net>"))
        .unwrap();
    cy.deliver(
        "carol@example.org",
        "alice",
        b"From: carol@example.org\r\nSubject: lunch\r\nMessage-ID: <cyrus-sieve-2@example.org>\r\n\r\nhi\r\n",
    )
    .unwrap();
    let w = cy.where_is("alice");
    assert_eq!(w["<cyrus-sieve-1@example.net>"], ["INBOX.Q"]);
    assert_eq!(w["<cyrus-sieve-2@example.org>"], ["INBOX"]);

    // fileinto a top-level folder: refused at delivery, kept in INBOX
    let outside = "require [\"fileinto\"];\r\nfileinto \"Backscatter\";\r\n";
    sieve.put("q", outside).unwrap();
    cy.deliver("<>", "alice", &bounce("<cyrus-sieve-3@example.net>"))
        .unwrap();
    let w = cy.where_is("alice");
    assert_eq!(w["<cyrus-sieve-3@example.net>"], ["INBOX"]);
    assert!(!list_names(&mut imap).iter().any(|m| m == "Backscatter"));
    sieve.logout();
}

/// IDLE (RFC 2177) pushes a delivery at once (idled runs).
#[test]
fn cyrus_idle_pushes_a_delivery() {
    let Some(cy) = Cyrus::start_or_skip("cyrus_idle_pushes_a_delivery") else {
        return;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cy.imap_port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut until = |tag: &str| -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "closed after {lines:?}"
            );
            let done = line.starts_with(tag);
            lines.push(line.trim_end().to_string());
            if done {
                return lines;
            }
        }
    };
    until("* OK");
    w.write_all(b"a LOGIN alice alicepw\r\nb SELECT INBOX\r\n")
        .unwrap();
    until("a OK");
    until("b OK");
    w.write_all(b"c IDLE\r\n").unwrap();
    until("+");
    let t = Instant::now();
    cy.deliver("<>", "alice", &bounce("<cyrus-idle-1@example.net>"))
        .unwrap();
    let pushed = until("* 1 EXISTS");
    let latency = t.elapsed();
    w.write_all(b"DONE\r\n").unwrap();
    let done = until("c ");
    assert!(done.last().unwrap().starts_with("c OK"), "{done:?}");
    // The delivery was pushed, not found by a poll (imapidlepoll is 60 s).
    assert!(latency < Duration::from_secs(20), "{latency:?} {pushed:?}");
    println!("cyrus IDLE: delivery pushed after {latency:?}");
}
