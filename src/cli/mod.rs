//! The command line: argument definitions (clap), dispatch to one module per
//! subcommand, and the error type that `main` prints once.
//!
//! This is the shell around the pure core: it reads files, writes to the
//! terminal, and turns failures into one clear sentence and an exit code.

pub mod classify;

use clap::{Parser, Subcommand};
use std::fmt;
use std::process::ExitCode;

/// Protects your mailbox from backscatter: the bounces, out-of-office
/// replies, challenge-response requests and virus notices that flood in
/// when a spammer forges your address as the sender.
///
/// backscatter never deletes mail and never sends any. Start with
/// `backscatter classify` on a folder of .eml files to see what it would do.
#[derive(Debug, Parser)]
#[command(name = "backscatter", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Classify(classify::ClassifyArgs),
}

/// A failure, printed once by `main`.
#[derive(Debug)]
pub enum Error {
    /// Bad arguments or configuration: exit status 2.
    Usage(String),
    /// Something failed while running: exit status 1.
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub fn parse() -> Cli {
    Cli::parse()
}

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Classify(args) => classify::run(args),
    }
}
