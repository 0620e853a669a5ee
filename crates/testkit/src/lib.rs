//! backscatter's test kit (`publish = false`): real, throw-away mail servers
//! on loopback and small independent clients to set up and check their
//! mailboxes, for the integration tests (`tests/suite`) and the benchmarks
//! (`benches/`).
//!
//! | module | tool |
//! |---|---|
//! | [`dovecot`] | a private Dovecot 2.3 + Pigeonhole (`tests/dovecot/start.sh`) |
//! | [`cyrus`] | a private Cyrus IMAP 3.6 with Debian's `INBOX.` namespace (`tests/cyrus/start.sh`) |
//! | [`server`] | what both harnesses share: fresh directories, free ports, start/stop scripts |
//! | [`imap_client`] | a blocking IMAP client (LOGIN, MULTIAPPEND, FETCH, STATUS, ...) |
//! | [`managesieve_client`] | a blocking ManageSieve client (RFC 5804) |
//! | [`quirk`] | a proxy in front of a server that refuses chosen commands (`NO [CODE]`), hides capabilities, keeps quiet during IDLE |
//! | [`lmtp`] | one LMTP delivery, as an MTA would make it |
//! | [`corpus`] | the golden corpora and their expected verdicts |
//! | [`flood`] | floods of real automated responses with fresh Message-IDs |
//! | [`watchlog`] | a child's stderr collected in the background; polling with a deadline |
//! | [`cli`] | the binary under test run as an isolated user; SIGTERM and reap |
//! | [`bench`] | benchmark knobs and the WAN emulator in front of a server |
//!
//! The kit does not depend on the backscatter crate (it drives servers and
//! builds mail), so it builds in parallel with the code under test; where a
//! tool needs the product (a flood's expected verdicts, the binary's path),
//! the caller passes it in.

use std::path::{Path, PathBuf};

pub mod bench;
pub mod cli;
pub mod corpus;
pub mod cyrus;
pub mod dovecot;
pub mod flood;
pub mod imap_client;
pub mod lmtp;
pub mod managesieve_client;
pub mod quirk;
pub mod server;
pub mod watchlog;

/// The repository's root directory (two levels above this crate), where
/// `tests/`, the corpora and `target/` are.
pub fn repo_root() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.parent()
        .and_then(Path::parent)
        .unwrap_or(kit)
        .to_path_buf()
}
