//! The classifier's entry point: raw message bytes in, a [`Verdict`] out.
//! [`crate::recognise`] says whether a message is an automated response and
//! what it says of its original; [`crate::sent::provenance`] decides whether
//! that original was the user's.
//!
//! Pure: no I/O, no async, no error type. Malformed, truncated, binary or
//! huge input is a verdict (`normal`, i.e. keep), never a panic, and the work
//! per message is bounded (at most [`MAX_MESSAGE_BYTES`] are read; all
//! matching is linear-time).

pub use crate::mail::{header_date, subject, MAX_MESSAGE_BYTES};
pub use crate::recognise::{
    fields, may_be_automated, may_be_automated_with, Decision, Kind, Original, Recognised, Verdict,
    PARSER,
};
pub use crate::sent::provenance::Context;

use crate::lexicon::{Lexicon, LEXICON};
use crate::recognise::recognise;

/// Classify one raw message with the built-in lexicon.
pub fn classify(raw: &[u8], ctx: &Context<'_>) -> Verdict {
    classify_with(raw, ctx, &LEXICON)
}

/// [`classify`] a message that arrived at `arrived` (Unix seconds, its
/// IMAP INTERNALDATE): an automated response is judged against the sent
/// mail of the days before it arrived
/// ([`crate::sent::provenance::decide_at`]), so that its verdict does not
/// depend on when it is judged.
pub fn classify_at(raw: &[u8], ctx: &Context<'_>, arrived: Option<i64>) -> Verdict {
    match recognise(raw, &LEXICON) {
        Recognised::Normal(v) => v,
        Recognised::Response(r) => crate::sent::provenance::decide_at(r, ctx, arrived),
    }
}

/// Classify with an explicit lexicon (tests use small ones).
pub fn classify_with(raw: &[u8], ctx: &Context<'_>, lex: &Lexicon) -> Verdict {
    match recognise(raw, lex) {
        Recognised::Normal(v) => v,
        Recognised::Response(r) => crate::sent::provenance::decide(r, ctx),
    }
}
