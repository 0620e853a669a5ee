//! The agent, measured: latency from APPEND to moved for forged responses
//! arriving one by one, and the agent's CPU and memory while it idles.
//! Prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench watch` (needs dovecot; N=… messages, IDLE_SECS=…).
//! `LINK=wan` puts the agent behind `/work/shared/tools/wanproxy.py` (a
//! home link: RTT_MS=40, MBIT=20) on the IMAPS port, with COMPRESS=auto,
//! always or never; the APPENDs and the polling stay on loopback, as mail
//! arrives at the server, not through the user's link.

#[path = "../tests/suite/flood.rs"]
#[allow(dead_code)]
mod flood;
#[path = "../tests/suite/harness.rs"]
mod harness;
#[path = "../tests/suite/util.rs"]
#[allow(dead_code)]
mod util;

use backscatter::Decision;
use flood::id_of;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn proc_cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if !harness::Dovecot::available() {
        eprintln!("dovecot is not installed: skipping");
        return;
    }
    let n: usize = util::env_num("N", 40);
    let idle_secs: u64 = util::env_num("IDLE_SECS", 120);
    let f = flood::flood(2000);
    let forged: Vec<Vec<u8>> = f
        .inbox
        .iter()
        .filter(|m| {
            let id = id_of(m);
            f.expected[&id] == Decision::Backscatter
        })
        .take(n)
        .cloned()
        .collect();
    let dc = harness::Dovecot::start();
    dc.imap("alice").append_many("Sent", &f.sent);
    let dir = std::env::temp_dir().join(format!("bs-watch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.toml");
    let link = std::env::var("LINK").unwrap_or("loopback".into());
    let compress = std::env::var("COMPRESS").unwrap_or("auto".into());
    let mut proxy = None;
    let account = match link.as_str() {
        "loopback" => format!("port = {}\ntls = \"plain\"\n", dc.imap_port),
        "wan" => {
            let (c, port) = util::wanproxy(&dir, dc.imaps_port);
            proxy = Some(c);
            format!(
                "port = {port}\ntls = \"implicit\"\ntls-ca-file = \"{}\"\n",
                dc.ca_file.display()
            )
        }
        other => panic!("LINK: unknown link {other:?} (loopback, wan)"),
    };
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\n{account}username = \"alice\"\npassword.env = \"PW\"\ncompress = \"{compress}\"\n"
        ),
    )
    .unwrap();
    println!("link: {link}, compress = \"{compress}\"");
    let mut child = util::backscatter(&dir, &cfg, &["watch"])
        .env("PW", "alicepw")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }
    let t = Instant::now();
    while !log.lock().unwrap().contains("connected to") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "watch did not connect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut writer = dc.imap("alice");
    let mut reader = dc.imap("alice");
    reader.create("Backscatter");
    let mut lat = Vec::new();
    for m in &forged {
        let id = id_of(m);
        let start = Instant::now();
        writer.append("INBOX", m);
        loop {
            reader.command("SELECT Backscatter").unwrap();
            let r = reader
                .command(&format!(
                    "UID SEARCH HEADER Message-ID \"{}\"",
                    id.trim_matches(['<', '>'])
                ))
                .unwrap();
            let found = r
                .untagged
                .iter()
                .any(|u| u.kind == "SEARCH" && !u.text().trim().is_empty());
            if found {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "not moved: {id}");
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(start.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "APPEND -> moved, {} forged responses one at a time: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (Dovecot pushes EXISTS ~500 ms after an APPEND)",
        lat.len(),
        p(0.5),
        p(0.95),
        lat[lat.len() - 1]
    );
    let pid = child.id();
    let cpu0 = proc_cpu_secs(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let cpu = proc_cpu_secs(pid) - cpu0;
    println!(
        "idle for {:.0} s: {:.3} s CPU ({:.3} %), RSS {:.1} MB (peak {:.1} MB)",
        t0.elapsed().as_secs_f64(),
        cpu,
        100.0 * cpu / t0.elapsed().as_secs_f64(),
        proc_status(pid, "VmRSS:") as f64 / 1024.0,
        proc_status(pid, "VmHWM:") as f64 / 1024.0
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    if let Some(p) = proxy.as_mut() {
        util::stop(p);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
