//! Dovecot delivery time per message with the generated Sieve script and
//! without it, over LMTP (null sender for bounces), for BENCHMARKS.md.
//!
//! `cargo bench --bench sieve` (needs dovecot; N=… messages, IDS=… sent IDs).

#[path = "../tests/suite/flood.rs"]
#[allow(dead_code)]
mod flood;
#[path = "../tests/suite/harness.rs"]
mod harness;
#[path = "../tests/suite/util.rs"]
#[allow(dead_code)]
mod util;

use std::time::Instant;

fn main() {
    if !harness::Dovecot::available() {
        eprintln!("dovecot is not installed: skipping");
        return;
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let nids: usize = std::env::var("IDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let f = flood::flood(n);
    let dc = harness::Dovecot::start();
    dc.imap("alice").create("Backscatter");
    let mut a = util::loopback_account("alice", dc.imap_port, dc.sieve_port);
    a.name = "bench".into();
    let pw = backscatter::secret::Secret::new("alicepw".into());
    let ids: Vec<String> = (0..nids)
        .map(|i| format!("{i}.bench@mail.example.org"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deliver = |label: &str| {
        let start = Instant::now();
        for m in &f.inbox {
            let rp = mail_parser::MessageParser::default()
                .parse_headers(m)
                .and_then(|h| h.header_raw("Return-Path").map(|v| v.trim().to_string()));
            let from = match rp.as_deref() {
                Some("<>") | Some("") => String::new(),
                _ => "sender@example.net".to_string(),
            };
            harness::lmtp_deliver(dc.lmtp_port, &from, "alice@example.test", m).unwrap();
        }
        let per = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!("{label}: {n} LMTP deliveries, {per:.2} ms per message");
        per
    };
    let without = deliver("no script");
    let size = rt.block_on(async {
        let mut s = backscatter::managesieve::Session::connect(&a, &pw)
            .await
            .unwrap();
        let script = backscatter::managesieve::upload_script(&mut s, &a, &ids, &[])
            .await
            .unwrap();
        s.set_active("backscatter").await.unwrap();
        s.logout().await;
        script.text.len()
    });
    let with = deliver(&format!("with the script ({nids} IDs, {size} bytes)"));
    let q = dc.imap("alice").select("Backscatter");
    println!(
        "script cost: {:+.2} ms per message ({:.1}x); {q} of the second {n} filed into Backscatter",
        with - without,
        with / without
    );
}
