//! Fuzz the classifier: any bytes get a verdict, never a panic.
//! Run: `cargo +nightly fuzz run classify -O fuzz/seeds/classify` (from the repo root; `-O` keeps
//! mail-parser's debug assertions off, as the project's dev profile does).
#![no_main]

use backscatter::{classify, Context, Decision, SentIndex};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SENT: LazyLock<SentIndex> = LazyLock::new(|| {
    let mut s = SentIndex::new();
    s.insert_id("<a@b>");
    s
});

fuzz_target!(|data: &[u8]| {
    let ctx = Context {
        sent: &SENT,
        own_addresses: &[],
    };
    let v = classify(data, &ctx);
    assert_eq!(v.verdict == Decision::Normal, v.kind.is_none());
});
