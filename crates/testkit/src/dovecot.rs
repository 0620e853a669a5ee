//! A real, throw-away Dovecot 2.3 (+Pigeonhole, ManageSieve, LMTP) on
//! loopback for integration tests and benchmarks.
//!
//! ```ignore
//! use backscatter_testkit::{dovecot::Dovecot, lmtp::lmtp_deliver};
//! let Some(dc) = Dovecot::start_or_skip("my_test") else { return };
//! let mut imap = dc.imap("alice");
//! imap.append_many("INBOX", &messages);
//! lmtp_deliver(dc.lmtp_port, "<>", "alice@example.test", bounce)?;
//! ```
//!
//! The server is `tests/dovecot/start.sh` run in a fresh short directory
//! under /tmp; everything it uses lives there and is deleted on drop. A
//! watchdog started by the script also removes it if the test binary is
//! killed before its destructors run. Users: `alice/alicepw`, `bob/bobpw`,
//! `carol/carolpw` (`alice@example.test` works too).

use crate::imap_client::Imap;
use crate::server::{env_num, env_str, find_program, free_ports, fresh_dir, required, tail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The test users and their passwords.
pub const USERS: [(&str, &str); 3] = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")];

/// The password of a test user.
pub fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no test user {user:?}: use alice, bob or carol"))
}

/// How mail is stored on disk. The client sees no difference; mdbox (the
/// default here) takes bulk APPENDs 5-10 times faster than maildir.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MailFormat {
    /// one file per message (`DIR/mail/USER/Maildir`)
    Maildir,
    /// Dovecot's multi-dbox (`DIR/mail/USER/mdbox`)
    #[default]
    Mdbox,
}

impl MailFormat {
    /// `maildir` or `mdbox`, as start.sh's `DOVECOT_MAIL_FORMAT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            MailFormat::Maildir => "maildir",
            MailFormat::Mdbox => "mdbox",
        }
    }
}

/// Settings for [`Dovecot::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// maildir or mdbox (the default)
    pub mail_format: MailFormat,
    /// mail_debug/auth_debug into the log (also on with `DOVECOT_DEBUG=1`)
    pub debug: bool,
    /// appended to dovecot.conf
    pub extra_conf: Option<String>,
    /// the personal namespace's prefix and separator (default `""` and
    /// `/`); `("INBOX.", '.')` is the layout of Cyrus and Courier
    pub namespace: Option<(String, char)>,
}

/// dovecot.conf text that makes Dovecot advertise neither MOVE (RFC 6851)
/// nor COMPRESS: its own capability list otherwise, for the COPY + EXPUNGE
/// fallback a server without MOVE gets.
pub const NO_MOVE_CONF: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES WITHIN LIST-STATUS SPECIAL-USE LITERAL+\n";

/// A running throw-away Dovecot. Stopped and deleted on drop.
pub struct Dovecot {
    /// everything lives here: dovecot.conf, run/, log/, ssl/, users, mail/
    pub dir: PathBuf,
    /// plain IMAP; STARTTLS is offered
    pub imap_port: u16,
    /// IMAP over TLS
    pub imaps_port: u16,
    /// ManageSieve (STARTTLS offered)
    pub sieve_port: u16,
    /// ManageSieve over implicit TLS
    pub sieves_port: u16,
    /// LMTP over TCP (sieve runs on delivery)
    pub lmtp_port: u16,
    /// LMTP on a unix socket
    pub lmtp_socket: PathBuf,
    /// the self-signed server certificate (SAN localhost, 127.0.0.1, ::1): trust it as a CA
    pub ca_file: PathBuf,
    /// the server log
    pub log_file: PathBuf,
    /// pid of the master process (changes on restart)
    pub pid: u32,
    /// owner of the mail files
    pub mail_uid: u32,
    pub mail_gid: u32,
    pub mail_format: MailFormat,
    /// how long the last (re)start took, as seen from here
    pub start_time: Duration,
    /// every KEY=VALUE line start.sh printed (also in `DIR/env`)
    pub env: HashMap<String, String>,
    options: Options,
    running: bool,
    removed: bool,
}

fn scripts_dir() -> PathBuf {
    crate::repo_root().join("tests/dovecot")
}

