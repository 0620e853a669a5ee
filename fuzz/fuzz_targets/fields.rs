//! Fuzz the report-field parsers, the Message-ID scanners, the sent-message
//! extractor, the mbox splitter and the skeleton builder on arbitrary bytes.
//! The checks are in `../checks.rs` (replayed by the test suite on the
//! inputs in `fuzz/regressions/fields/`). Run from `fuzz/`:
//! `cargo +nightly fuzz run -O fields` (`-O` keeps mail-parser's debug
//! assertions off, as the project's dev profile does).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::fields(data));
