//! Shared helpers. The corpus readers and the benchmark tools now live in
//! the test-kit crate (`crates/testkit`: `backscatter_testkit::corpus`,
//! `::cli`, `::bench`).
//!
//! This module re-exports them under their old names (`crate::util::cases`,
//! `crate::util::root`, ...) so that tests written against it keep
//! compiling; new code may use `backscatter_testkit::...` directly. What
//! stays here needs the backscatter crate (its config and mail types, its
//! binary).

#![allow(unused_imports)] // a shim keeps every old name, used here or not

pub use backscatter_testkit::bench::{env_num, wanproxy};
pub use backscatter_testkit::cli::stop;
pub use backscatter_testkit::corpus::{cases, corpora, rel, Case, Expected};
pub use backscatter_testkit::repo_root as root;
use std::path::Path;

/// A plaintext loopback account on a test server.
pub fn loopback_account(
    user: &str,
    imap_port: u16,
    sieve_port: u16,
) -> backscatter::config::Account {
    use backscatter::config::{Endpoint, TlsMode};
    backscatter::config::Account {
        name: "test".into(),
        default: true,
        imap: Endpoint {
            host: "127.0.0.1".into(),
            port: imap_port,
            tls: TlsMode::Plain,
            ca_file: None,
        },
        sieve: Endpoint {
            host: "127.0.0.1".into(),
            port: sieve_port,
            tls: TlsMode::Plain,
            ca_file: None,
        },
        sieve_max_size: None,
        username: user.into(),
        addresses: vec![format!("{user}@example.test")],
        secret: None,
        auth: backscatter::config::AuthMechanism::Password,
        quarantine: "Backscatter".into(),
        sent: None,
        sent_days: 30,
        watch: vec!["INBOX".into()],
        catch_up_days: 2,
        outbound_hosts: Vec::new(),
        rules: None,
        compress: backscatter::config::Compression::Auto,
        keep: Vec::new(),
        config_file: None,
    }
}

/// `backscatter ARGS` as a user whose config file is `cfg` and whose data,
/// state, config and home directories are under `dir`: nothing touches the
/// real ones. Add the password variables and stdio as needed.
pub fn backscatter(dir: &Path, cfg: &Path, args: &[&str]) -> std::process::Command {
    backscatter_testkit::cli::isolated(env!("CARGO_BIN_EXE_backscatter"), dir, cfg, args)
}

/// The `Date:` of a response's original, as Unix seconds.
pub fn original_date(o: &backscatter::Original) -> Option<i64> {
    o.date
        .as_deref()
        .and_then(mail_parser::DateTime::parse_rfc3339)
        .map(|d| d.to_timestamp())
}

/// The original's subject as provenance compares it (empty: none).
pub fn original_subject(o: &backscatter::Original) -> Option<String> {
    o.subject
        .as_deref()
        .map(backscatter::sent::normalize_subject)
        .filter(|s| !s.is_empty())
}

/// Sisimai anonymised its samples: distinct messages share recipient,
/// subject ("nyaan") and date. A forged response whose original agrees
/// with one of `sent` on all three cannot be told from the user's own
/// bounce by anything but its Message-ID, which a provider may rewrite:
/// the provenance tests leave such twins out (and count them).
pub fn twin_of_a_sent_original<'a>(
    o: &backscatter::Original,
    mut sent: impl Iterator<Item = &'a backscatter::Original>,
) -> bool {
    sent.any(|s| {
        original_subject(o).is_some()
            && original_subject(o) == original_subject(s)
            && o.recipients.iter().any(|r| s.recipients.contains(r))
            && match (original_date(o), original_date(s)) {
                (Some(a), Some(b)) => (a - b).abs() <= 86_400,
                _ => true,
            }
    })
}

/// The half of the labelled originals that a test puts in the user's sent
/// mail: every other one, in order, except that the Message-IDs one corpus
/// message carries together go to the same side. Sisimai's samples bounce
/// one original under two IDs (Exim's queue ID in one file, the client's
/// ID, quoted in another file's bounce too); were they split, a bounce
/// would be both "sent" and "forged" at once. `labelled` are the
/// backscatter cases with an original Message-ID; IDs are lowercased.
pub fn sent_half(labelled: &[&Case]) -> std::collections::BTreeSet<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let own = |c: &Case| {
        c.expected
            .original_message_id
            .as_deref()
            .map(str::to_lowercase)
    };
    let ids: BTreeSet<String> = labelled.iter().filter_map(|c| own(c)).collect();
    // Union-find over the IDs, by index in `ids`' order.
    let index: BTreeMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for c in labelled {
        let Some(mine) = own(c).and_then(|o| index.get(o.as_str()).copied()) else {
            continue;
        };
        let raw = std::fs::read(&c.eml).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).to_lowercase();
        for token in text.split('<').skip(1) {
            let Some(end) = token.find('>').filter(|&e| e < 998) else {
                continue;
            };
            let id = format!("<{}>", &token[..end]);
            if let Some(&other) = index.get(id.as_str()) {
                let (a, b) = (root(&mut parent, mine), root(&mut parent, other));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    // Components in the order of their first ID; every other one is sent.
    let mut firsts: Vec<usize> = (0..ids.len())
        .filter(|&i| root(&mut parent, i) == i)
        .collect();
    firsts.sort_unstable();
    let sent_roots: BTreeSet<usize> = firsts.iter().step_by(2).copied().collect();
    ids.iter()
        .enumerate()
        .filter(|&(i, _)| sent_roots.contains(&root(&mut parent, i)))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Start `watch` as prepared in `cmd` (config, environment): stdout
/// discarded, stderr captured in a [`WatchLog`] to wait on.
pub fn spawn_watch(
    cmd: &mut std::process::Command,
) -> (std::process::Child, backscatter_testkit::watchlog::WatchLog) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start backscatter watch");
    let log = backscatter_testkit::watchlog::WatchLog::capture(&mut child);
    (child, log)
}
