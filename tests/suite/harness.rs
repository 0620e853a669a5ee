//! A real, throw-away Dovecot 2.3 (+Pigeonhole, ManageSieve, LMTP) on
//! loopback for integration tests, plus small blocking IMAP and LMTP clients
//! to set up and check mailboxes independently of the code under test.
//!
//! ```ignore
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

#![allow(dead_code)] // a toolbox: not every test uses every tool

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The test users and their passwords.
pub const USERS: [(&str, &str); 3] = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")];

/// Read/write timeout of the helper clients: a stuck server fails the test
/// instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The password of a test user.
pub fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no test user {user:?}: use alice, bob or carol"))
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

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
    fn name(self) -> &'static str {
        match self {
            MailFormat::Maildir => "maildir",
            MailFormat::Mdbox => "mdbox",
        }
    }
}

/// Settings for [`Dovecot::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mail_format: MailFormat,
    /// mail_debug/auth_debug into the log (also on with `DOVECOT_DEBUG=1`)
    pub debug: bool,
    /// appended to dovecot.conf
    pub extra_conf: Option<String>,
    /// the personal namespace's prefix and separator (default `""` and
    /// `/`); `("INBOX.", '.')` is the layout of Cyrus and Courier
    pub namespace: Option<(String, char)>,
}

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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dovecot")
}

/// Where a program is: `PATH`, then the sbin directories a non-root `PATH`
/// often lacks.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A fresh, short directory under /tmp (unix socket paths are capped at 108
/// bytes, so no deep temp dirs).
pub fn fresh_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    for _ in 0..100 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = PathBuf::from(format!("/tmp/bsdc-{pid}-{n}-{:04x}", nanos & 0xffff));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
    panic!("cannot create a fresh directory under /tmp")
}

/// Five distinct free loopback ports, chosen by the kernel.
pub fn free_ports() -> [u16; 5] {
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    let p = |i: usize| listeners[i].local_addr().expect("local addr").port();
    [p(0), p(1), p(2), p(3), p(4)]
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
        let required =
            std::env::var("BACKSCATTER_REQUIRE_DOVECOT").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "{test}: dovecot is not installed but BACKSCATTER_REQUIRE_DOVECOT is set \
             (apt-get install dovecot-imapd dovecot-managesieved dovecot-sieve dovecot-lmtpd)"
        );
        eprintln!(
            "SKIPPED {test}: dovecot is not installed \
             (apt-get install dovecot-imapd dovecot-managesieved dovecot-sieve dovecot-lmtpd)"
        );
        None
    }

    /// Start a server with the default options (mdbox). Panics, with the
    /// log tail, if it does not come up.
    pub fn start() -> Dovecot {
        Self::start_with(Options::default())
    }

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
        let get = |k: &str| -> &str {
            env.get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("start.sh printed no {k}: {env:?}"))
        };
        let num = |k: &str| -> u32 {
            get(k)
                .parse()
                .unwrap_or_else(|_| panic!("start.sh: bad {k}={}", get(k)))
        };
        self.imap_port = num("IMAP_PORT") as u16;
        self.imaps_port = num("IMAPS_PORT") as u16;
        self.sieve_port = num("SIEVE_PORT") as u16;
        self.sieves_port = num("SIEVES_PORT") as u16;
        self.lmtp_port = num("LMTP_PORT") as u16;
        self.lmtp_socket = PathBuf::from(get("LMTP_SOCKET"));
        self.ca_file = PathBuf::from(get("TLS_CA"));
        self.log_file = PathBuf::from(get("DOVECOT_LOG"));
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
    let mut cmd = Command::new("bash");
    cmd.arg(scripts_dir().join("start.sh"))
        .arg(dir)
        .env("DOVECOT_MAIL_FORMAT", options.mail_format.name())
        .env("DOVECOT_OWNER_PID", std::process::id().to_string())
        .stdin(Stdio::null());
    if options.debug {
        cmd.env("DOVECOT_DEBUG", "1");
    }
    if let Some(extra) = &options.extra_conf {
        cmd.env("DOVECOT_EXTRA_CONF", extra);
    }
    if let Some((prefix, sep)) = &options.namespace {
        cmd.env("DOVECOT_NS_PREFIX", prefix)
            .env("DOVECOT_NS_SEPARATOR", sep.to_string());
    }
    if let Some([imap, imaps, sieve, lmtp, sieves]) = ports {
        cmd.env("SIEVES_PORT", sieves.to_string())
            .env("IMAP_PORT", imap.to_string())
            .env("IMAPS_PORT", imaps.to_string())
            .env("SIEVE_PORT", sieve.to_string())
            .env("LMTP_PORT", lmtp.to_string());
    }
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run bash start.sh: {e}"))?;
    let elapsed = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "start.sh {} failed ({}):\n{}\n--- log/dovecot.log ---\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            tail(&dir.join("log/dovecot.log"), 30)
        ));
    }
    let env = stdout
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
// IMAP: a small blocking client for setting up and checking mailboxes
// ---------------------------------------------------------------------------

