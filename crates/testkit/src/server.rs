//! What the Dovecot and Cyrus harnesses share: finding server programs,
//! fresh short directories, free loopback ports, running a harness's
//! `start.sh`/`stop.sh`, and the "skip or fail" rule for a missing server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    let listeners: Vec<std::net::TcpListener> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    let p = |i: usize| listeners[i].local_addr().expect("local addr").port();
    [p(0), p(1), p(2), p(3), p(4)]
}

/// The last `n` lines of a (log) file; empty when it cannot be read.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether the environment variable `name` asks for the server (set, not
/// empty, not `0`): then a missing server fails the test instead of
/// skipping it (a skipped test proves nothing).
pub fn required(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Run `bash SCRIPT DIR` (a harness's `start.sh`) with `env` set; returns
/// every `KEY=VALUE` line it printed and its wall time. On failure the
/// error holds its stderr and, when given, the last 30 lines of `log`.
pub fn run_start(
    script: &Path,
    dir: &Path,
    env: &[(&str, String)],
    log: Option<&Path>,
) -> Result<(HashMap<String, String>, Duration), String> {
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(dir).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        let mut err = format!(
            "start.sh {} failed ({}):\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
        );
        if let Some(log) = log {
            let name = log.strip_prefix(dir).unwrap_or(log);
            err.push_str(&format!("\n--- {} ---\n{}", name.display(), tail(log, 30)));
        }
        return Err(err);
    }
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((env, elapsed))
}

/// Run `bash SCRIPT DIR ARGS...` (a harness's `stop.sh`, e.g. with
/// `--kill --rm`).
pub fn run_stop(script: &Path, dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
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

/// A `KEY=VALUE` line a start.sh printed, as text or number; panics naming
/// the key when it is missing or not a number.
pub(crate) fn env_str(env: &HashMap<String, String>, key: &str) -> String {
    env.get(key)
        .cloned()
        .unwrap_or_else(|| panic!("start.sh printed no {key}: {env:?}"))
}

pub(crate) fn env_num(env: &HashMap<String, String>, key: &str) -> u32 {
    let v = env_str(env, key);
    v.parse()
        .unwrap_or_else(|_| panic!("start.sh: bad {key}={v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_dirs_are_short_and_distinct_and_ports_free() {
        let (a, b) = (fresh_dir(), fresh_dir());
        assert_ne!(a, b);
        // room for Dovecot's and Cyrus's socket names under the 108-byte cap
        assert!(a.as_os_str().len() < 40, "{}", a.display());
        std::fs::remove_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
        let ports = free_ports();
        for (i, p) in ports.iter().enumerate() {
            assert!(*p > 0 && !ports[..i].contains(p), "{ports:?}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = fresh_dir();
        let f = dir.join("log");
        std::fs::write(&f, "1\n2\n3\n").unwrap();
        assert_eq!(tail(&f, 2), "2\n3");
        assert_eq!(tail(&f, 9), "1\n2\n3");
        assert_eq!(tail(&dir.join("none"), 2), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
