//! The flood sweep, measured: a flood of real automated responses and
//! ordinary mail on a loopback Dovecot, swept cold by `backscatter clean`
//! (full classification; uncompressed and with `COMPRESS=DEFLATE`) and, on
//! an identical mailbox in the same run, by imapfilter with the usual
//! header-only rule (`Return-Path: <>` or From MAILER-DAEMON). All three
//! use implicit TLS, directly on loopback and through
//! `/work/shared/tools/wanproxy.py` (a home link: 40 ms round trip,
//! 20 Mbit/s each way) in front of the IMAPS port.
//!
//! Prints, per client: wall time, own CPU, peak RSS, Dovecot's CPU for the
//! session (its imap and imap-login processes, read from the master's
//! reaped-children times), the bytes Dovecot says it sent (`out=` of its
//! logout line), and for backscatter its own counters (wire bytes, bytes
//! inflated, round trips). Then the medians and the ratio to imapfilter.
//!
//! With ITEMS=1, first Dovecot's own CPU for one whole-mailbox FETCH of
//! the cold flood per fetch item (and for imapfilter's two SEARCHes), read
//! from /proc for the session's imap process.
//!
//! First (no server needed) the bytes floor: what the sweep's fetch plan
//! reads of the flood, and what a header-first plan (whole headers of every
//! message, the rest only where the headers say it may be automated) would
//! read, raw and deflated, and how long each takes at the link's rate.
//!
//! With LEVER=1 (no server needed), the server-search lever: how many
//! verdicts a plan that reads only headers gets wrong, with and without
//! the server flagging the messages that mention a sent Message-ID or
//! recipient; with ITEMS=1 also what those `SEARCH TEXT`es cost Dovecot.
//!
//! With RERUN=1, `backscatter clean` (uncompressed) runs twice more after
//! its cold sweep, as a user cleaning up after a flood does: at once (with
//! nothing new: the rerun reads only what changed, see `rerun`), and after
//! 100 new arrivals (flood messages with fresh Message-IDs).
//!
//! `cargo bench --bench sweep` (needs dovecot, imapfilter and python3).
//! Knobs: FLOOD=N messages (10000), ROUNDS=N (1), LINKS=loopback,wan
//! (empty: none), ITEMS=1, RTT_MS=40, MBIT=20, WANPROXY=path of
//! wanproxy.py, SHOW_STDERR=1, RERUN=1, CLIENTS=backscatter,imapfilter,...
//! (which clients run; default all three).

use backscatter::{classify, Context, Decision, SentIndex, SentMessage};
use backscatter_testkit::bench::{env_num, timed, wanproxy, Relay, Traffic};
use backscatter_testkit::cli::stop;
use backscatter_testkit::dovecot::{password, Dovecot};
use backscatter_testkit::flood::Flood;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
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

/// What one client run cost.
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    dovecot_cpu: f64,
    /// Bytes Dovecot reports sending (`out=`), if its logout line was seen.
    server_out: Option<u64>,
    /// Messages in the quarantine afterwards.
    moved: u32,
    /// The connection as the relay saw it.
    traffic: Traffic,
    /// `clean --json`, for backscatter.
    json: Option<serde_json::Value>,
}

/// CPU seconds of the processes the Dovecot master has reaped (its imap
/// and imap-login processes once a session ends).
fn reaped_cpu(master: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{master}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // cutime and cstime: fields 16 and 17 of stat, 14 and 15 after the name
    let ticks: f64 = f.get(13).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(14).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Wait until `user`'s session has ended in the server log (from byte
/// `from` on); its `out=` figure, and Dovecot's CPU once the processes
/// are reaped.
fn session_end(dc: &Dovecot, user: &str, from: usize, cpu0: f64) -> (Option<u64>, f64) {
    let start = Instant::now();
    let mut out = None;
    while start.elapsed() < Duration::from_secs(15) {
        let log = std::fs::read(&dc.log_file).unwrap_or_default();
        let log = String::from_utf8_lossy(&log[from.min(log.len())..]).into_owned();
        let ended: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("imap({user})")) && l.contains(" out="))
            .collect();
        if !ended.is_empty() {
            out = Some(
                ended
                    .iter()
                    .filter_map(|l| l.split(" out=").nth(1))
                    .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    .sum(),
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The login process (the TLS proxy) ends just after the imap process.
    let mut last = reaped_cpu(dc.pid);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = reaped_cpu(dc.pid);
        if now == last {
            return (out, now - cpu0);
        }
        last = now;
    }
}

/// CPU seconds of a process so far.
fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The one `imap` process of the Dovecot master `master`.
fn imap_process(master: u32) -> u32 {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((name, rest)) = s.split_once(" (").and_then(|(_, r)| r.rsplit_once(')')) else {
            continue;
        };
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ppid == master && name == "imap" {
            found.push(pid);
        }
    }
    assert_eq!(found.len(), 1, "one imap process under {master}: {found:?}");
    found[0]
}

