//! The command line: argument definitions (clap), dispatch to one module per
//! subcommand, and the error type that `main` prints once.
//!
//! This is the shell around the pure core: it reads files, writes to the
//! terminal, and turns failures into one clear sentence and an exit code.

pub mod account;
pub mod classify;
pub mod clean;
pub mod common;
pub mod filter;
pub mod keep;
pub mod quarantine;
pub mod report;
pub mod restore;
pub mod rules;
pub mod service;
pub mod sieve;
pub mod watch;

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
#[command(
    name = "backscatter",
    version,
    about,
    long_about,
    max_term_width = 100,
    after_long_help = "Environment:
  BACKSCATTER_CONFIG   the config file (as --config)
  BACKSCATTER_TIMEOUT  seconds to wait for a server's answer to one command (default 120)
  NO_COLOR             no colours

Exit status: 0 done, 1 a runtime error (server, network, mailbox), 2 a usage or configuration error."
)]
pub struct Cli {
    /// The config file (default: $BACKSCATTER_CONFIG, else
    /// ~/.config/backscatter/config.toml or the platform's equivalent).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Classify(classify::ClassifyArgs),
    Clean(clean::CleanArgs),
    Filter(filter::FilterArgs),
    Restore(restore::RestoreArgs),
    Report(report::ReportArgs),
    /// What is in quarantine, and why.
    Quarantine(quarantine::QuarantineArgs),
    Keep(keep::KeepArgs),
    Watch(watch::WatchArgs),
    /// Run `watch` as a user service (systemd --user, launchd).
    Service(service::ServiceArgs),
    /// Sieve: the policy as a server-side script; your own rules checked and tried.
    Sieve(sieve::SieveArgs),
    /// Check an account, or store its password in the keyring.
    Account(account::AccountArgs),
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
    let config = cli.config.as_deref();
    match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Clean(args) => clean::run(args, config),
        Command::Filter(args) => filter::run(args, config),
        Command::Restore(args) => restore::run(args, config),
        Command::Report(args) => report::run(args, config),
        Command::Quarantine(args) => quarantine::run(args, config),
        Command::Keep(args) => keep::run(args, config),
        Command::Watch(args) => watch::run(args, config),
        Command::Service(args) => service::run_service(args),
        Command::Sieve(args) => sieve::run(args, config),
        Command::Account(args) => account::run(args, config),
    }
}
