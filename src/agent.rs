//! The agent's supervisor (`backscatter watch`): one watcher
//! ([`crate::watch::watch_mailbox`]) per account and watched mailbox, the
//! desktop notifications they feed (batched by [`crate::notify::Digest`],
//! never one per message), and an orderly stop.
//!
//! As in mini-redis's `run(listener, shutdown)`, the caller passes the
//! shutdown in as a future (the binary: SIGINT or SIGTERM; a test: a
//! channel): when it completes, every watcher finishes the move in flight,
//! saves its state and returns, and so does [`run`].

use crate::clean::{CleanError, Dirs};
use crate::config::Account;
use crate::secret::Secret;
use crate::watch::{watch_mailbox, Moved, Timing};
use std::fmt;
use std::future::Future;
use tracing::{error, info};

/// Why the agent stopped on its own (not because shutdown was asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// An account's agent lock is held by another `backscatter watch`, or
    /// cannot be taken.
    Locked(String),
    /// Every watcher stopped with an error retrying cannot fix (a refused
    /// login, a mailbox that does not exist): one `account: reason` each.
    /// `config` when every one was a configuration problem.
    Stopped { failures: Vec<String>, config: bool },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Locked(m) => f.write_str(m),
            AgentError::Stopped { failures, .. } => {
                write!(f, "every watched account stopped: {}", failures.join("; "))
            }
        }
    }
}

impl std::error::Error for AgentError {}