impl Dovecot {
    /// Whether Dovecot is installed. Tests skip (with a notice) only when it
    /// is not; see [`Dovecot::start_or_skip`].
    pub fn available() -> bool {
        find_program("dovecot").is_some()
    }

    /// Start a server, or print a notice and return `None` when Dovecot is
    /// not installed. With `BACKSCATTER_REQUIRE_DOVECOT=1` a missing Dovecot
    /// is a failure instead (CI sets it: a skipped test proves nothing).
    pub fn start_or_skip(test: &str) -> Option<Dovecot> {
        if Self::available() {
            return Some(Self::start());
        }
        assert!(
            !required("BACKSCATTER_REQUIRE_DOVECOT"),
            "{test}: dovecot is not installed but BACKSCATTER_REQUIRE_DOVECOT is set \
             (apt-get install dovecot-imapd dovecot-managesieved dovecot-sieve dovecot-lmtpd)"
        );
        eprintln!(
            "SKIPPED {test}: dovecot is not installed \
             (apt-get install dovecot-imapd dovecot-managesieved dovecot-sieve dovecot-lmtpd)"
        );
        None
    }

    /// [`Dovecot::start_or_skip`] with options.
    pub fn start_with_or_skip(test: &str, options: Options) -> Option<Dovecot> {
        if Self::available() {
            return Some(Self::start_with(options));
        }
        Self::start_or_skip(test)
    }

    /// Start a server with the default options (mdbox). Panics, with the
    /// log tail, if it does not come up.
    pub fn start() -> Dovecot {
        Self::start_with(Options::default())
    }