/// The searches a server-side provenance would ask: one `UID SEARCH` of
/// `TEXT` for any of the sent Message-IDs, and one for any of the sent
/// recipients (an `OR` chain each, RFC 3501 6.4.4).
fn server_searches(f: &Flood<Decision>) -> Vec<(String, String)> {
    let (mut ids, mut rcpts) = (Vec::new(), Vec::new());
    for s in &f.sent {
        let m = SentMessage::from_raw(s).unwrap();
        ids.extend(m.message_id.map(|i| i.as_str().to_string()));
        rcpts.extend(m.recipients);
    }
    rcpts.sort();
    rcpts.dedup();
    let chain = |terms: &[String]| -> String {
        let quoted: Vec<String> = terms
            .iter()
            .filter(|t| !t.contains(['"', '\\']))
            .map(|t| format!("TEXT \"{t}\""))
            .collect();
        let mut out = String::new();
        for _ in 1..quoted.len() {
            out.push_str("OR ");
        }
        out.push_str(&quoted.join(" "));
        format!("UID SEARCH {out}")
    };
    vec![
        (
            format!("SEARCH TEXT, any of {} sent Message-IDs", ids.len()),
            chain(&ids),
        ),
        (
            format!("SEARCH TEXT, any of {} sent recipients", rcpts.len()),
            chain(&rcpts),
        ),
    ]
}

