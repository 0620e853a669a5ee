//! The agent, measured: latency from APPEND to moved for forged responses
//! arriving one by one, and the agent's CPU and memory while it idles.
//! Prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench watch` (needs dovecot; N=… messages, IDLE_SECS=…).
//! `LINK=wan` puts the agent behind `/work/shared/tools/wanproxy.py` (a
//! home link: RTT_MS=40, MBIT=20) on the IMAPS port, with COMPRESS=auto,
//! always or never; the APPENDs and the polling stay on loopback, as mail
//! arrives at the server, not through the user's link.
//!
//! Round trips per arrival, two ways: the client's turns on the agent's
//! connection as a counting relay in front of the server sees them (any
//! build), and the agent's own count from its debug log (`new mail
//! handled: ... N round trips`). `BACKSCATTER_BIN=path` measures another
//! build of the binary (e.g. the one before a change) with the same bench.

use backscatter::{classify, Context, Decision, SentIndex, SentMessage};
use backscatter_testkit::bench::{env_num, wanproxy, Relay};
use backscatter_testkit::cli::{isolated, stop};
use backscatter_testkit::dovecot::Dovecot;
use backscatter_testkit::flood::{id_of, Flood};
use backscatter_testkit::watchlog::WatchLog;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The kit's flood, each message expected to get the classifier's decision
/// on the whole message against an index of the flood's Sent folder.
fn flood(n: usize) -> Flood<Decision> {
    let f = Flood::build(n);
    let mut index = SentIndex::new();
    for s in &f.sent {
        index.insert(&SentMessage::from_raw(s).unwrap());
    }
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    f.judged(|m| classify(m, &ctx).verdict)
}

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
    if !Dovecot::available() {
        eprintln!("dovecot is not installed: skipping");
        return;
    }
    let n: usize = env_num("N", 40);
    let idle_secs: u64 = env_num("IDLE_SECS", 120);
    let f = flood(2000);
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
    let dc = Dovecot::start();
    dc.imap("alice").append_many("Sent", &f.sent);
    let dir = std::env::temp_dir().join(format!("bs-watch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.toml");
    let link = std::env::var("LINK").unwrap_or("loopback".into());
    let compress = std::env::var("COMPRESS").unwrap_or("auto".into());
    let mut proxy = None;
    let relay;
    let account = match link.as_str() {
        "loopback" => {
            relay = Relay::start(dc.imap_port);
            format!("port = {}\ntls = \"plain\"\n", relay.port)
        }
        "wan" => {
            relay = Relay::start(dc.imaps_port);
            let (c, port) = wanproxy(&dir, relay.port);
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
    let bin = std::env::var("BACKSCATTER_BIN").unwrap_or(env!("CARGO_BIN_EXE_backscatter").into());
    println!("binary: {bin}");
    let mut child = isolated(&bin, &dir, &cfg, &["watch", "-v"])
        .env("PW", "alicepw")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = WatchLog::capture(&mut child);
    log.wait_for_text("watch to connect", Duration::from_secs(20), "connected to");
    std::thread::sleep(Duration::from_millis(500));
    let mut writer = dc.imap("alice");
    let mut reader = dc.imap("alice");
    reader.create("Backscatter");
    let mut lat = Vec::new();
    let mut turns = Vec::new();
    let mut counted = Vec::new();
    relay.take();
    let mut seen = log.text().len();
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
        turns.push(relay.take().turns);
        let text = log.text();
        let rts: Vec<u64> = text[seen..]
            .lines()
            .filter(|l| l.contains("new mail handled"))
            .filter_map(|l| {
                let (head, _) = l.split_once(" round trips")?;
                head.rsplit(' ').next()?.parse().ok()
            })
            .collect();
        seen = text.len();
        if !rts.is_empty() {
            counted.push(rts.iter().sum::<u64>());
        }
    }
    turns.sort_unstable();
    counted.sort_unstable();
    println!(
        "round trips per arrival: client turns on the connection (relay) median {} (min {}, max {}); the agent's count median {}",
        turns[turns.len() / 2],
        turns[0],
        turns[turns.len() - 1],
        counted
            .get(counted.len() / 2)
            .map_or("not logged (an older build)".to_string(), |c| c.to_string())
    );
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
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
        stop(p);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