    /// Start a server with these options. Panics, with the log tail, if it
    /// does not come up.
    pub fn start_with(options: Options) -> Dovecot {
        let dir = fresh_dir();
        let mut last_err = String::new();
        // A port the kernel handed us may be taken again before dovecot
        // binds it; then try other ports.
        for _attempt in 0..3 {
            let ports = free_ports();
            match run_start(&dir, Some(ports), &options) {
                Ok((env, elapsed)) => {
                    let mut dc = Dovecot {
                        dir: dir.clone(),
                        imap_port: 0,
                        imaps_port: 0,
                        sieve_port: 0,
                        sieves_port: 0,
                        lmtp_port: 0,
                        lmtp_socket: PathBuf::new(),
                        ca_file: PathBuf::new(),
                        log_file: PathBuf::new(),
                        pid: 0,
                        mail_uid: 0,
                        mail_gid: 0,
                        mail_format: options.mail_format,
                        start_time: elapsed,
                        env: HashMap::new(),
                        options: options.clone(),
                        running: true,
                        removed: false,
                    };
                    dc.apply_env(env);
                    return dc;
                }
                Err(e) => {
                    let _ = run_stop(&dir, &["--kill"]);
                    let retry = e.contains("Address already in use");
                    last_err = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        let _ = run_stop(&dir, &["--kill", "--rm"]);
        let _ = std::fs::remove_dir_all(&dir);
        panic!("dovecot did not start:\n{last_err}")
    }

    fn apply_env(&mut self, env: HashMap<String, String>) {
        let num = |k: &str| env_num(&env, k);
        self.imap_port = num("IMAP_PORT") as u16;
        self.imaps_port = num("IMAPS_PORT") as u16;
        self.sieve_port = num("SIEVE_PORT") as u16;
        self.sieves_port = num("SIEVES_PORT") as u16;
        self.lmtp_port = num("LMTP_PORT") as u16;
        self.lmtp_socket = PathBuf::from(env_str(&env, "LMTP_SOCKET"));
        self.ca_file = PathBuf::from(env_str(&env, "TLS_CA"));
        self.log_file = PathBuf::from(env_str(&env, "DOVECOT_LOG"));
        self.pid = num("DOVECOT_PID");
        self.mail_uid = num("MAIL_UID");
        self.mail_gid = num("MAIL_GID");
        self.env = env;
    }

    /// Stop the server processes at once (SIGKILL, like a crash: open
    /// connections are cut) but keep the directory, the mail and the ports,
    /// so [`Dovecot::start_again`] can bring the same server back.
    pub fn kill_server(&mut self) {
        if self.running && !self.removed {
            if let Err(e) = run_stop(&self.dir, &["--kill"]) {
                panic!("stopping dovecot: {e}");
            }
        }
        self.running = false;
    }

    /// Start the server again after [`Dovecot::kill_server`]: same ports,
    /// same mail, same certificate.
    pub fn start_again(&mut self) {
        assert!(
            !self.removed,
            "start_again after stop: the directory is gone"
        );
        assert!(!self.running, "start_again: dovecot is already running");
        let ports = [
            self.imap_port,
            self.imaps_port,
            self.sieve_port,
            self.lmtp_port,
            self.sieves_port,
        ];
        let mut last_err = String::new();
        // the old sockets are closed once every killed process is gone;
        // another process may briefly hold a port (up to 10 s: a loaded
        // machine is slow to reap)
        for _ in 0..100 {
            match run_start(&self.dir, Some(ports), &self.options) {
                Ok((env, elapsed)) => {
                    self.start_time = elapsed;
                    self.apply_env(env);
                    self.running = true;
                    return;
                }
                Err(e) => {
                    let _ = run_stop(&self.dir, &["--kill"]);
                    let retry = e.contains("Address already in use");
                    last_err = e;
                    if !retry {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!("dovecot did not start again:\n{last_err}")
    }

    /// Stop the server and start it again on the same ports with the same
    /// mail (for reconnect tests). Existing connections are cut.
    pub fn restart(&mut self) {
        self.kill_server();
        self.start_again();
    }

    /// Stop the server and delete its directory. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(e) = run_stop(&self.dir, &["--kill", "--rm"]) {
            eprintln!("stopping dovecot in {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.running = false;
        self.removed = true;
    }

    /// Whether the server is up (false after [`Dovecot::kill_server`] or
    /// [`Dovecot::stop`]).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_file, n)
    }

    /// Where a user's mail is stored on disk.
    pub fn mail_dir(&self, user: &str) -> PathBuf {
        let d = self.dir.join("mail").join(user);
        match self.mail_format {
            MailFormat::Maildir => d.join("Maildir"),
            MailFormat::Mdbox => d.join("mdbox"),
        }
    }

    /// A logged-in plain IMAP connection for a test user.
    pub fn imap(&self, user: &str) -> Imap {
        Imap::connect(self.imap_port, user, password(user))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.removed {
            eprintln!(
                "--- dovecot log ({}), last lines ---\n{}",
                self.log_file.display(),
                self.log_tail(20)
            );
        }
        self.stop();
    }
}

/// Run start.sh; returns its KEY=VALUE output and the wall time.
fn run_start(
    dir: &Path,
    ports: Option<[u16; 5]>,
    options: &Options,
) -> Result<(HashMap<String, String>, Duration), String> {
    let mut env = vec![
        (
            "DOVECOT_MAIL_FORMAT",
            options.mail_format.name().to_string(),
        ),
        ("DOVECOT_OWNER_PID", std::process::id().to_string()),
    ];
    if options.debug {
        env.push(("DOVECOT_DEBUG", "1".into()));
    }
    if let Some(extra) = &options.extra_conf {
        env.push(("DOVECOT_EXTRA_CONF", extra.clone()));
    }
    if let Some((prefix, sep)) = &options.namespace {
        env.push(("DOVECOT_NS_PREFIX", prefix.clone()));
        env.push(("DOVECOT_NS_SEPARATOR", sep.to_string()));
    }
    if let Some([imap, imaps, sieve, lmtp, sieves]) = ports {
        env.push(("SIEVES_PORT", sieves.to_string()));
        env.push(("IMAP_PORT", imap.to_string()));
        env.push(("IMAPS_PORT", imaps.to_string()));
        env.push(("SIEVE_PORT", sieve.to_string()));
        env.push(("LMTP_PORT", lmtp.to_string()));
    }
    crate::server::run_start(
        &scripts_dir().join("start.sh"),
        dir,
        &env,
        Some(&dir.join("log/dovecot.log")),
    )
}

fn run_stop(dir: &Path, args: &[&str]) -> Result<(), String> {
    crate::server::run_stop(&scripts_dir().join("stop.sh"), dir, args)
}