/// Dovecot's CPU for one whole-mailbox FETCH per item, each on a cold
/// cache (server restarted, `dovecot.index.cache` deleted).
fn item_costs(f: &Flood<Decision>) {
    let prefix = backscatter::plan::prefix_items();
    let commands: Vec<(String, String)> = [
        (
            "BODY.PEEK[HEADER]",
            "UID FETCH 1:* (BODY.PEEK[HEADER])".to_string(),
        ),
        (
            "the sweep's first fetch (plan::prefix_items)",
            format!("UID FETCH 1:* ({prefix})"),
        ),
        ("BODYSTRUCTURE", "UID FETCH 1:* (BODYSTRUCTURE)".into()),
        (
            "BODY.PEEK[]<0.8192>",
            "UID FETCH 1:* (BODY.PEEK[]<0.8192>)".into(),
        ),
        (
            "BODY.PEEK[] (whole messages)",
            "UID FETCH 1:* (BODY.PEEK[])".into(),
        ),
        (
            "SEARCH HEADER Return-Path \"<>\"",
            "UID SEARCH HEADER Return-Path \"<>\"".into(),
        ),
        (
            "SEARCH FROM MAILER-DAEMON",
            "UID SEARCH FROM MAILER-DAEMON".into(),
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .chain(server_searches(f))
    .collect();
    let mut dc = Dovecot::start();
    dc.imap("alice").append_many("INBOX", &f.inbox);
    println!(
        "Dovecot CPU per item, one command over all {} messages, cold cache ({prefix} is the sweep's first fetch):",
        f.inbox.len(),
    );
    println!("| item | Dovecot CPU | response |");
    println!("|---|---|---|");
    for (name, command) in commands {
        dc.restart();
        for e in walkdir::WalkDir::new(dc.mail_dir("alice"))
            .into_iter()
            .flatten()
        {
            if e.file_name() == "dovecot.index.cache" {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let mut imap = dc.imap("alice");
        imap.select("INBOX");
        let pid = imap_process(dc.pid);
        let cpu0 = proc_cpu(pid);
        let r = imap.command(&command).unwrap();
        let cpu = proc_cpu(pid) - cpu0;
        let bytes: usize = r.untagged.iter().map(|u| u.rest.len()).sum();
        println!("| `{name}` | {cpu:.2} s | {:.1} MB |", bytes as f64 / 1e6);
        imap.logout();
    }
}

const LUA: &str = r#"
options.timeout = 120
options.certificates = false
options.hostnames = false
options.create = true
local acc = IMAP {
  server = '127.0.0.1',
  port = tonumber(os.getenv('BENCH_PORT')),
  username = 'bob',
  password = 'bobpw',
  ssl = 'auto',
}
local res = acc.INBOX:contain_field('Return-Path', '<>') + acc.INBOX:contain_from('MAILER-DAEMON')
res:move_messages(acc['Quarantine'])
"#;

/// Deflated size of `bytes` (zlib level 6, Dovecot's `imap_zlib` default).
fn deflated(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(bytes).unwrap();
    z.finish().unwrap().len()
}

/// The bytes floor of exact verdicts on this flood: what the fetch plan
/// (`plan::after_prefix`) reads, and what a header-first plan would read
/// (every message's header, then the rest up to `plan::WHOLE` of those whose
/// header `may_be_automated`), raw and deflated, with their time on the
/// link at `mbit` Mbit/s. BODYSTRUCTURE fetches are left out of both.
fn bytes_floor(f: &Flood<Decision>, mbit: f64) {
    use backscatter::plan::{self, Next};
    let (mut ours, mut header_first) = (Vec::new(), Vec::new());
    let (mut automated, mut rest) = (0usize, 0usize);
    for m in &f.inbox {
        let whole = &m[..m.len().min(plan::WHOLE as usize)];
        let prefix = &m[..m.len().min(plan::PREFIX as usize)];
        let end = memchr::memmem::find(m, b"\r\n\r\n")
            .map(|i| i + 4)
            .or_else(|| memchr::memmem::find(m, b"\n\n").map(|i| i + 2))
            .unwrap_or(m.len());
        match plan::after_prefix(prefix, Some(m.len() as u32)) {
            Next::Rest => {
                rest += 1;
                ours.extend_from_slice(whole)
            }
            // The whole header first, then as it decides.
            Next::Header => {
                ours.extend_from_slice(&m[..end]);
                if plan::after_header(&m[..end]) == Next::Rest {
                    rest += 1;
                    ours.extend_from_slice(whole)
                } else {
                    ours.extend_from_slice(prefix)
                }
            }
            _ => ours.extend_from_slice(prefix),
        }
        if backscatter::classify::may_be_automated(&m[..end]) {
            automated += 1;
            header_first.extend_from_slice(whole);
        } else {
            header_first.extend_from_slice(&m[..end]);
        }
    }
    let size: usize = f.inbox.iter().map(Vec::len).sum();
    let all: Vec<u8> = f.inbox.concat();
    println!("bytes floor ({} messages; {automated} may be automated by their header, {rest} longer than the prefix need the rest):", f.inbox.len());
    println!("| what is read | raw | deflated | deflated at {mbit} Mbit/s |");
    println!("|---|---|---|---|");
    for (name, b) in [
        ("the whole mailbox", &all),
        ("the fetch plan (prefix, rest of long candidates)", &ours),
        (
            "header-first (headers, rest of possible automated)",
            &header_first,
        ),
    ] {
        let z = deflated(b);
        println!(
            "| {name} | {:.2} MB ({:.1} %) | {:.2} MB | {:.2} s |",
            b.len() as f64 / 1e6,
            100.0 * b.len() as f64 / size as f64,
            z as f64 / 1e6,
            z as f64 * 8.0 / (mbit * 1e6)
        );
    }
}

/// Lever "let the server search": could a plan that never downloads a
/// body, with the server's `SEARCH TEXT` saying which messages mention one
/// of the user's sent Message-IDs (or sent recipients), reach the
/// whole-message verdicts? Every message's header is classified alone; the
/// messages the server would flag are classified whole (their bytes
/// fetched). Prints how many verdicts each such plan gets wrong against
/// the whole-message verdict, and the bytes it moves. Raw substring
/// matching stands in for Dovecot's `TEXT` search (which also decodes
/// transfer encodings, so it can only flag more).
fn server_search_lever(f: &Flood<Decision>, mbit: f64) {
    use aho_corasick::AhoCorasick;
    let mut index = SentIndex::new();
    let (mut ids, mut rcpts) = (Vec::new(), Vec::new());
    for s in &f.sent {
        let m = SentMessage::from_raw(s).unwrap();
        if let Some(id) = &m.message_id {
            ids.push(id.as_str().to_ascii_lowercase());
        }
        rcpts.extend(m.recipients.iter().map(|r| r.to_ascii_lowercase()));
        index.insert(&m);
    }
    rcpts.sort();
    rcpts.dedup();
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    let ac_ids = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&ids)
        .unwrap();
    let ac_rcpts = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&rcpts)
        .unwrap();
    // plan name -> (wrong verdicts, bytes read)
    let names = [
        "headers only, no server search",
        "headers; whole where a sent Message-ID is mentioned",
        "headers; whole where a sent Message-ID or recipient is mentioned",
    ];
    let mut wrong = [0usize; 3];
    let mut read: [Vec<u8>; 3] = Default::default();
    let mut flagged = [0usize; 3];
    let mut examples: BTreeMap<(usize, &str, &str), usize> = BTreeMap::new();
    for m in &f.inbox {
        let end = memchr::memmem::find(m, b"\r\n\r\n")
            .map(|i| i + 4)
            .or_else(|| memchr::memmem::find(m, b"\n\n").map(|i| i + 2))
            .unwrap_or(m.len());
        let whole = classify(m, &ctx).verdict;
        let header = classify(&m[..end], &ctx).verdict;
        let by_id = ac_ids.is_match(m.as_slice());
        let by_rcpt = ac_rcpts.is_match(m.as_slice());
        for (i, needs_whole) in [false, by_id, by_id || by_rcpt].into_iter().enumerate() {
            let got = if needs_whole {
                flagged[i] += 1;
                read[i].extend_from_slice(m);
                whole
            } else {
                read[i].extend_from_slice(&m[..end]);
                header
            };
            if got != whole {
                wrong[i] += 1;
                *examples
                    .entry((i, whole.as_str(), got.as_str()))
                    .or_default() += 1;
            }
        }
    }
    println!(
        "server-search lever ({} messages, {} sent Message-IDs, {} sent recipients; a header classified alone unless the server would flag the message):",
        f.inbox.len(),
        ids.len(),
        rcpts.len()
    );
    println!("| plan | flagged by the server | verdicts wrong | raw | deflated | deflated at {mbit} Mbit/s |");
    println!("|---|---|---|---|---|---|");
    for i in 0..3 {
        let z = deflated(&read[i]);
        println!(
            "| {} | {} | {} | {:.2} MB | {:.2} MB | {:.2} s |",
            names[i],
            flagged[i],
            wrong[i],
            read[i].len() as f64 / 1e6,
            z as f64 / 1e6,
            z as f64 * 8.0 / (mbit * 1e6)
        );
    }
    for ((i, whole, got), n) in examples {
        println!("  plan {}: {n} whole-message {whole} judged {got}", i + 1);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !Dovecot::available() {
        eprintln!("dovecot is not installed: skipping the sweep benchmark");
        return;
    }
    let n: usize = env_num("FLOOD", 10_000);
    let rounds: usize = env_num("ROUNDS", 1);
    let links: Vec<String> = std::env::var("LINKS")
        .unwrap_or("loopback,wan".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let f = flood(n);
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
    // (link, client) -> runs
    bytes_floor(&f, env_num("MBIT", 20.0f64));
    if std::env::var("LEVER").is_ok_and(|v| v == "1") {
        server_search_lever(&f, env_num("MBIT", 20.0f64));
    }
    if std::env::var("ITEMS").is_ok_and(|v| v == "1") {
        item_costs(&f);
    }
    let mut all: BTreeMap<(String, &str), Vec<Run>> = BTreeMap::new();
    let rerun = std::env::var("RERUN").is_ok_and(|v| v == "1");
    let only: Option<Vec<String>> = std::env::var("CLIENTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    // (link, what) -> (wall, bytes down on the connection, client turns,
    // clean --json)
    let mut reruns: Vec<(String, &str, f64, u64, u64, serde_json::Value)> = Vec::new();
    for link in &links {
        for round in 0..rounds {
            let dc = Dovecot::start();
            let t = Instant::now();
            for (user, client) in [
                ("alice", "backscatter"),
                ("bob", "imapfilter"),
                ("carol", "backscatter+deflate"),
            ] {
                if only
                    .as_ref()
                    .is_some_and(|o| !o.iter().any(|w| w == client))
                {
                    continue;
                }
                let mut imap = dc.imap(user);
                imap.append_many("Sent", &f.sent);
                imap.append_many("INBOX", &f.inbox);
            }
            eprintln!(
                "{link} round {}: three mailboxes appended in {:.1} s",
                round + 1,
                t.elapsed().as_secs_f64()
            );
            let relay = Relay::start(dc.imaps_port);
            let (mut proxy, port) = match link.as_str() {
                "loopback" => (None, relay.port),
                "wan" => {
                    let (c, p) = wanproxy(&dir, relay.port);
                    (Some(c), p)
                }
                other => panic!("LINKS: unknown link {other:?} (loopback, wan)"),
            };
            // backscatter uncompressed on alice, compressed on carol,
            // imapfilter on bob; the order rotates with the round.
            let mut clients = vec![
                ("backscatter", "alice", "never"),
                ("backscatter+deflate", "carol", "always"),
                ("imapfilter", "bob", ""),
            ];
            clients.rotate_left(round % 3);
            clients.retain(|(c, _, _)| only.as_ref().is_none_or(|o| o.iter().any(|w| w == c)));
            for (client, user, compress) in clients {
                let mut cmd = if client == "imapfilter" {
                    let mut c = Command::new("imapfilter");
                    c.arg("-c")
                        .arg(&lua)
                        .env("BENCH_PORT", port.to_string())
                        .env("SSL_CERT_FILE", &dc.ca_file)
                        .env("HOME", &dir);
                    c
                } else {
                    let cfg = dir.join(format!("{link}-{round}-{user}.toml"));
                    std::fs::write(
                        &cfg,
                        format!(
                            "[accounts.{user}]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\ntls-ca-file = \"{}\"\nusername = \"{user}\"\npassword.env = \"BENCH_PASSWORD\"\ncompress = \"{compress}\"\n",
                            dc.ca_file.display()
                        ),
                    )
                    .unwrap();
                    let mut c = Command::new(env!("CARGO_BIN_EXE_backscatter"));
                    let data: PathBuf = dir.join(format!("data-{link}-{round}-{user}"));
                    c.args(["clean", "--json"])
                        .env("BACKSCATTER_CONFIG", &cfg)
                        .env("BENCH_PASSWORD", password(user))
                        .env("XDG_DATA_HOME", data.join("data"))
                        .env("XDG_STATE_HOME", data.join("state"));
                    c
                };
                let log_from = std::fs::metadata(&dc.log_file).map_or(0, |m| m.len() as usize);
                let cpu0 = reaped_cpu(dc.pid);
                relay.take();
                let (wall, cpu, rss, stdout) = timed(&mut cmd);
                let (server_out, dovecot_cpu) = session_end(&dc, user, log_from, cpu0);
                let traffic = relay.take();
                let quarantine = if client == "imapfilter" {
                    "Quarantine"
                } else {
                    "Backscatter"
                };
                let moved = dc.imap(user).select(quarantine);
                let json = (client != "imapfilter")
                    .then(|| serde_json::from_str::<serde_json::Value>(stdout.trim()))
                    .transpose()
                    .expect("clean --json prints JSON");
                let run = Run {
                    wall,
                    cpu,
                    rss_mb: rss as f64 / 1024.0,
                    dovecot_cpu,
                    server_out,
                    moved,
                    traffic,
                    json,
                };
                let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                let load = load.split_whitespace().next().unwrap_or("?").to_string();
                let ours = run.json.as_ref().map_or(String::new(), |v| {
                    format!(
                        "; own counters: {} wire bytes ({:.1}% of the mailbox), {} inflated, {} round trips, {} counted as moved by another client, {} as gone",
                        v["bytes_fetched"],
                        100.0 * v["bytes_fetched"].as_f64().unwrap_or(0.0) / size as f64,
                        v["bytes_inflated"],
                        v["round_trips"],
                        v["already_moved"],
                        v["gone"]
                    )
                });
                println!(
                    "{link} round {}: {client:<20} {:6.2} s wall, {:5.2} s CPU, peak RSS {:5.1} MB, Dovecot CPU {:5.2} s, Dovecot sent {} bytes (out=), on the connection {} bytes down, {} up, {} client turns, {} moved, load {load}{ours}",
                    round + 1,
                    run.wall,
                    run.cpu,
                    run.rss_mb,
                    run.dovecot_cpu,
                    run.server_out.map_or("?".into(), |b| b.to_string()),
                    run.traffic.to_client,
                    run.traffic.to_server,
                    run.traffic.turns,
                    run.moved,
                );
                all.entry((link.clone(), client)).or_default().push(run);
                if rerun && client == "backscatter" {
                    for (what, late) in [("rerun, nothing new", 0), ("rerun after 100 new", 100)] {
                        let new: Vec<Vec<u8>> = (0..late)
                            .map(|i| {
                                backscatter_testkit::flood::with_message_id(
                                    &f.inbox[(i * 97) % f.inbox.len()],
                                    &format!("<late-{i}@test.invalid>"),
                                )
                            })
                            .collect();
                        dc.imap(user).append_many("INBOX", &new);
                        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                        relay.take();
                        let (wall, _, _, stdout) = timed(&mut cmd);
                        let traffic = relay.take();
                        let v: serde_json::Value =
                            serde_json::from_str(stdout.trim()).expect("clean --json prints JSON");
                        println!(
                            "{link} round {}: {what:<20} {wall:6.2} s wall, on the connection {} bytes down, {} client turns; own counters: {} bytes, {} round trips, {} scanned, {} moved, {} skipped as known ({}), load {}",
                            round + 1,
                            traffic.to_client,
                            traffic.turns,
                            v["bytes_fetched"],
                            v["round_trips"],
                            v["scanned"],
                            v["quarantined"],
                            v["skipped_known"],
                            v["sweep"],
                            load.split_whitespace().next().unwrap_or("?"),
                        );
                        reruns.push((
                            link.clone(),
                            what,
                            wall,
                            traffic.to_client,
                            traffic.turns,
                            v,
                        ));
                    }
                }
            }
            if let Some(p) = proxy.as_mut() {
                stop(p);
            }
        }
    }
    println!("\nmedians over {rounds} round(s), FLOOD={n}; bytes and turns on the TLS connection, as the relay saw them:");
    println!("| link | client | wall | CPU | peak RSS | Dovecot CPU | bytes down | client turns | moved | wall vs imapfilter |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for link in &links {
        let theirs = all
            .get(&(link.clone(), "imapfilter"))
            .map(|r| median(r.iter().map(|r| r.wall).collect()));
        for client in ["backscatter", "backscatter+deflate", "imapfilter"] {
            let Some(runs) = all.get(&(link.clone(), client)) else {
                continue;
            };
            let m = |g: &dyn Fn(&Run) -> f64| median(runs.iter().map(g).collect());
            let wall = m(&|r| r.wall);
            println!(
                "| {link} | {client} | {wall:.2} s | {:.2} s | {:.1} MB | {:.2} s | {:.2} MB | {:.0} | {} | {} |",
                m(&|r| r.cpu),
                m(&|r| r.rss_mb),
                m(&|r| r.dovecot_cpu),
                m(&|r| r.traffic.to_client as f64) / 1e6,
                m(&|r| r.traffic.turns as f64),
                runs[0].moved,
                theirs.map_or("-".into(), |t| format!("{:.2}x", wall / t)),
            );
        }
    }
    if !reruns.is_empty() {
        println!("\nbackscatter clean, the cold sweep's reruns (one run each):");
        println!("| link | run | wall | bytes down | client turns | scanned | moved | skipped as known |");
        println!("|---|---|---|---|---|---|---|---|");
        for (link, what, wall, down, turns, v) in &reruns {
            println!(
                "| {link} | {what} | {wall:.2} s | {:.1} KB | {turns} | {} | {} | {} |",
                *down as f64 / 1e3,
                v["scanned"],
                v["quarantined"],
                v["skipped_known"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
