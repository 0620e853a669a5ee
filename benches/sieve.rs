//! Dovecot delivery time per message with the generated Sieve script and
//! without it, over LMTP (null sender for bounces), for BENCHMARKS.md.
//!
//! `cargo bench --bench sieve` (needs dovecot; N=… messages, IDS=… sent IDs,
//! SCAN=… of them searched in bodies).

use backscatter_testkit::bench::env_num;
use backscatter_testkit::dovecot::Dovecot;
use backscatter_testkit::flood::Flood;
use backscatter_testkit::lmtp::lmtp_deliver;
use std::path::Path;
use std::time::Instant;

fn main() {
    if !Dovecot::available() {
        eprintln!("dovecot is not installed: skipping");
        return;
    }
    let n: usize = env_num("N", 500);
    let nids: usize = env_num("IDS", 5000);
    // How many of the newest IDs are searched in bodies (by default those
    // of the last 7 days; here all unless SCAN=… says otherwise).
    let scan: usize = env_num("SCAN", nids);
    let f = Flood::build(n);
    let dc = Dovecot::start();
    dc.imap("alice").create("Backscatter");
    let config = format!(
        "[accounts.bench]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\n\
         [accounts.bench.sieve]\nport = {}\n",
        dc.imap_port, dc.sieve_port
    );
    let a = backscatter::config::parse(&config, Path::new("bench.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .accounts
        .remove(0);
    let pw = backscatter::secret::Secret::new("alicepw".into());
    // The flood's real originals first (so its legitimate bounces pass the
    // prefilter and pay the full scan), then made-up IDs of one domain.
    let mut ids: Vec<String> = f
        .sent
        .iter()
        .filter_map(|s| backscatter::SentMessage::from_raw(s))
        .filter_map(|s| s.message_id.map(|m| m.to_string()))
        .take(nids)
        .collect();
    let real = ids.len();
    ids.extend((real..nids).map(|i| format!("{i}.bench@mail.example.org")));
    println!(
        "{real} real sent IDs and {} made-up ones; prefilter strings: {:?}",
        nids - real,
        backscatter::sieve::prefilter(
            &ids.iter()
                .map(|i| backscatter::sieve::id_pattern(i))
                .collect::<Vec<_>>()
        )
        .map(|p| p.len())
    );
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
            lmtp_deliver(dc.lmtp_port, &from, "alice@example.test", m).unwrap();
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
        let lists = backscatter::sieve::SentLists {
            scan_ids: scan.min(ids.len()),
            ids: ids.clone(),
            recipients: Vec::new(),
        };
        let script = backscatter::managesieve::upload_script(&mut s, &a, &lists)
            .await
            .unwrap()
            .script;
        s.set_active("backscatter").await.unwrap();
        s.logout().await;
        script.text.len()
    });
    let with = deliver(&format!(
        "with the script ({nids} IDs, {} searched in bodies, {size} bytes)",
        scan.min(nids)
    ));
    let q = dc.imap("alice").select("Backscatter");
    println!(
        "script cost: {:+.2} ms per message ({:.1}x); {q} of the second {n} filed into Backscatter",
        with - without,
        with / without
    );
}