/// A value in an IMAP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// an atom or number, e.g. `UID`, `\Seen`, `BODY[HEADER.FIELDS (MESSAGE-ID)]`
    Atom(String),
    /// a quoted string or a literal
    Str(Vec<u8>),
    Nil,
    List(Vec<Value>),
}

impl Value {
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The bytes of a string, literal or atom.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            Value::Atom(a) => Some(a.as_bytes()),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<u32> {
        self.atom()?.parse().ok()
    }

    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }
}

/// One response, with any literals read in full.
#[derive(Clone, Debug)]
pub struct Response {
    /// `*`, `+` or the command tag
    pub tag: String,
    /// for `* 5 EXISTS` / `* 3 FETCH (...)`: the number
    pub number: Option<u32>,
    /// upper-cased keyword: `OK`, `NO`, `EXISTS`, `FETCH`, `SEARCH`, `STATUS`, `LIST`, …
    pub kind: String,
    /// the rest, as sent (literals included)
    pub rest: Vec<u8>,
}

impl Response {
    /// The rest parsed into values (for data responses; a status response's
    /// text is free text and may not parse).
    pub fn values(&self) -> Result<Vec<Value>, String> {
        let mut pos = 0;
        parse_values(&self.rest, &mut pos, false)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.rest).into_owned()
    }

    /// `FETCH` items as (upper-cased name, value) pairs.
    pub fn fetch_items(&self) -> Result<Vec<(String, Value)>, String> {
        if self.kind != "FETCH" {
            return Err(format!("not a FETCH response: {self}"));
        }
        let values = self.values()?;
        let items = values
            .first()
            .and_then(Value::list)
            .ok_or_else(|| format!("FETCH without a list: {self}"))?;
        Ok(items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((k.atom()?.to_ascii_uppercase(), v.clone())),
                _ => None,
            })
            .collect())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.tag)?;
        if let Some(n) = self.number {
            write!(f, " {n}")?;
        }
        let rest = String::from_utf8_lossy(&self.rest);
        let rest: String = rest.chars().take(300).collect();
        write!(f, " {} {rest}", self.kind)
    }
}

/// What a completed command returned.
#[derive(Clone, Debug)]
pub struct Reply {
    /// the untagged responses, in order
    pub untagged: Vec<Response>,
    /// the text of the tagged OK, e.g. `[APPENDUID 1 1:500] Append completed.`
    pub text: String,
}

/// Parse values until the end of `buf` (or, inside a list, its closing `)`).
fn parse_values(buf: &[u8], pos: &mut usize, in_list: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    loop {
        while *pos < buf.len() && buf[*pos] == b' ' {
            *pos += 1;
        }
        let Some(&c) = buf.get(*pos) else {
            return if in_list {
                Err("unclosed (".into())
            } else {
                Ok(out)
            };
        };
        match c {
            b'(' => {
                *pos += 1;
                out.push(Value::List(parse_values(buf, pos, true)?));
            }
            b')' => {
                if !in_list {
                    return Err(format!("unbalanced ) at {}", *pos));
                }
                *pos += 1;
                return Ok(out);
            }
            b'"' => {
                *pos += 1;
                let mut s = Vec::new();
                loop {
                    match buf.get(*pos) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            s.push(*buf.get(*pos + 1).ok_or("bad escape")?);
                            *pos += 2;
                        }
                        Some(&b) => {
                            s.push(b);
                            *pos += 1;
                        }
                    }
                }
                *pos += 1;
                out.push(Value::Str(s));
            }
            b'{' => {
                let close = buf[*pos..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("unterminated literal length")?
                    + *pos;
                let spec = std::str::from_utf8(&buf[*pos + 1..close]).map_err(|e| e.to_string())?;
                let len: usize = spec
                    .trim_end_matches('+')
                    .parse()
                    .map_err(|_| format!("bad literal length {spec:?}"))?;
                let start = close + 1;
                if buf.get(start..start + 2) != Some(b"\r\n") {
                    return Err("literal length not followed by CRLF".into());
                }
                let data = buf
                    .get(start + 2..start + 2 + len)
                    .ok_or("literal shorter than announced")?;
                out.push(Value::Str(data.to_vec()));
                *pos = start + 2 + len;
            }
            _ => {
                // an atom; a [...] section (fetch items) may hold spaces and parens
                let start = *pos;
                let mut depth = 0usize;
                while let Some(&b) = buf.get(*pos) {
                    match b {
                        b'[' => depth += 1,
                        b']' if depth > 0 => depth -= 1,
                        b' ' | b'(' | b')' | b'"' | b'{' if depth == 0 => break,
                        _ => {}
                    }
                    *pos += 1;
                }
                let atom = String::from_utf8_lossy(&buf[start..*pos]).into_owned();
                if atom.eq_ignore_ascii_case("NIL") {
                    out.push(Value::Nil);
                } else {
                    out.push(Value::Atom(atom));
                }
            }
        }
    }
}

