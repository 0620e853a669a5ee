//! The integration test suite, one binary split into themed modules
//! (ripgrep's layout): golden classification over real corpora, provenance
//! against a sent index, the command line, and never-panic properties.

mod accounts;
mod agent;
mod arrivals;
mod cases;
mod cli;
mod concurrent;
mod cyrus;
mod discovery;
mod filed;
mod flood;
mod fuzzed;
mod golden;
mod harness;
mod hostile;
mod languages;
mod live_inputs;
mod mailutils;
mod names;
mod on_cyrus;
mod ports;
mod properties;
mod provenance;
mod quirks;
mod realistic;
mod refusals;
mod report;
mod rerun;
mod rules;
mod secrets;
mod shell;
mod sieve;
mod sweep;
mod undo;
mod util;
