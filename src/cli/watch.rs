//! `backscatter watch`: the background agent.

use super::common::{load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use crate::watch::{watch_mailbox, Timing};
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use tracing::{error, info};

/// Keep accounts clean as mail arrives (the background agent).
///
/// For every configured account (or those named), catches up on what
/// arrived while it was not running, then waits for new mail with IMAP IDLE
/// (polling where IDLE is missing), classifies each new message, and moves
/// backscatter to quarantine. Reconnects by itself after network loss,
/// server restarts or suspend; an account whose login is refused is stopped
/// with a message while the others go on. SIGINT/SIGTERM finish the move in
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

/// The log on stderr: info level (`-v`: debug; `-q`: warnings and errors
/// only), coloured only on a terminal and without `NO_COLOR`.
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
        .try_init();
}

/// Take the account's agent lock (released by the OS when the process
/// ends, however it ends).
fn lock_account(dirs: &Dirs, account: &str) -> Result<std::fs::File, Error> {
    let path = crate::paths::account_file(&dirs.state, "watch", account, "lock");
    if let Some(d) = path.parent() {
        crate::paths::private_dir(d)
            .map_err(|e| Error::Runtime(format!("cannot create {}: {e}", d.display())))?;
    }
    let f = crate::paths::append_private(&path)
        .map_err(|e| Error::Runtime(format!("cannot open {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Runtime(format!(
            "another `backscatter watch` is already watching account \"{account}\" (lock {})",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Runtime(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
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
    let mut jobs = Vec::new();
    for a in &accounts {
        let s = secret(a)?;
        for mb in &a.watch {
            jobs.push((a.clone(), s.clone(), mb.clone()));
        }
    }
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    // One agent per account: a second one would race the first for the
    // same messages. The locks are held until the process exits.
    let mut _locks = Vec::new();
    for a in &accounts {
        _locks.push(lock_account(&dirs, &a.name)?);
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let (events, mut moved) = tokio::sync::mpsc::unbounded_channel::<crate::watch::Moved>();
        let mut digest = crate::notify::Digest::default();
        for a in &accounts {
            digest.set_own(&a.name, &a.addresses, &a.outbound_hosts);
        }
        let mut set = tokio::task::JoinSet::new();
        for (a, s, mb) in jobs {
            let (dirs, rx, events) = (dirs.clone(), rx.clone(), events.clone());
            let name = a.name.clone();
            set.spawn(async move {
                let r = watch_mailbox(a, s, mb, dirs, Timing::from_env(), rx, Some(events)).await;
                (name, r)
            });
        }
        drop(events);
        // Notifications: batched, never one per message.
        let notifier = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                tokio::select! {
                    ev = moved.recv() => match ev {
                        Some(m) => {
                            if let Some(alert) = digest.record_moved(
                                &m.account,
                                m.count,
                                &m.originals,
                                &m.own_bounces,
                                crate::clock::now(),
                            ) {
                                crate::notify::show(&alert).await;
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        if let Some(summary) = digest.due(crate::clock::now()) {
                            crate::notify::show(&summary).await;
                        }
                    }
                }
            }
        });
        info!(
            "watching {} mailbox(es); stop with Ctrl-C or SIGTERM",
            set.len()
        );
        let signal = async {
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
        };
        tokio::pin!(signal);
        let mut failed = Vec::new();
        let mut config_only = true;
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = &mut signal, if !stopping => {
                    info!("stopping: finishing what is in flight");
                    stopping = true;
                    let _ = tx.send(true);
                }
                done = set.join_next() => match done {
                    None => break,
                    Some(Ok((name, Err(e)))) => {
                        error!(account = %name, "stopped: {e}");
                        config_only &= matches!(e, crate::clean::CleanError::Config(_));
                        failed.push(format!("{name}: {e}"));
                    }
                    Some(Ok((_, Ok(())))) => {}
                    Some(Err(e)) => {
                        config_only = false;
                        failed.push(format!("a watcher crashed: {e}"));
                    }
                },
            }
        }
        notifier.abort();
        if stopping || failed.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            let m = format!("every watched account stopped: {}", failed.join("; "));
            // A mailbox that does not exist is a configuration error (2),
            // as in `clean` and `account check`.
            Err(if config_only {
                Error::Usage(m)
            } else {
                Error::Runtime(m)
            })
        }
    })
}