/// If a response line ends with a literal announcement `{n}` / `{n+}`, its length.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A mailbox name as a quoted IMAP string, in modified UTF-7 (RFC 3501 5.1.3).
/// A mailbox name as an IMAP argument: modified UTF-7, quoted.
pub fn mailbox_arg(name: &str) -> String {
    quote(&modified_utf7(name))
}

fn quote(s: &str) -> String {
    assert!(
        !s.contains(['\r', '\n', '\0']),
        "IMAP quoted strings cannot hold CR, LF or NUL: {s:?}"
    );
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn modified_utf7(s: &str) -> String {
    fn flush(out: &mut String, units: &mut Vec<u16>) {
        if units.is_empty() {
            return;
        }
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out.push('-');
        units.clear();
    }
    let mut out = String::new();
    let mut units = Vec::new();
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut units);
    out
}

/// Parse an RFC 4315 uid-set such as `1:3,7`.
fn parse_uid_set(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("bad uid-set {s:?}");
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// The value of the first `Message-ID:` header in a header block (unfolded,
/// trimmed).
pub fn header_message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut lines = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut v = value.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            v.push_str(next.trim());
        }
        return (!v.is_empty()).then_some(v);
    }
    None
}

/// A small blocking IMAP client over plain TCP, for test setup and checks.
/// Methods panic with the server's answer on failure, except
/// [`Imap::try_connect`] and [`Imap::command`].
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
    /// the capabilities after login
    pub capabilities: Vec<String>,
}

impl Imap {
    /// Connect to 127.0.0.1:`port` and LOGIN. Panics on failure.
    pub fn connect(port: u16, user: &str, pass: &str) -> Imap {
        Self::try_connect(port, user, pass)
            .unwrap_or_else(|e| panic!("IMAP connect to 127.0.0.1:{port} as {user}: {e}"))
    }

