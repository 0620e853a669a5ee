//! The flood sweep, measured: a 10,000-message flood of real automated
//! responses and ordinary mail on a loopback Dovecot, swept by
//! `backscatter clean` (full classification) and, on an identical mailbox in
//! the same run, by imapfilter with a header-only rule (`Return-Path: <>` or
//! From MAILER-DAEMON). Prints wall time, bytes fetched against the
//! mailbox size, and peak RSS, for BENCHMARKS.md.
//!
//! `cargo bench --bench sweep` (needs dovecot and imapfilter installed;
//! FLOOD=N changes the size, ROUNDS=N the repetitions).

#[path = "../tests/suite/flood.rs"]
mod flood;
#[path = "../tests/suite/harness.rs"]
mod harness;
#[path = "../tests/suite/util.rs"]
#[allow(dead_code)]
mod util;

use backscatter::Decision;
use std::process::Command;
use std::time::Instant;

/// Wall seconds and peak RSS (KiB) of a command, via /usr/bin/time.
fn timed(cmd: &mut Command) -> (f64, u64, f64, String) {
    let t = std::env::temp_dir().join(format!("bs-time-{}", std::process::id()));
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
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
        "{:?} failed: {}",
        cmd.get_program(),
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
        rss,
        cpu,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const LUA: &str = r#"
options.timeout = 120
options.starttls = false
options.create = true
local acc = IMAP {
  server = '127.0.0.1',
  port = tonumber(os.getenv('BENCH_PORT')),
  username = 'bob',
  password = 'bobpw',
}
local res = acc.INBOX:contain_field('Return-Path', '<>') + acc.INBOX:contain_from('MAILER-DAEMON')
res:move_messages(acc['Quarantine'])
"#;

fn main() {
    if !harness::Dovecot::available() {
        eprintln!("dovecot is not installed: skipping the sweep benchmark");
        return;
    }
    let n: usize = util::env_num("FLOOD", 10_000);
    let rounds: usize = util::env_num("ROUNDS", 3);
    let f = flood::flood(n);
    let size: usize = f.inbox.iter().map(Vec::len).sum();
    let forged = f
        .expected
        .values()
        .filter(|v| **v == Decision::Backscatter)
        .count();
    println!(
        "flood: {n} messages, {:.1} MB ({:.1} KB average); {} in Sent; {forged} forged by the classifier's whole-message verdict",
        size as f64 / 1e6,
        size as f64 / n as f64 / 1e3,
        f.sent.len()
    );
    let dir = std::env::temp_dir().join(format!("bs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lua = dir.join("backscatter.lua");
    std::fs::write(&lua, LUA).unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        let dc = harness::Dovecot::start();
        for user in ["alice", "bob"] {
            let mut imap = dc.imap(user);
            imap.append_many("Sent", &f.sent);
            imap.append_many("INBOX", &f.inbox);
        }
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"BENCH_PASSWORD\"\n",
                dc.imap_port
            ),
        )
        .unwrap();
        let mut ours_cmd = Command::new(env!("CARGO_BIN_EXE_backscatter"));
        ours_cmd
            .args(["clean", "--json"])
            .env("BACKSCATTER_CONFIG", &cfg)
            .env("BENCH_PASSWORD", "alicepw")
            .env("XDG_DATA_HOME", dir.join(format!("data{round}")))
            .env("XDG_STATE_HOME", dir.join(format!("state{round}")));
        let mut theirs_cmd = Command::new("imapfilter");
        theirs_cmd
            .arg("-c")
            .arg(&lua)
            .env("BENCH_PORT", dc.imap_port.to_string())
            .env("HOME", &dir);
        // Alternate the order so neither always runs on a warmer server.
        let (a, b) = if round % 2 == 0 {
            let a = timed(&mut ours_cmd);
            (a, timed(&mut theirs_cmd))
        } else {
            let b = timed(&mut theirs_cmd);
            (timed(&mut ours_cmd), b)
        };
        let v: serde_json::Value = serde_json::from_str(a.3.trim()).expect("clean --json");
        let moved_by_imapfilter = dc.imap("bob").select("Quarantine");
        println!(
            "round {}: backscatter {:.2} s ({:.2} s CPU), {} quarantined, {} legitimate kept, {} bytes fetched ({:.1}% of the mailbox), peak RSS {:.1} MB | imapfilter {:.2} s ({:.2} s CPU), {} moved, peak RSS {:.1} MB",
            round + 1,
            a.0,
            a.2,
            v["quarantined"],
            v["legitimate"],
            v["bytes_fetched"],
            100.0 * v["bytes_fetched"].as_f64().unwrap() / size as f64,
            a.1 as f64 / 1024.0,
            b.0,
            b.2,
            moved_by_imapfilter,
            b.1 as f64 / 1024.0
        );
        ours.push(a.0);
        theirs.push(b.0);
    }
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    let (m1, m2) = (ours[ours.len() / 2], theirs[theirs.len() / 2]);
    println!(
        "median: backscatter {m1:.2} s, imapfilter {m2:.2} s: ratio {:.2}x",
        m1 / m2
    );
    let _ = std::fs::remove_dir_all(&dir);
}
