//! Fuzz the ManageSieve response codec.
//! The checks are in `../checks.rs` (replayed by the test suite on the
//! inputs in `fuzz/regressions/managesieve/`). Run from `fuzz/`:
//! `cargo +nightly fuzz run -O managesieve` (`-O` keeps mail-parser's debug
//! assertions off, as the project's dev profile does).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::managesieve(data));
