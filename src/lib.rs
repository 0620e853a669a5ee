//! backscatter: protects a mailbox from backscatter — the bounces,
//! auto-replies, challenges and virus notices that arrive when a spammer
//! forges your address.
//!
//! This crate is the I/O shell (IMAP, ManageSieve, files, the agent, the
//! desktop) around [`backscatter_policy`], the pure core, whose modules it
//! re-exports under the same names. The command line (`src/main.rs`,
//! `src/cli/`) is private to the binary.

pub use backscatter_policy::{
    classify, day, digest, fingerprint, keep, lexicon, mail, mbox, origin, plan, recognise, report,
    rerun, rules, sent, sieve, skeleton,
};

pub mod account;
pub mod agent;
pub mod clean;
pub mod clock;
pub mod config;
pub mod discover;
pub mod discover_net;
pub mod filter;
pub mod imap;
pub mod journal;
pub mod managesieve;
pub mod net;
pub mod notify;
pub mod paths;
pub mod quarantine;
pub mod restore;
pub mod secret;
pub mod sentsync;
pub mod sieve_install;
pub mod watch;

pub use classify::{Context, Decision, Kind, Original, Verdict};
pub use sent::{SentIndex, SentMessage};
