//! `backscatter watch`: the background agent.

use super::common::{load_config, runtime};
use super::Error;
use crate::agent::AgentError;
use crate::clean::Dirs;
use crate::watch::Timing;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;

/// Keep accounts clean as mail arrives (the background agent).
///
/// For every configured account (or those named), catches up on what
/// arrived while it was not running, then waits for new mail with IMAP IDLE
/// (polling where IDLE is missing), classifies each new message, and moves
/// backscatter to quarantine. Reconnects by itself after network loss,
/// server restarts or suspend; an account whose login is refused is stopped
/// with a message while the others go on. An account whose password command
/// or keyring fails (locked) is asked again with backoff and watched once
/// it answers; the others go on meanwhile. The keep list is read again when
/// the config file changes. When the sent index becomes empty (Sent renamed
/// or emptied), it says so and moves nothing until Sent holds mail again.
/// SIGINT/SIGTERM finish the move in
/// flight and exit 0. Logs one line per action to stderr (journald picks
/// them up when run as a service).
///
/// Examples:
///
///   backscatter watch
///
///   backscatter watch --account work --account home -v
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WatchArgs {
    /// Watch only these accounts (repeatable; default: all).
    #[arg(long, value_name = "NAME")]
    pub account: Vec<String>,
}

/// Log time stamps in the user's time zone, with the offset (RFC 3339:
/// `2026-12-01T08:20:05.123+09:00`), as the rest of the output shows
/// times.
struct LocalTime;

impl tracing_subscriber::fmt::time::FormatTime for LocalTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        w.write_str(&crate::day::log_stamp(
            secs,
            d.subsec_nanos(),
            crate::clock::zone(),
        ))
    }
}

/// The log on stderr: info level (`-v`: debug; `-q`: warnings and errors
/// only), coloured only on a terminal and without `NO_COLOR`.
/// Time stamps are local ([`LocalTime`]).
fn init_logging() {
    use super::common::{verbosity, Verbosity};
    use std::io::IsTerminal;
    let level = match verbosity() {
        Verbosity::Quiet => tracing::Level::WARN,
        Verbosity::Normal => tracing::Level::INFO,
        Verbosity::Verbose => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(super::common::color(std::io::stderr().is_terminal()))
        .with_max_level(level)
        .with_target(false)
        .with_timer(LocalTime)
        .try_init();
}

pub fn run(args: WatchArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    init_logging();
    let cfg = load_config(config)?;
    let accounts: Vec<_> = if args.account.is_empty() {
        cfg.accounts.clone()
    } else {
        args.account
            .iter()
            .map(|n| cfg.account(Some(n)).cloned().map_err(|e| Error::Usage(e.0)))
            .collect::<Result<_, _>>()?
    };
    if accounts.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no accounts configured (add one with `backscatter account add`; `backscatter config sample` shows every key)",
            cfg.path.display()
        )));
    }
    // A password that cannot be had stops (or, from a command or the
    // keyring, delays) that account only; with none at all for a reason
    // the configuration must fix, nothing starts (exit 2).
    let accounts: Vec<_> = accounts
        .into_iter()
        .map(|a| {
            let s = crate::secret::fetch(&a);
            (a, s)
        })
        .collect();
    if accounts
        .iter()
        .all(|(a, s)| s.is_err() && !crate::agent::may_recover(a))
    {
        let why: Vec<String> = accounts.into_iter().filter_map(|(_, s)| s.err()).collect();
        return Err(Error::Usage(why.join("; ")));
    }
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let stopped = runtime()?.block_on(crate::agent::run_fetching(
        accounts,
        dirs,
        Timing::from_env(),
        shutdown_signal(),
    ));
    match stopped {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A mailbox that does not exist is a configuration error (2), as
        // in `clean` and `account check`.
        Err(e @ AgentError::Stopped { config: true, .. }) => Err(Error::Usage(e.to_string())),
        Err(e) => Err(Error::Runtime(e.to_string())),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd, launchd, `kill`).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