/// Take the account's agent lock in `dirs.state` (released by the OS when
/// the file is dropped or the process ends, however it ends): one agent
/// per account, since a second one would race the first for the same
/// messages.
pub fn lock(dirs: &Dirs, account: &str) -> Result<std::fs::File, AgentError> {
    let path = crate::paths::account_file(&dirs.state, "watch", account, "lock");
    if let Some(d) = path.parent() {
        crate::paths::private_dir(d)
            .map_err(|e| AgentError::Locked(format!("cannot create {}: {e}", d.display())))?;
    }
    let f = crate::paths::append_private(&path)
        .map_err(|e| AgentError::Locked(format!("cannot open {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(AgentError::Locked(format!(
            "another `backscatter watch` is already watching account \"{account}\" (lock {})",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(AgentError::Locked(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Watch every mailbox in `watch` of every account (with its secret) until
/// `shutdown` completes; the accounts' locks ([`lock`]) are held meanwhile.
/// Moved backscatter is reported on the desktop as [`crate::notify::Digest`]
/// decides: an alert for a surge or mail through the user's own server, a
/// summary per window (checked every 15 s), never one per message.
///
/// Returns `Ok` when shutdown was asked for, or when every watcher
/// returned without error; [`AgentError::Stopped`] when every watcher
/// stopped on an error before that (one stopped account does not stop the
/// others).
pub async fn run(
    accounts: Vec<(Account, Secret)>,
    dirs: Dirs,
    timing: Timing,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let accounts = accounts.into_iter().map(|(a, s)| (a, Ok(s))).collect();
    run_fetching(accounts, dirs, timing, shutdown).await
}

/// Can a password source that failed give a password later in this
/// process? A command (a locked gpg-agent or `pass` store) or the keyring
/// (locked at session start) can; an environment variable cannot (the
/// process's environment does not change), nor a missing source.
pub fn may_recover(a: &Account) -> bool {
    matches!(
        a.secret,
        Some(crate::config::SecretSource::Command(_) | crate::config::SecretSource::Keyring)
    )
}

/// [`run`], where an account's secret may have failed to come (`Err`: the
/// one-sentence reason). Such an account does not stop the others: it is
/// logged as an ERROR; when its source [`may_recover`] it is asked again
/// with capped exponential backoff (`timing.backoff` doubling up to
/// `timing.max_backoff`) and watched as soon as a password comes (a
/// keyring unlocked later works without a restart); otherwise it counts
/// as stopped on a configuration error, like a mailbox that does not
/// exist.
pub async fn run_fetching(
    accounts: Vec<(Account, Result<Secret, String>)>,
    dirs: Dirs,
    timing: Timing,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let _locks = accounts
        .iter()
        .map(|(a, _)| lock(&dirs, &a.name))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (events, moved) = tokio::sync::mpsc::unbounded_channel::<Moved>();
    let mut digest = crate::notify::Digest::default();
    for (a, _) in &accounts {
        digest.set_own(&a.name, &a.addresses, &a.outbound_hosts);
    }
    let mut set = tokio::task::JoinSet::new();
    let mut failures = Vec::new();
    let mut config = true;
    for (a, s) in &accounts {
        let s = match s {
            Ok(s) => s.clone(),
            Err(e) if !may_recover(a) => {
                error!(account = %a.name, "stopped: {e}");
                failures.push(e.clone());
                continue;
            }
            Err(e) => {
                // Asked again with backoff; its mailboxes are watched
                // from the moment a password comes.
                let (a, e) = (a.clone(), e.clone());
                let (dirs, timing, rx, events) =
                    (dirs.clone(), timing.clone(), rx.clone(), events.clone());
                set.spawn(async move {
                    let name = a.name.clone();
                    let Some(s) = fetch_with_backoff(&a, e, &timing, rx.clone()).await else {
                        return (name, Ok(()));
                    };
                    let runs = a.watch.iter().map(|mb| {
                        watch_mailbox(
                            a.clone(),
                            s.clone(),
                            mb.clone(),
                            dirs.clone(),
                            timing.clone(),
                            rx.clone(),
                            Some(events.clone()),
                        )
                    });
                    let r = futures::future::join_all(runs)
                        .await
                        .into_iter()
                        .find(Result::is_err)
                        .unwrap_or(Ok(()));
                    (name, r)
                });
                continue;
            }
        };
        for mb in &a.watch {
            let (a, s, mb) = (a.clone(), s.clone(), mb.clone());
            let (dirs, timing, rx, events) =
                (dirs.clone(), timing.clone(), rx.clone(), events.clone());
            set.spawn(async move {
                let name = a.name.clone();
                let r = watch_mailbox(a, s, mb, dirs, timing, rx, Some(events)).await;
                (name, r)
            });
        }
    }
    drop(events);
    let notifier = tokio::spawn(notify(digest, moved));
    info!(
        "watching {} mailbox(es); stop with Ctrl-C or SIGTERM",
        set.len()
    );
    tokio::pin!(shutdown);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = &mut shutdown, if !stopping => {
                info!("stopping: finishing what is in flight");
                stopping = true;
                let _ = tx.send(true);
            }
            done = set.join_next() => match done {
                None => break,
                Some(Ok((name, Err(e)))) => {
                    error!(account = %name, "stopped: {e}");
                    config &= matches!(e, CleanError::Config(_));
                    failures.push(format!("{name}: {e}"));
                }
                Some(Ok((_, Ok(())))) => {}
                Some(Err(e)) => {
                    config = false;
                    failures.push(format!("a watcher crashed: {e}"));
                }
            },
        }
    }
    notifier.abort();
    if stopping || failures.is_empty() {
        Ok(())
    } else {
        Err(AgentError::Stopped { failures, config })
    }
}

/// Ask for account `a`'s password again until it comes (after `first`,
/// the reason the first try failed), waiting `timing.backoff` doubling up
/// to `timing.max_backoff` between tries; `None` when shutdown is asked
/// for first. Each failure is one ERROR line saying when the next try is.
async fn fetch_with_backoff(
    a: &Account,
    first: String,
    timing: &Timing,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Option<Secret> {
    let mut wait = timing.backoff;
    let mut why = first;
    loop {
        error!(
            account = %a.name,
            "{why}; the password is asked for again in {:.0} s (the other accounts are watched meanwhile)",
            wait.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return None,
        }
        if *shutdown.borrow() {
            return None;
        }
        // The command may block on an agent: off the runtime's thread.
        let b = a.clone();
        match tokio::task::spawn_blocking(move || crate::secret::fetch(&b)).await {
            Ok(Ok(s)) => {
                info!(account = %a.name, "got the password: watching the account now");
                return Some(s);
            }
            Ok(Err(e)) => why = e,
            Err(e) => {
                why = format!(
                    "account \"{}\": the password could not be read: {e}",
                    a.name
                )
            }
        }
        wait = (wait * 2).min(timing.max_backoff);
    }
}

/// Desktop notifications: the digest's alerts as batches are moved, its
/// summary when one is due (checked every 15 s).
async fn notify(
    mut digest: crate::notify::Digest,
    mut moved: tokio::sync::mpsc::UnboundedReceiver<Moved>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        tokio::select! {
            ev = moved.recv() => match ev {
                Some(m) => {
                    if let Some(w) = &m.warning {
                        crate::notify::show(w).await;
                    }
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
}
