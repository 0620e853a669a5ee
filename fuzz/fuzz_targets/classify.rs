//! Fuzz the classifier: any bytes get a verdict, never a panic.
//! The checks are in `../checks.rs` (replayed by the test suite on the
//! inputs in `fuzz/regressions/classify/`). Run from `fuzz/`:
//! `cargo +nightly fuzz run -O classify` (`-O` keeps mail-parser's debug
//! assertions off, as the project's dev profile does).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::classify(data));
