//! The integration test suite, one binary split into themed modules
//! (ripgrep's layout): golden classification over real corpora, provenance
//! against a sent index, the command line, and never-panic properties.

mod accounts;
mod agent;
mod cases;
mod cli;
mod flood;
mod fuzzed;
mod golden;
mod harness;
mod hostile;
mod languages;
mod properties;
mod provenance;
mod secrets;
mod sieve;
mod sweep;
mod util;
