//! The command line: argument definitions (clap), dispatch to one module per
//! subcommand, and the error type that `main` prints once.
//!
//! This is the shell around the pure core: it reads files, writes to the
//! terminal, and turns failures into one clear sentence and an exit code.

pub mod account;
pub mod add;
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
pub mod setup;
pub mod shell;
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
    version = VERSION,
    about,
    long_about,
    max_term_width = 100,
    after_long_help = "Environment:
  BACKSCATTER_CONFIG   the config file (as --config)
  BACKSCATTER_TIMEOUT  seconds to wait for a server's answer to one command (default 120)
  NO_COLOR             no colours (any non-empty value), also in the watch log

Exit status: 0 done, 1 a runtime error (server, network, mailbox), 2 a usage or configuration error."
)]
pub struct Cli {
    /// The config file (default: $BACKSCATTER_CONFIG, else
    /// ~/.config/backscatter/config.toml or the platform's equivalent).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Print only errors and what was asked for (no notes, no progress bar).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: notes on what is done (watch: a debug-level log).
    #[arg(short, long, global = true)]
    pub verbose: bool,

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
    /// Add an account, check it, or store its password in the keyring.
    Account(account::AccountArgs),
    /// The sample config, and where the config file is.
    Config(setup::ConfigArgs),
    Completions(shell::CompletionsArgs),
    Man(shell::ManArgs),
}

/// `backscatter --version`: the crate version, the git commit it was built
/// from (when built from a checkout) and the build date, e.g.
/// `0.1.0 (abc123def456 2026-11-30)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BACKSCATTER_VERSION_DETAIL"),
    ")"
);

/// A failure, printed once by `main`.
#[derive(Debug)]
pub enum Error {
    /// Bad arguments or configuration: exit status 2.
    Usage(String),
    /// Something failed while running: exit status 1.
    Runtime(String),
    /// Standard output was closed by its reader (`backscatter classify |
    /// head`): stop quietly, exit status 0.
    OutputClosed,
}

impl Error {
    /// A runtime failure (exit status 1) from anything that reads as a
    /// sentence: a [`crate::net::NetError`], a `String`.
    pub fn runtime(e: impl Into<String>) -> Error {
        Error::Runtime(e.into())
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
            Error::OutputClosed => 0,
        }
    }

    /// Whether `main` prints it (a closed output is not news to anyone).
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::OutputClosed)
    }
}

/// A failed write to standard output: [`Error::OutputClosed`] for a broken
/// pipe, else a runtime error.
pub fn output_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::OutputClosed
    } else {
        Error::Runtime(format!("cannot write output: {e}"))
    }
}

/// The one printer of reports (`account check`, `sieve status`, ...): as
/// their text ([`fmt::Display`]), or with `json` as one line of JSON (their
/// [`serde::Serialize`] form), on standard output.
pub fn print<R: serde::Serialize + fmt::Display>(report: &R, json: bool) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::to_string(report)
            .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
        writeln!(out, "{line}").map_err(output_error)
    } else {
        write!(out, "{report}").map_err(output_error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
            Error::OutputClosed => f.write_str("standard output was closed"),
        }
    }
}

impl std::error::Error for Error {}

pub fn parse() -> Cli {
    Cli::parse()
}

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    common::set_verbosity(if cli.quiet {
        common::Verbosity::Quiet
    } else if cli.verbose {
        common::Verbosity::Verbose
    } else {
        common::Verbosity::Normal
    });
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
        Command::Service(args) => service::run_service(args, config),
        Command::Sieve(args) => sieve::run(args, config),
        Command::Account(args) => account::run(args, config),
        Command::Config(args) => setup::run(args, config),
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args),
    }
}