    pub fn try_connect(port: u16, user: &str, pass: &str) -> Result<Imap, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut imap = Imap {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            tag: 0,
            capabilities: Vec::new(),
        };
        let greeting = imap.read_response()?;
        if greeting.tag != "*" || greeting.kind != "OK" {
            return Err(format!("unexpected greeting: {greeting}"));
        }
        imap.command(&format!("LOGIN {} {}", quote(user), quote(pass)))?;
        let caps = imap.command("CAPABILITY")?;
        imap.capabilities = caps
            .untagged
            .iter()
            .filter(|r| r.kind == "CAPABILITY")
            .flat_map(|r| {
                r.text()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(imap)
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Read one response (with its literals).
    fn read_response(&mut self) -> Result<Response, String> {
        let mut raw = Vec::new();
        loop {
            let start = raw.len();
            let n = self
                .reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 || !raw.ends_with(b"\n") {
                return Err(format!(
                    "connection closed by the server{}",
                    if raw.is_empty() {
                        String::new()
                    } else {
                        format!(" after {:?}", String::from_utf8_lossy(&raw))
                    }
                ));
            }
            match literal_len(&raw[start..]) {
                Some(len) => {
                    let at = raw.len();
                    raw.resize(at + len, 0);
                    self.reader
                        .read_exact(&mut raw[at..])
                        .map_err(|e| format!("read literal: {e}"))?;
                }
                None => break,
            }
        }
        while raw.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            raw.pop();
        }
        let mut words = raw.splitn(2, |&b| b == b' ');
        let tag = String::from_utf8_lossy(words.next().unwrap_or_default()).into_owned();
        let mut rest = words.next().unwrap_or_default();
        let mut number = None;
        if tag == "*" {
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            if let Some(n) = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                number = Some(n);
                rest = rest.get(end + 1..).unwrap_or_default();
            }
        }
        if tag == "+" {
            return Ok(Response {
                tag,
                number,
                kind: String::new(),
                rest: rest.to_vec(),
            });
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let kind = String::from_utf8_lossy(&rest[..end]).to_ascii_uppercase();
        let rest = rest.get(end + 1..).unwrap_or_default().to_vec();
        Ok(Response {
            tag,
            number,
            kind,
            rest,
        })
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    /// Send `TAG <cmd>` (the command without tag and CRLF; it may carry
    /// LITERAL+ literals) and collect the responses up to the tagged one.
    /// A tagged NO or BAD is an error.
    pub fn command_bytes(&mut self, cmd: &[u8]) -> Result<Reply, String> {
        let tag = self.next_tag();
        let mut line = Vec::with_capacity(cmd.len() + tag.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(cmd);
        line.extend_from_slice(b"\r\n");
        self.writer
            .write_all(&line)
            .map_err(|e| format!("write: {e}"))?;
        let shown = || {
            let c = String::from_utf8_lossy(&cmd[..cmd.len().min(80)]).into_owned();
            c.split("\r\n").next().unwrap_or_default().to_string()
        };
        let mut untagged = Vec::new();
        loop {
            let r = self
                .read_response()
                .map_err(|e| format!("{}: {e}", shown()))?;
            if r.tag == tag {
                return match r.kind.as_str() {
                    "OK" => Ok(Reply {
                        untagged,
                        text: r.text(),
                    }),
                    _ => Err(format!("{}: {} {}", shown(), r.kind, r.text())),
                };
            }
            if r.tag == "+" {
                return Err(format!("{}: unexpected continuation request {r}", shown()));
            }
            untagged.push(r);
        }
    }

    /// Run one command, e.g. `imap.command("UID MOVE 1:3 Junk")`, in the
    /// mailbox the last helper opened (every mailbox helper SELECTs its
    /// mailbox read-write; reads use BODY.PEEK and leave flags alone). Mind
    /// that after `examine` Dovecot answers a STORE with OK but ignores it.
    pub fn command(&mut self, cmd: &str) -> Result<Reply, String> {
        self.command_bytes(cmd.as_bytes())
    }

    fn must(&mut self, cmd: &str) -> Reply {
        self.command(cmd).unwrap_or_else(|e| panic!("IMAP {e}"))
    }

    /// CREATE a mailbox; one that already exists is fine.
    pub fn create(&mut self, mailbox: &str) {
        if let Err(e) = self.command(&format!("CREATE {}", mailbox_arg(mailbox))) {
            assert!(e.contains("[ALREADYEXISTS]"), "IMAP {e}");
        }
    }

    /// APPEND one message; returns its UID.
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> u32 {
        self.append_many(mailbox, &[message.to_vec()])[0]
    }

    /// APPEND many messages quickly: MULTIAPPEND with LITERAL+ literals, in
    /// batches of up to 500 messages / 16 MiB. Returns the UIDs (APPENDUID),
    /// in order.
    pub fn append_many(&mut self, mailbox: &str, messages: &[Vec<u8>]) -> Vec<u32> {
        const MAX_COUNT: usize = 500;
        const MAX_BYTES: usize = 16 << 20;
        let mbox = mailbox_arg(mailbox);
        let mut uids = Vec::with_capacity(messages.len());
        let mut i = 0;
        while i < messages.len() {
            let mut cmd = format!("APPEND {mbox}").into_bytes();
            let first = i;
            while i < messages.len()
                && i - first < MAX_COUNT
                && (i == first || cmd.len() + messages[i].len() < MAX_BYTES)
            {
                cmd.extend_from_slice(format!(" {{{}+}}\r\n", messages[i].len()).as_bytes());
                cmd.extend_from_slice(&messages[i]);
                i += 1;
            }
            let reply = self.command_bytes(&cmd).unwrap_or_else(|e| {
                panic!("IMAP APPEND of messages {first}..{i} to {mailbox:?}: {e}")
            });
            // [APPENDUID <uidvalidity> <uid-set>]
            let got = reply
                .text
                .strip_prefix("[APPENDUID ")
                .and_then(|t| t.split(']').next())
                .and_then(|t| t.split_whitespace().nth(1))
                .map(parse_uid_set)
                .unwrap_or_else(|| Err(format!("no APPENDUID in {:?}", reply.text)))
                .unwrap_or_else(|e| panic!("IMAP APPEND: {e}"));
            assert_eq!(
                got.len(),
                i - first,
                "APPENDUID {:?} for {} messages",
                reply.text,
                i - first
            );
            uids.extend(got);
        }
        uids
    }

    /// SELECT (read-write); returns the number of messages.
    pub fn select(&mut self, mailbox: &str) -> u32 {
        let reply = self.must(&format!("SELECT {}", mailbox_arg(mailbox)));
        exists(&reply)
    }

    /// EXAMINE (read-only: no flag changes, \Recent kept); returns the number
    /// of messages.
    pub fn examine(&mut self, mailbox: &str) -> u32 {
        let reply = self.must(&format!("EXAMINE {}", mailbox_arg(mailbox)));
        exists(&reply)
    }

    /// All UIDs of a mailbox, ascending.
    pub fn uids(&mut self, mailbox: &str) -> Vec<u32> {
        if self.select(mailbox) == 0 {
            return Vec::new();
        }
        let reply = self.must("UID SEARCH ALL");
        let mut uids: Vec<u32> = reply
            .untagged
            .iter()
            .filter(|r| r.kind == "SEARCH")
            .flat_map(|r| {
                r.text()
                    .split_whitespace()
                    .map(|n| {
                        n.parse::<u32>()
                            .unwrap_or_else(|_| panic!("bad SEARCH response {r}"))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        uids.sort_unstable();
        uids
    }

    /// SELECT the mailbox and UID FETCH `items` (use BODY.PEEK to leave
    /// \Seen alone) over `uids` (e.g. `1:*`); returns each message's items.
    pub fn fetch(&mut self, mailbox: &str, uids: &str, items: &str) -> Vec<Vec<(String, Value)>> {
        if self.select(mailbox) == 0 {
            return Vec::new();
        }
        let reply = self.must(&format!("UID FETCH {uids} ({items})"));
        reply
            .untagged
            .iter()
            .filter(|r| r.kind == "FETCH")
            .map(|r| {
                r.fetch_items()
                    .unwrap_or_else(|e| panic!("IMAP FETCH: {e}"))
            })
            .collect()
    }

    /// (uid, Message-ID) of every message, by UID; the Message-ID as written,
    /// e.g. `<id@host>`, `None` where there is none.
    pub fn fetch_message_ids(&mut self, mailbox: &str) -> Vec<(u32, Option<String>)> {
        let mut out: Vec<(u32, Option<String>)> = self
            .fetch(mailbox, "1:*", "UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
            .iter()
            .map(|items| {
                let uid = item(items, "UID")
                    .and_then(Value::number)
                    .expect("FETCH without UID");
                let header = items
                    .iter()
                    .find(|(k, _)| k.starts_with("BODY[HEADER.FIELDS"))
                    .and_then(|(_, v)| v.bytes())
                    .unwrap_or_default();
                (uid, header_message_id(header))
            })
            .collect();
        out.sort_by_key(|(uid, _)| *uid);
        out
    }

    /// The raw message with this UID (without setting \Seen).
    pub fn fetch_raw(&mut self, mailbox: &str, uid: u32) -> Vec<u8> {
        let all = self.fetch(mailbox, &uid.to_string(), "UID BODY.PEEK[]");
        all.iter()
            .find(|items| item(items, "UID").and_then(Value::number) == Some(uid))
            .and_then(|items| item(items, "BODY[]"))
            .and_then(Value::bytes)
            .unwrap_or_else(|| panic!("no message with UID {uid} in {mailbox:?}"))
            .to_vec()
    }

    /// The flags of the message with this UID, e.g. `["\\Seen"]`.
    pub fn flags(&mut self, mailbox: &str, uid: u32) -> Vec<String> {
        let all = self.fetch(mailbox, &uid.to_string(), "UID FLAGS");
        all.iter()
            .find(|items| item(items, "UID").and_then(Value::number) == Some(uid))
            .and_then(|items| item(items, "FLAGS"))
            .and_then(Value::list)
            .unwrap_or_else(|| panic!("no message with UID {uid} in {mailbox:?}"))
            .iter()
            .filter_map(|v| v.atom().map(str::to_string))
            .collect()
    }

    /// SELECT the mailbox and `UID STORE <uids> <change>`, e.g.
    /// `imap.store("INBOX", "1:3", "+FLAGS (\\Seen)")`.
    pub fn store(&mut self, mailbox: &str, uids: &str, change: &str) {
        self.select(mailbox);
        self.must(&format!("UID STORE {uids} {change}"));
    }

    /// STATUS: (messages, uidvalidity, uidnext).
    pub fn status(&mut self, mailbox: &str) -> (u32, u32, u32) {
        let reply = self.must(&format!(
            "STATUS {} (MESSAGES UIDVALIDITY UIDNEXT)",
            mailbox_arg(mailbox)
        ));
        let r = reply
            .untagged
            .iter()
            .find(|r| r.kind == "STATUS")
            .unwrap_or_else(|| panic!("no STATUS response for {mailbox:?}"));
        let values = r
            .values()
            .unwrap_or_else(|e| panic!("bad STATUS response {r}: {e}"));
        let list = values
            .get(1)
            .and_then(Value::list)
            .unwrap_or_else(|| panic!("bad STATUS response {r}"));
        let get = |name: &str| -> u32 {
            list.chunks(2)
                .find(|kv| kv[0].atom().is_some_and(|a| a.eq_ignore_ascii_case(name)))
                .and_then(|kv| kv.get(1)?.number())
                .unwrap_or_else(|| panic!("no {name} in STATUS response {r}"))
        };
        (get("MESSAGES"), get("UIDVALIDITY"), get("UIDNEXT"))
    }

    /// LOGOUT and close.
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

fn item<'a>(items: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    items.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn exists(reply: &Reply) -> u32 {
    reply
        .untagged
        .iter()
        .rev()
        .find(|r| r.kind == "EXISTS")
        .and_then(|r| r.number)
        .expect("no EXISTS in the SELECT/EXAMINE reply")
}

// ---------------------------------------------------------------------------
// LMTP
// ---------------------------------------------------------------------------

/// Deliver one message over LMTP to 127.0.0.1:`port`, as an MTA would (sieve
/// scripts run). `mail_from` is the envelope sender: `""` or `"<>"` is the
/// null sender of bounces; `rcpt` e.g. `alice@example.test`. Bare LF line
/// ends become CRLF and lines starting with `.` are dot-stuffed.
pub fn lmtp_deliver(port: u16, mail_from: &str, rcpt: &str, msg: &[u8]) -> Result<(), String> {
    fn path(a: &str) -> String {
        let a = a.trim();
        if a.starts_with('<') {
            a.to_string()
        } else {
            format!("<{a}>")
        }
    }
    fn reply(r: &mut BufReader<TcpStream>, step: &str, want: &str) -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = r
                .read_line(&mut line)
                .map_err(|e| format!("LMTP {step}: {e}"))?;
            if n == 0 {
                return Err(format!("LMTP {step}: connection closed after {all:?}"));
            }
            all.push_str(&line);
            // "250-more" continues, "250 last" ends
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        if all.starts_with(want) {
            Ok(all)
        } else {
            Err(format!(
                "LMTP {step}: expected {want}, got {}",
                all.trim_end()
            ))
        }
    }

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("LMTP connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    let send = |w: &mut TcpStream, s: &[u8], step: &str| {
        w.write_all(s)
            .map_err(|e| format!("LMTP {step}: write: {e}"))
    };

    reply(&mut r, "greeting", "220")?;
    send(&mut w, b"LHLO backscatter.test\r\n", "LHLO")?;
    reply(&mut r, "LHLO", "250")?;
    let from = format!("MAIL FROM:{}\r\n", path(mail_from));
    send(&mut w, from.as_bytes(), "MAIL FROM")?;
    reply(&mut r, "MAIL FROM", "250")?;
    let to = format!("RCPT TO:{}\r\n", path(rcpt));
    send(&mut w, to.as_bytes(), "RCPT TO")?;
    reply(&mut r, "RCPT TO", "250")?;
    send(&mut w, b"DATA\r\n", "DATA")?;
    reply(&mut r, "DATA", "354")?;

    let mut data = Vec::with_capacity(msg.len() + msg.len() / 40 + 8);
    let body = msg.strip_suffix(b"\n").unwrap_or(msg);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    send(&mut w, &data, "message")?;
    // LMTP: one reply per accepted recipient
    reply(&mut r, "end of DATA", "250")?;
    let _ = send(&mut w, b"QUIT\r\n", "QUIT");
    let _ = reply(&mut r, "QUIT", "221");
    Ok(())
}

// ---------------------------------------------------------------------------
// The harness's own test
// ---------------------------------------------------------------------------

/// `template` with its first `Message-Id:` header line replaced by `id`.
fn with_message_id(template: &[u8], id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 32);
    let mut replaced = false;
    for line in template.split_inclusive(|&b| b == b'\n') {
        if !replaced && line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            out.extend_from_slice(format!("Message-Id: {id}\n").as_bytes());
            replaced = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    assert!(replaced, "the template has no Message-Id header");
    out
}

#[test]
fn parses_imap_values() {
    let wire = b"(UID 7 FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (MESSAGE-ID)] {23}\r\nMessage-ID: <a@b>\r\n\r\n INTERNALDATE \"1-Jan-2020 00:00:00 +0000\" X NIL)";
    let v = parse_values(wire, &mut 0, false).unwrap();
    let items = v[0].list().unwrap();
    assert_eq!(items[0], Value::Atom("UID".into()));
    assert_eq!(items[1].number(), Some(7));
    assert_eq!(items[3].list().unwrap()[1], Value::Atom("$Junk".into()));
    assert_eq!(
        items[4],
        Value::Atom("BODY[HEADER.FIELDS (MESSAGE-ID)]".into())
    );
    assert_eq!(
        header_message_id(items[5].bytes().unwrap()).as_deref(),
        Some("<a@b>")
    );
    assert_eq!(items[7].bytes(), Some(&b"1-Jan-2020 00:00:00 +0000"[..]));
    assert_eq!(items[9], Value::Nil);
    assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
    assert_eq!(literal_len(b"t1 APPEND x {12+}\r\n"), Some(12));
    assert_eq!(literal_len(b"* OK done\r\n"), None);
    assert_eq!(parse_uid_set("1:3,7").unwrap(), vec![1, 2, 3, 7]);
    assert_eq!(modified_utf7("Entwürfe & Müll"), "Entw&APw-rfe &- M&APw-ll");
    assert_eq!(modified_utf7("日本語"), "&ZeVnLIqe-");
    assert_eq!(
        header_message_id(b"Message-Id:\r\n <folded@x>\r\n").as_deref(),
        Some("<folded@x>")
    );
}

#[test]
fn harness_works() {
    let t = Instant::now();
    let Some(mut dc) = Dovecot::start_or_skip("harness_works") else {
        return;
    };
    let t_start = t.elapsed();
    let t_start_sh = dc.start_time;
    assert!(dc.ca_file.is_file(), "{}", dc.ca_file.display());

    // 2,000 copies of a real bounce, each with its own Message-ID
    let template = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sisimai/bsd/lhost-postfix-03.eml"),
    )
    .expect("read the template message");
    const N: usize = 2000;
    let id = |i: usize| format!("<harness-{i}@backscatter.test>");
    let messages: Vec<Vec<u8>> = (0..N).map(|i| with_message_id(&template, &id(i))).collect();

    let mut imap = dc.imap("alice");
    assert!(imap.has_capability("MULTIAPPEND") && imap.has_capability("LITERAL+"));
    imap.create("Bulk");
    imap.create("Bulk"); // already there: fine
    let t = Instant::now();
    let uids = imap.append_many("Bulk", &messages);
    let t_append = t.elapsed();
    assert_eq!(uids, (1..=N as u32).collect::<Vec<_>>());
    assert_eq!(imap.select("Bulk"), N as u32);
    let (count, uidvalidity, uidnext) = imap.status("Bulk");
    assert_eq!((count, uidnext), (N as u32, N as u32 + 1));
    assert_eq!(imap.uids("Bulk"), uids);

    let t = Instant::now();
    let ids = imap.fetch_message_ids("Bulk");
    let t_fetch_ids = t.elapsed();
    assert_eq!(ids.len(), N);
    for (i, (uid, mid)) in ids.iter().enumerate() {
        assert_eq!(*uid, uids[i]);
        assert_eq!(mid.as_deref(), Some(id(i).as_str()));
    }
    let raw = imap.fetch_raw("Bulk", uids[41]);
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(raw_text.contains("Message-Id: <harness-41@backscatter.test>"));
    assert!(raw_text.contains("Undelivered Mail Returned to Sender"));
    // the second (quoted) Message-Id is the original one, untouched
    assert!(raw_text.contains("<20140701000000.000000000000@e1.example.ne.jp>"));
    assert!(!imap.flags("Bulk", uids[41]).iter().any(|f| f == "\\Seen"));
    imap.store(
        "Bulk",
        &uids[41].to_string(),
        "+FLAGS (\\Seen $Backscatter)",
    );
    // after a read helper, raw commands act on its mailbox, read-write
    let unflagged = |f: &[String]| !f.iter().any(|f| f == "\\Flagged");
    assert!(unflagged(&imap.flags("Bulk", uids[42])));
    imap.command(&format!("UID STORE {} +FLAGS (\\Flagged)", uids[42]))
        .unwrap();
    assert!(!unflagged(&imap.flags("Bulk", uids[42])));
    let flags = imap.flags("Bulk", uids[41]);
    assert!(flags.iter().any(|f| f == "\\Seen") && flags.iter().any(|f| f == "$Backscatter"));

    // LMTP with the null sender, dot-stuffing and bare LF line ends
    let t = Instant::now();
    let bounce = b"From: MAILER-DAEMON@example.net\nTo: alice@example.test\n\
        Subject: Undelivered Mail Returned to Sender\nMessage-ID: <lmtp-1@example.net>\n\n\
        .a line starting with a dot\n..and one with two\n.\nend\n";
    lmtp_deliver(dc.lmtp_port, "<>", "alice@example.test", bounce).unwrap();
    let t_lmtp = t.elapsed();
    assert_eq!(imap.select("INBOX"), 1);
    let inbox = imap.fetch_message_ids("INBOX");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].1.as_deref(), Some("<lmtp-1@example.net>"));
    let raw = String::from_utf8_lossy(&imap.fetch_raw("INBOX", inbox[0].0)).into_owned();
    assert!(raw.starts_with("Return-Path: <>\r\n"), "{raw}");
    assert!(
        raw.contains("\r\n\r\n.a line starting with a dot\r\n..and one with two\r\n.\r\nend\r\n"),
        "{raw}"
    );
    let err = lmtp_deliver(
        dc.lmtp_port,
        "",
        "nobody-here@example.test",
        b"Subject: x\n\nx\n",
    );
    assert!(err.is_err_and(|e| e.contains("RCPT TO")));

    // restart: same ports, same mail; old connections are cut
    let ports = (dc.imap_port, dc.imaps_port, dc.sieve_port, dc.lmtp_port);
    let old_pid = dc.pid;
    let t = Instant::now();
    dc.restart();
    let t_restart = t.elapsed();
    assert_ne!(dc.pid, old_pid);
    assert_eq!(
        ports,
        (dc.imap_port, dc.imaps_port, dc.sieve_port, dc.lmtp_port)
    );
    assert!(
        imap.command("NOOP").is_err(),
        "the old connection survived the restart"
    );
    let mut imap = dc.imap("alice");
    assert_eq!(imap.status("Bulk"), (N as u32, uidvalidity, uidnext));
    assert_eq!(imap.status("INBOX").0, 1);
    let ids = imap.fetch_message_ids("Bulk");
    assert_eq!(ids.len(), N);
    assert_eq!(ids[N - 1].1.as_deref(), Some(id(N - 1).as_str()));
    assert!(imap
        .flags("Bulk", uids[41])
        .iter()
        .any(|f| f == "$Backscatter"));
    lmtp_deliver(
        dc.lmtp_port,
        "bob@example.test",
        "bob",
        b"Subject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    let mut bob = dc.imap("bob");
    assert_eq!(bob.select("INBOX"), 1);
    bob.logout();
    assert!(Imap::try_connect(dc.imap_port, "alice", "wrong").is_err());
    imap.logout();

    let dir = dc.dir.clone();
    let t = Instant::now();
    dc.stop();
    let t_stop = t.elapsed();
    assert!(!dir.exists(), "{} still there", dir.display());
    dc.stop(); // idempotent

    // the other storage format, briefly
    let t = Instant::now();
    let md = Dovecot::start_with(Options {
        mail_format: MailFormat::Maildir,
        ..Options::default()
    });
    let mut carol = md.imap("carol");
    let few: Vec<Vec<u8>> = messages[..200].to_vec();
    assert_eq!(carol.append_many("INBOX", &few).len(), 200);
    assert_eq!(carol.select("INBOX"), 200);
    carol.logout();
    let files = std::fs::read_dir(md.mail_dir("carol").join("cur"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        files,
        200,
        "maildir files in {}",
        md.mail_dir("carol").display()
    );
    let md_dir = md.dir.clone();
    drop(md);
    assert!(!md_dir.exists());
    let t_maildir = t.elapsed();

    println!(
        "dovecot harness ({}): start {:?} (start.sh {:?}), append {N} {:?}, \
         fetch {N} Message-IDs {:?}, LMTP delivery {:?}, restart {:?}, stop {:?}; \
         maildir start + append 200 + stop {:?}",
        dc.mail_format.name(),
        t_start,
        t_start_sh,
        t_append,
        t_fetch_ids,
        t_lmtp,
        t_restart,
        t_stop,
        t_maildir
    );
}
