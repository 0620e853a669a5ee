//! Benchmark knobs read from the environment, and the WAN emulator
//! (`wanproxy.py`) the benchmarks put in front of a server.

use std::path::Path;

/// A number from the environment (benchmark knobs such as `N=500`), or the
/// default when it is unset or not a number.
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `/work/shared/tools/wanproxy.py` (or `$WANPROXY`), a home link (RTT_MS,
/// default 40; MBIT each way, default 20) in front of loopback port
/// `target`, for the benchmarks. Returns it and the port it listens on;
/// stop it with [`crate::cli::stop`].
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
            crate::cli::stop(&mut child);
            panic!("wanproxy did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wall seconds, CPU seconds, peak RSS (KiB) and stdout of a command, via
/// /usr/bin/time.
pub fn timed(cmd: &mut std::process::Command) -> (f64, f64, u64, String) {
    let t = std::env::temp_dir().join(format!("bs-time-{}", std::process::id()));
    let start = std::time::Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&t)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .expect("run /usr/bin/time (Debian package `time`)");
    let secs = start.elapsed().as_secs_f64();
    if std::env::var_os("SHOW_STDERR").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = std::fs::read_to_string(&t)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (cpu, rss) = match f.as_slice() {
        [u, s, m] => (u + s, *m as u64),
        _ => (0.0, 0),
    };
    (
        secs,
        cpu,
        rss,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
