//! Fuzz the Sieve generator (escaping, meaning) and the marked-block merge.
//! The checks are in `../checks.rs` (replayed by the test suite on the
//! inputs in `fuzz/regressions/sieve/`). Run from `fuzz/`:
//! `cargo +nightly fuzz run -O sieve` (`-O` keeps mail-parser's debug
//! assertions off, as the project's dev profile does).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sieve(data));
