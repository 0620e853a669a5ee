//! Classifier throughput and memory, as figures (not a timed assertion).
//!
//! `cargo bench --bench classify` classifies every message of the golden
//! corpora repeatedly on one thread and prints messages/s, MB/s, the time per
//! message, and the process's peak RSS. Figures go to BENCHMARKS.md.

use backscatter::{classify, Context, SentIndex};
use std::path::Path;
use std::time::{Duration, Instant};

fn load(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            load(&p, out);
        } else if p.extension().and_then(|e| e.to_str()) == Some("eml") {
            out.push(std::fs::read(&p).unwrap());
        }
    }
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    backscatter::lexicon::prefer_speed();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut msgs = Vec::new();
    load(&root.join("tests/corpus"), &mut msgs);
    load(&root.join("tests/fixtures/extra"), &mut msgs);
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    // A sent index of realistic size: 5,000 IDs.
    let mut sent = SentIndex::new();
    for i in 0..5000 {
        sent.insert_id(&format!("<{i}.bench@example.org>"));
    }
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let rss_before = peak_rss_kib();
    // Warm up (lexicon compilation, caches).
    let mut automated = 0;
    for m in &msgs {
        if classify(m, &ctx).kind.is_some() {
            automated += 1;
        }
    }
    let budget = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    let start = Instant::now();
    let mut n = 0usize;
    let mut rounds = 0usize;
    while start.elapsed() < budget {
        for m in &msgs {
            std::hint::black_box(classify(std::hint::black_box(m), &ctx));
        }
        n += msgs.len();
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "corpus: {} messages, {:.1} MB ({:.1} KB average), {} automated",
        msgs.len(),
        bytes as f64 / 1e6,
        bytes as f64 / msgs.len() as f64 / 1e3,
        automated
    );
    println!(
        "classify (1 thread, {rounds} rounds, {secs:.1} s): {:.0} messages/s, {:.1} MB/s, {:.1} µs/message",
        n as f64 / secs,
        (bytes * rounds) as f64 / secs / 1e6,
        secs * 1e6 / n as f64
    );
    if let (Some(b), Some(a)) = (rss_before, peak_rss_kib()) {
        println!(
            "peak RSS: {:.1} MB (corpus loaded: {:.1} MB before classifying)",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
}
