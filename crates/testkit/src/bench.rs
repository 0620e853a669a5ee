//! Benchmark knobs read from the environment, the WAN emulator
//! (`wanproxy.py`) the benchmarks put in front of a server, and a counting
//! relay that measures any client's traffic the same way.

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

/// What a [`Relay`] saw: bytes each way (TLS records included) and the
/// client's turns (a burst from the client after data from the server: a
/// round trip, give or take the TLS handshake's).
#[derive(Debug, Default)]
pub struct Traffic {
    pub to_server: u64,
    pub to_client: u64,
    pub turns: u64,
    client_spoke_last: bool,
}

/// A counting TCP relay on loopback in front of `target`, so that every
/// client's traffic is measured the same way, TLS and all (every
/// connection through it adds to one [`Traffic`]).
pub struct Relay {
    pub port: u16,
    traffic: std::sync::Arc<std::sync::Mutex<Traffic>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let t = traffic.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                for (mut from, mut to, upstream) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        true,
                    ),
                    (server, client, false),
                ] {
                    let t = t.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            {
                                let mut t = t.lock().unwrap();
                                if upstream {
                                    t.to_server += n as u64;
                                    if !t.client_spoke_last {
                                        t.turns += 1;
                                    }
                                } else {
                                    t.to_client += n as u64;
                                }
                                t.client_spoke_last = upstream;
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, traffic }
    }

    /// What it saw since the last call.
    pub fn take(&self) -> Traffic {
        std::mem::take(&mut *self.traffic.lock().unwrap())
    }
}
