//! The user's own rules over the flood, measured (issue 16): the engine
//! alone (`rules::Rules::run` in memory, then with the classification
//! that gives the script its verdict, as `filter` does), `backscatter
//! filter` against a loopback Dovecot, and Pigeonhole's own `sieve-filter`
//! running the same file over an identical mailbox. Wall time, CPU and
//! peak RSS (`/usr/bin/time`) for the two processes; where the mail landed
//! in each, mailbox by mailbox.
//!
//! `cargo bench --bench rules` (needs dovecot, dovecot-sieve and `time`).
//! Knobs: FLOOD=N messages (10000), RULES=path of the script
//! (benches/rules.sieve, hand-written), SHOW_STDERR=1.

use backscatter::rules::{Envelope, Plan, Rules, VerdictEnv};
use backscatter_testkit::bench::{env_num, timed};
use backscatter_testkit::dovecot::{password, Dovecot};
use backscatter_testkit::flood::Flood;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Peak RSS of this process so far (KiB), from /proc.
fn own_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Messages per mailbox of a user (LIST, then STATUS MESSAGES).
fn counts(dc: &Dovecot, user: &str) -> BTreeMap<String, u32> {
    let mut imap = dc.imap(user);
    let mut out = BTreeMap::new();
    let reply = imap.command("LIST \"\" \"*\"").unwrap();
    // `(\HasNoChildren) "/" "Lists/foo"` or `... INBOX`: the last word,
    // unquoted (the flood's names are plain ASCII).
    let names: Vec<String> = reply
        .untagged
        .iter()
        .filter(|r| r.kind == "LIST")
        .map(|r| {
            let rest = String::from_utf8_lossy(&r.rest).trim().to_string();
            match rest.strip_suffix('"') {
                Some(q) => q.rsplit_once('"').map_or(q, |x| x.1).to_string(),
                None => rest.rsplit(' ').next().unwrap_or("").to_string(),
            }
        })
        .collect();
    for name in names {
        // A parent such as "Lists" may be \Noselect.
        let Ok(reply) = imap.command(&format!("EXAMINE \"{name}\"")) else {
            continue;
        };
        let n = reply
            .untagged
            .iter()
            .find(|r| r.kind == "EXISTS")
            .and_then(|r| r.number)
            .unwrap_or(0);
        if n > 0 {
            out.insert(name, n);
        }
    }
    out
}

fn main() {
    if !Dovecot::available() || !Path::new("/usr/bin/sieve-filter").exists() {
        eprintln!("dovecot or sieve-filter is not installed: skipping");
        return;
    }
    let n: usize = env_num("FLOOD", 10_000);
    let rules_path: PathBuf = std::env::var_os("RULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/rules.sieve"));
    let text = std::fs::read_to_string(&rules_path).unwrap();
    let rules = Rules::compile(&text, |_| Ok(None)).unwrap_or_else(|e| panic!("{e}"));
    let f = Flood::build(n);
    let bytes: usize = f.inbox.iter().map(Vec::len).sum();
    println!(
        "flood: {n} messages, {:.1} MB; {} in Sent; rules: {}",
        bytes as f64 / 1e6,
        f.sent.len(),
        rules_path.display()
    );
    println!(
        "load before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // The engine alone: the rules on each message in memory.
    let rss0 = own_peak_kib();
    let t = Instant::now();
    let mut moved = 0;
    for m in &f.inbox {
        let o = rules.run(m, &Envelope::of(m), None, "INBOX", &|_| true);
        moved += usize::from(Plan::of(&o).move_to.is_some());
    }
    let engine = t.elapsed().as_secs_f64();
    println!(
        "engine alone: {n} messages in {engine:.2} s ({:.0} µs a message), {moved} would move; peak RSS of the bench {:.1} MB (the flood in memory: {:.1} MB)",
        engine * 1e6 / n as f64,
        own_peak_kib() as f64 / 1024.0,
        bytes as f64 / 1024.0 / 1024.0
    );
    let _ = rss0;
    // With the classification that gives the script its verdict.
    let mut index = backscatter::SentIndex::new();
    for s in &f.sent {
        if let Some(m) = backscatter::SentMessage::from_raw(s) {
            index.insert(&m);
        }
    }
    let ctx = backscatter::Context {
        sent: &index,
        own_addresses: &[],
    };
    let t = Instant::now();
    for m in &f.inbox {
        let v = VerdictEnv::of(&backscatter::classify(m, &ctx));
        std::hint::black_box(rules.run(m, &Envelope::of(m), Some(&v), "INBOX", &|_| true));
    }
    let both = t.elapsed().as_secs_f64();
    println!(
        "engine with the verdict (classify + rules): {both:.2} s ({:.0} µs a message)",
        both * 1e6 / n as f64
    );

    // The same mailbox twice on a loopback Dovecot.
    let dc = Dovecot::start();
    let t = Instant::now();
    for user in ["alice", "bob"] {
        let mut imap = dc.imap(user);
        imap.append_many("Sent", &f.sent);
        imap.append_many("INBOX", &f.inbox);
    }
    println!(
        "two mailboxes appended in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("bs-rules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // backscatter filter on alice.
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"BENCH_PASSWORD\"\nrules = \"{}\"\n",
            dc.imap_port,
            rules_path.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backscatter"));
    cmd.args(["filter", "--json"])
        .env("BACKSCATTER_CONFIG", &cfg)
        .env("BENCH_PASSWORD", password("alice"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("NO_COLOR", "1");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (wall, cpu, rss, out) = timed(&mut cmd);
    println!(
        "backscatter filter: wall {wall:.1} s, CPU {cpu:.1} s, peak RSS {:.1} MB (load at start: {})\n  {}",
        rss as f64 / 1024.0,
        load.trim(),
        out.trim()
    );

    // Pigeonhole's sieve-filter on bob: the same file, executed (-e),
    // allowed to change the source mailbox (-W).
    let script = dir.join("rules.sieve");
    std::fs::write(&script, &text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut cmd = Command::new("/usr/bin/sieve-filter");
    cmd.arg("-c")
        .arg(dc.dir.join("dovecot.conf"))
        .args(["-u", "bob", "-e", "-W"])
        .arg(&script)
        .arg("INBOX");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (wall, cpu, rss, _) = timed(&mut cmd);
    println!(
        "Pigeonhole sieve-filter: wall {wall:.1} s, CPU {cpu:.1} s, peak RSS {:.1} MB (load at start: {})",
        rss as f64 / 1024.0,
        load.trim()
    );

    let (a, b) = (counts(&dc, "alice"), counts(&dc, "bob"));
    println!("messages per mailbox (backscatter filter | sieve-filter):");
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        println!(
            "  {name:<28} {:>6} | {:>6}",
            a.get(name).copied().unwrap_or(0),
            b.get(name).copied().unwrap_or(0)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
