//! A real, throw-away Cyrus IMAP 3.6 (Debian's build: imapd, timsieved,
//! lmtpd, idled) on loopback, the suite's second server, with Debian's
//! default namespace: every personal folder lives under `INBOX.` with `.`
//! as the hierarchy delimiter (`altnamespace: no`, `unixhierarchysep: no`),
//! so `CREATE "Backscatter"` is refused and the Sent folder is `INBOX.Sent`.
//!
//! ```ignore
//! let Some(cy) = Cyrus::start_or_skip("my_test") else { return };
//! let mut imap = cy.imap("alice");           // crate::imap_client::Imap
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

use crate::dovecot::password;
use crate::imap_client::Imap;
use crate::lmtp::lmtp_deliver;
use crate::managesieve_client::ManageSieve;
use crate::server::{env_num, env_str, find_program, free_ports, fresh_dir, required, tail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The test users (with mailboxes) and the administrator.
pub const USERS: [&str; 2] = ["alice", "bob"];
/// The administrator (`admins:` in imapd.conf) and its password.
pub const ADMIN: (&str, &str) = ("cyrus", "cyruspw");

/// The folders each user has besides INBOX, with their special use
/// (RFC 6154), created with `CREATE ... (USE (...))`.
pub const FOLDERS: [(&str, &str); 3] = [
    ("INBOX.Sent", "\\Sent"),
    ("INBOX.Drafts", "\\Drafts"),
    ("INBOX.Trash", "\\Trash"),
];

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
    crate::repo_root().join("tests/cyrus")
}

/// Where `tests/cyrus/unpack.sh` puts the packages.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BACKSCATTER_CYRUS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target/cyrus"))
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
        if find_program("saslpasswd2").is_none() {
            return Some("saslpasswd2 is not installed (apt-get install sasl2-bin)".into());
        }
        None
    }

    /// Whether Cyrus can run here (see [`Cyrus::missing`]).
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
        assert!(
            !required("BACKSCATTER_REQUIRE_CYRUS"),
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
                    let get = |k: &str| env_str(&env, k);
                    let num = |k: &str| env_num(&env, k);
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
    let env = [
        ("BACKSCATTER_CYRUS_DIR", cache_dir().display().to_string()),
        ("CYRUS_OWNER_PID", std::process::id().to_string()),
        ("IMAP_PORT", imap.to_string()),
        ("SIEVE_PORT", sieve.to_string()),
        ("LMTP_PORT", lmtp.to_string()),
    ];
    crate::server::run_start(&scripts_dir().join("start.sh"), dir, &env, None)
}

fn run_stop(dir: &Path, args: &[&str]) -> Result<(), String> {
    crate::server::run_stop(&scripts_dir().join("stop.sh"), dir, args)
}
