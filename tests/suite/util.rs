//! Shared helpers: locating the corpora and reading their expectations.

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The golden corpora: every `.eml` under these has an expected `.json`.
pub fn corpora() -> Vec<PathBuf> {
    let mut v = vec![root().join("tests/corpus/sisimai")];
    let extra = root().join("tests/fixtures/extra");
    if extra.join("labels.tsv").exists() {
        v.push(extra);
    }
    v
}

#[derive(Debug, Deserialize, Clone)]
pub struct Expected {
    pub verdict: String,
    pub kind: Option<String>,
    pub original_message_id: Option<String>,
}

pub struct Case {
    pub eml: PathBuf,
    pub expected: Expected,
    /// The whole expectation file, for the fields only the golden test
    /// reads (`recipients`, `action`, `status`).
    #[allow(dead_code)] // not every including crate reads it
    pub json: serde_json::Value,
}

/// Every (.eml, .json) pair under `dir`, sorted.
pub fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk corpus");
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("eml") {
            let j = p.with_extension("json");
            let text = std::fs::read_to_string(&j)
                .unwrap_or_else(|_| panic!("{} has no expected {}", p.display(), j.display()));
            let expected: Expected =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", j.display()));
            let json = serde_json::from_str(&text).unwrap_or_default();
            out.push(Case {
                eml: p.to_path_buf(),
                expected,
                json,
            });
        }
    }
    out
}

/// Path relative to the repository root, with `/` separators.
pub fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// A plaintext loopback account on a test server (tests and benchmarks).
pub fn loopback_account(
    user: &str,
    imap_port: u16,
    sieve_port: u16,
) -> backscatter::config::Account {
    use backscatter::config::{Endpoint, TlsMode};
    backscatter::config::Account {
        name: "test".into(),
        default: true,
        imap: Endpoint {
            host: "127.0.0.1".into(),
            port: imap_port,
            tls: TlsMode::Plain,
            ca_file: None,
        },
        sieve: Endpoint {
            host: "127.0.0.1".into(),
            port: sieve_port,
            tls: TlsMode::Plain,
            ca_file: None,
        },
        username: user.into(),
        addresses: vec![format!("{user}@example.test")],
        secret: None,
        auth: backscatter::config::AuthMechanism::Password,
        quarantine: "Backscatter".into(),
        sent: None,
        sent_days: 30,
        watch: vec!["INBOX".into()],
        catch_up_days: 2,
        outbound_hosts: Vec::new(),
        rules: None,
        compress: backscatter::config::Compression::Auto,
        keep: Vec::new(),
    }
}

/// `backscatter ARGS` as a user whose config file is `cfg` and whose data,
/// state, config and home directories are under `dir`: nothing touches the
/// real ones. Add the password variables and stdio as needed.
pub fn backscatter(dir: &Path, cfg: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_backscatter"));
    c.args(args)
        .env("BACKSCATTER_CONFIG", cfg)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir)
        .env("NO_COLOR", "1");
    c
}

/// A number from the environment (benchmark knobs such as `N=500`), or the
/// default when it is unset or not a number.
#[allow(dead_code)] // not every including crate uses it
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `/work/shared/tools/wanproxy.py` (or `$WANPROXY`), a home link (RTT_MS,
/// default 40; MBIT each way, default 20) in front of loopback port
/// `target`, for the benchmarks. Returns it and the port it listens on;
/// stop it with [`stop`].
#[allow(dead_code)] // benchmarks only
#[allow(clippy::zombie_processes)] // the caller reaps it with `stop`
pub fn wanproxy(dir: &Path, target: u16) -> (std::process::Child, u16) {
    use std::time::{Duration, Instant};
    let script = std::env::var("WANPROXY").unwrap_or("/work/shared/tools/wanproxy.py".into());
    let port_file = dir.join(format!("wanproxy-{target}.port"));
    let _ = std::fs::remove_file(&port_file);
    // Debian's python3 when present: a pyenv shim costs ~250 ms a call.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || Path::new(p).exists())
        .unwrap_or("python3");
    let mut child = std::process::Command::new(python)
        .arg(&script)
        .args(["--target-port", &target.to_string()])
        .args(["--rtt-ms", &env_num("RTT_MS", 40.0f64).to_string()])
        .args(["--mbit", &env_num("MBIT", 20.0f64).to_string()])
        .arg("--port-file")
        .arg(&port_file)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
    let start = Instant::now();
    loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return (child, p);
        }
        if start.elapsed() > Duration::from_secs(10) {
            stop(&mut child);
            panic!("wanproxy did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stop a child process the way a user would (SIGTERM) and reap it.
#[allow(dead_code)] // benchmarks only
pub fn stop(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The `Date:` of a response's original, as Unix seconds.
#[allow(dead_code)] // not every including crate uses it
pub fn original_date(o: &backscatter::Original) -> Option<i64> {
    o.date
        .as_deref()
        .and_then(mail_parser::DateTime::parse_rfc3339)
        .map(|d| d.to_timestamp())
}

/// The original's subject as provenance compares it (empty: none).
#[allow(dead_code)] // not every including crate uses it
pub fn original_subject(o: &backscatter::Original) -> Option<String> {
    o.subject
        .as_deref()
        .map(backscatter::sent::normalize_subject)
        .filter(|s| !s.is_empty())
}

/// Sisimai anonymised its samples: distinct messages share recipient,
/// subject ("nyaan") and date. A forged response whose original agrees
/// with one of `sent` on all three cannot be told from the user's own
/// bounce by anything but its Message-ID, which a provider may rewrite:
/// the provenance tests leave such twins out (and count them).
#[allow(dead_code)] // not every including crate uses it
pub fn twin_of_a_sent_original<'a>(
    o: &backscatter::Original,
    mut sent: impl Iterator<Item = &'a backscatter::Original>,
) -> bool {
    sent.any(|s| {
        original_subject(o).is_some()
            && original_subject(o) == original_subject(s)
            && o.recipients.iter().any(|r| s.recipients.contains(r))
            && match (original_date(o), original_date(s)) {
                (Some(a), Some(b)) => (a - b).abs() <= 86_400,
                _ => true,
            }
    })
}
