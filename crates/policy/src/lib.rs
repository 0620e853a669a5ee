//! backscatter's decisions, without I/O: what is an automated response and
//! whose mail it answers, what the sweep fetches, what the Sieve script
//! says, and the codecs of the protocols around them. The `backscatter`
//! crate does the I/O around this one.
//!
//! Module layers, each using only those before it:
//! `mail` ← `lexicon` ← `recognise` ← `sent` (index and provenance) ←
//! `classify`; then `plan`/`skeleton`, `rerun`, `fingerprint`, `journal`, `keep`,
//! `sieve`, `rules`, `origin`, `digest`, `day` (the user's calendar days),
//! `report`, and the codecs `names` (modified UTF-7, namespaces),
//! `managesieve` and `mbox`.

pub mod classify;
pub mod day;
pub mod digest;
pub mod fingerprint;
pub mod journal;
pub mod keep;
pub mod lexicon;
pub mod mail;
pub mod managesieve;
pub mod mbox;
pub mod names;
pub mod origin;
pub mod plan;
pub mod recognise;
pub mod report;
pub mod rerun;
pub mod rules;
pub mod sent;
pub mod sieve;
pub mod skeleton;

pub use classify::{classify, classify_at, Context, Decision, Kind, Original, Verdict};
pub use sent::{SentIndex, SentMessage};
