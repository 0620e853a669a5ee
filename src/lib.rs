//! backscatter: protects a mailbox from backscatter — the bounces,
//! auto-replies, challenges and virus notices that arrive when a spammer
//! forges your address.
//!
//! The library is a pure core (classification, sent-mail matching, mbox
//! splitting) under a thin command-line shell (`src/main.rs`, `src/cli/`).

pub mod classify;
pub mod clean;
pub mod cli;
pub mod config;
pub mod discover;
pub mod filter;
pub mod fingerprint;
pub mod imap;
pub mod journal;
pub mod keep;
pub mod lexicon;
pub mod managesieve;
pub mod mbox;
pub mod notify;
pub mod origin;
pub mod paths;
pub mod plan;
pub mod quarantine;
pub mod report;
pub mod restore;
pub mod rules;
pub mod secret;
pub mod sent;
pub mod sentsync;
pub mod sieve;
pub mod skeleton;
pub mod watch;

pub use classify::{classify, Context, Decision, Kind, Original, Verdict};
pub use sent::{SentIndex, SentMessage};
