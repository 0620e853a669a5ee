//! The background agent (`backscatter watch`): for each account and watched
//! mailbox, catch up on what arrived while it was not running, then IDLE
//! and classify and move each new message as it arrives; reconnect with
//! capped exponential backoff after any failure; stop an account whose
//! login is refused; finish the move in flight and save state on shutdown.
//!
//! The decisions are the same pure ones `clean` uses; this module owns the
//! loop, its state file and its timing.

use crate::classify::{classify_at, Context, Decision};
use crate::clean::{self, classify_batch, move_batch, reconcile, CleanError, Dirs, Row};
use crate::config::Account;
use crate::fingerprint::Identity;
use crate::imap::pipeline::{Pipeline, Prefix};
use crate::imap::{self, ErrorKind, IdleOutcome, Imap, ImapError};
use crate::origin::{self, Evidence};
use crate::secret::Secret;
use crate::{journal, plan, quarantine, sentsync};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Timing of the loop (tests shorten them).
#[derive(Debug, Clone)]
pub struct Timing {
    /// Re-IDLE after this long (servers drop IDLE after 29-30 minutes).
    pub reidle: Duration,
    /// No traffic at all for this long means the connection is dead
    /// (Dovecot sends a keepalive every 2 minutes by default).
    pub silent: Duration,
    /// Poll interval where the server has no IDLE.
    pub poll: Duration,
    /// While IDLE, look at the mailbox this often until the server has
    /// pushed news of new mail once (then only every `reidle`).
    pub check: Duration,
    /// While IDLE on a server that has shown it does not push (new mail
    /// found by a timed look, never announced: Courier, UW imapd, GNU
    /// Mailutils), look this often.
    pub nopush_check: Duration,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// At most one Sieve re-upload per this interval, when the sent index
    /// changed and `backscatter sieve install` was run.
    pub sieve_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            reidle: Duration::from_secs(25 * 60),
            silent: Duration::from_secs(5 * 60),
            poll: Duration::from_secs(60),
            check: Duration::from_secs(60),
            nopush_check: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
            sieve_every: Duration::from_secs(10 * 60),
        }
    }
}

impl Timing {
    /// The defaults, with `BACKSCATTER_IDLE_CHECK` (seconds) overriding
    /// `check` and capping `nopush_check` and `poll` (for tests and
    /// impatient users).
    pub fn from_env() -> Timing {
        let mut t = Timing::default();
        if let Some(s) = std::env::var("BACKSCATTER_IDLE_CHECK")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
        {
            t.check = Duration::from_secs_f64(s);
            t.nopush_check = t.nopush_check.min(t.check);
            t.poll = t.poll.min(t.check);
        }
        t
    }
}

/// Does the server announce new mail during IDLE? Learnt from what a
/// search finds after each wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    Unknown,
    /// A push was followed by new mail.
    Pushes,
    /// New mail was found by a timed look, never announced.
    Silent,
}

/// Per mailbox: where the agent got to.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub mailboxes: BTreeMap<String, MailboxState>,
    /// The sent index has held a message at some point: an empty one
    /// after that means Sent was renamed, archived or emptied, and the
    /// agent holds its verdicts ([`SentGuard`]).
    #[serde(default)]
    pub sent_seen: bool,
}

fn state_path(dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(dir, "watch", account, "json")
}

fn load_state(path: &Path) -> State {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(path: &Path, mailbox: &str, st: &MailboxState) -> Result<(), CleanError> {
    // Several mailboxes of one account share the file: read-modify-write.
    let mut all = load_state(path);
    all.mailboxes.insert(mailbox.to_string(), st.clone());
    write_state(path, &all)
}

fn write_state(path: &Path, all: &State) -> Result<(), CleanError> {
    if let Some(d) = path.parent() {
        crate::paths::private_dir(d).map_err(|e| CleanError::Io(e.to_string()))?;
    }
    let bytes = serde_json::to_vec(all).map_err(|e| CleanError::Io(e.to_string()))?;
    crate::paths::write_private_atomic(path, &bytes)
        .map_err(|e| CleanError::Io(format!("cannot save the agent's state: {e}")))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn jitter(d: Duration) -> Duration {
    // A cheap, dependency-free jitter of up to a quarter of the delay.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0) as u64;
    d + Duration::from_millis(nanos % (d.as_millis() as u64 / 4 + 1))
}

/// Watch one mailbox of one account until `shutdown` turns true. Returns an
/// error only for a failure retrying cannot fix (a refused login, a
/// configuration problem).
/// What one batch did, for notifications.
#[derive(Debug, Clone, Default)]
pub struct Moved {
    pub account: String,
    /// Messages moved to quarantine.
    pub count: usize,
    /// What the quoted originals of (at most [`ORIGIN_SAMPLE`] of) the
    /// moved responses say about where the mail came from.
    pub originals: Vec<Evidence>,
    /// The same for the legitimate bounces seen (the user's own mail:
    /// their first hosts are the user's outbound hosts).
    pub own_bounces: Vec<Evidence>,
    /// A warning for the desktop as well as the log (the sent index
    /// became empty: [`SentGuard`]).
    pub warning: Option<crate::notify::Notice>,
}

/// Watches the size of the sent index for one watched mailbox, across
/// reconnections and restarts (the account's state file remembers that
/// it once held mail).
///
/// The sent index is what tells the user's own bounces from forged ones.
/// When it becomes empty after having held mail, Sent was renamed,
/// archived or emptied (or a configured Sent mailbox was recreated empty):
/// every response would then count as backscatter, the user's own
/// bounces included. The agent then says so once (log and desktop) and
/// holds its verdicts: nothing is moved to quarantine until the index
/// holds a message again (the held mail stays where it is; `backscatter
/// clean` judges it later). A forged bounce left in INBOX costs a glance;
/// a real one hidden in quarantine can cost a lost delivery.
/// An index that never held anything (a new account that has sent
/// nothing yet) is warned about once and not held, as `clean` does.
pub(crate) struct SentGuard {
    state_file: PathBuf,
    events: Option<Events>,
    /// The index held a message once (persisted in the state file).
    seen: std::sync::atomic::AtomicBool,
    /// The empty index was reported (once until it fills again).
    said: std::sync::atomic::AtomicBool,
}

impl SentGuard {
    fn new(state_file: PathBuf, events: Option<Events>) -> SentGuard {
        let seen = load_state(&state_file).sent_seen;
        SentGuard {
            state_file,
            events,
            seen: std::sync::atomic::AtomicBool::new(seen),
            said: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Given the size of the index just built (`len` messages), say what
    /// changed and return whether moves are held.
    fn hold(&self, a: &Account, mailbox: &str, len: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if len > 0 {
            if self.said.swap(false, Relaxed) && self.seen.load(Relaxed) {
                info!(account = %a.name, mailbox = %mailbox, "the sent index holds {len} message(s) again: automated responses are judged and moved as before");
            }
            if !self.seen.swap(true, Relaxed) {
                let mut all = load_state(&self.state_file);
                all.sent_seen = true;
                if let Err(e) = write_state(&self.state_file, &all) {
                    warn!(account = %a.name, "{e}");
                }
            }
            return false;
        }
        let sent = a
            .sent
            .as_ref()
            .map_or_else(|| "the mailbox marked \\Sent".to_string(), |s| s.join(", "));
        if self.said.swap(true, Relaxed) {
            return self.seen.load(Relaxed);
        }
        if !self.seen.load(Relaxed) {
            warn!(account = %a.name, mailbox = %mailbox, "the sent index is empty (nothing in {sent} from the last {} days), so every bounce and auto-reply, including those to mail you did send, counts as backscatter: check sent = [...] names your Sent mailbox", a.sent_days);
            return false;
        }
        let body = format!(
            "The sent index of account \"{}\" is now empty ({sent} has no mail from the last {} days; was Sent renamed, archived or emptied?). Until it holds a message again, nothing is moved to quarantine: bounces and auto-replies stay in {mailbox}. Point sent = [...] at the mailbox that holds your sent mail, then run `backscatter clean`.",
            a.name, a.sent_days
        );
        warn!(account = %a.name, mailbox = %mailbox, "{body}");
        if let Some(tx) = &self.events {
            let _ = tx.send(Moved {
                account: a.name.clone(),
                warning: Some(crate::notify::Notice {
                    title: format!("backscatter: the sent index of \"{}\" is empty", a.name),
                    body,
                    urgent: false,
                }),
                ..Moved::default()
            });
        }
        true
    }
}

/// Reports of messages moved, for notifications.
pub type Events = tokio::sync::mpsc::UnboundedSender<Moved>;

/// Responses per batch fetched whole to read their originals' origin.
pub const ORIGIN_SAMPLE: usize = 20;

pub async fn watch_mailbox(
    a: Account,
    secret: Secret,
    mailbox: String,
    dirs: Dirs,
    timing: Timing,
    shutdown: watch::Receiver<bool>,
    events: Option<Events>,
) -> Result<(), CleanError> {
    let mut backoff = timing.backoff;
    // Kept across reconnections: a broken file is reported once.
    let mut rules = a.rules.clone().map(crate::filter::RulesFile::new);
    // Likewise an empty sent index.
    let guard = SentGuard::new(state_path(&dirs.state, &a.name), events.clone());
    // A server that lists IDLE but refuses it: polled from then on, across
    // reconnections.
    let mut idle_refused = false;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match session(
            &a,
            &secret,
            &mailbox,
            &dirs,
            &timing,
            shutdown.clone(),
            &events,
            rules.as_mut(),
            &guard,
            &mut idle_refused,
        )
        .await
        {
            Ok(()) => return Ok(()),
            // Retrying cannot fix these: the caller says so once.
            Err(CleanError::Imap(e))
                if matches!(e.kind, ErrorKind::Auth | ErrorKind::Unsupported) =>
            {
                return Err(CleanError::Imap(e));
            }
            Err(CleanError::Config(m)) => return Err(CleanError::Config(m)),
            Err(e) => {
                let wait = jitter(backoff);
                warn!(
                    account = %a.name,
                    mailbox = %mailbox,
                    "{e}; reconnecting in {:.0} s",
                    wait.as_secs_f64()
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(shutdown.clone()) => return Ok(()),
                }
                backoff = (backoff * 2).min(timing.max_backoff);
            }
        }
    }
}

/// One connection's life: catch up, then IDLE/poll until it fails or we
/// stop. `rules_file`: the user's rules, read again before each batch.
#[allow(clippy::too_many_arguments)]
async fn session(
    a: &Account,
    secret: &Secret,
    mailbox: &str,
    dirs: &Dirs,
    timing: &Timing,
    shutdown: watch::Receiver<bool>,
    events: &Option<Events>,
    mut rules_file: Option<&mut crate::filter::RulesFile>,
    guard: &SentGuard,
    idle_refused: &mut bool,
) -> Result<(), CleanError> {
    let mut imap = imap::connect(a, secret).await?;
    // The state file keeps the configured name; the server gets its own.
    let configured = mailbox;
    let a = &imap.resolve_account(a);
    let mailbox = &imap.resolve(configured);
    if *mailbox == a.quarantine {
        return Err(CleanError::Config(format!(
            "\"{configured}\" is the quarantine mailbox of account \"{}\" on this server: watch another mailbox",
            a.name
        )));
    }
    info!(account = %a.name, mailbox = %mailbox, "connected to {}", a.imap);
    // Before anything is journaled: retrying cannot make this server safe.
    imap.can_move_safely()?;
    crate::clean::refuse_unfit_quarantine(&mut imap, a).await?;
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let recovered = reconcile(&mut imap, a, &journal_path).await?;
    if recovered > 0 {
        info!(account = %a.name, "finished {recovered} moves an interrupted run had left");
    }
    crate::clean::compact_journal(&journal_path);
    imap.ensure_mailbox(&a.quarantine).await?;
    // The user's own rules, run on each new message that is not
    // quarantined (their moves journaled apart, undone by restore --rules).
    // A broken rules file never stops the agent: it is said once, the
    // rules wait until it is fixed, and the policy goes on.
    if let Some(f) = rules_file.as_deref_mut() {
        let how = f.refresh();
        say(a, mailbox, f.path(), how);
    }
    let rules_journal = crate::filter::journal_path(&dirs.data, &a.name);
    if rules_file.is_some() {
        reconcile(&mut imap, a, &rules_journal).await?;
    }
    let existing: std::collections::HashSet<String> = if rules_file.is_some() {
        imap.list().await?.into_iter().map(|m| m.name).collect()
    } else {
        Default::default()
    };
    let state_file = state_path(&dirs.state, &a.name);
    // The sent index, and what Sent looks like, before the mailbox is
    // selected: a wake then only asks whether Sent changed. A failure here
    // is reported where the index is needed.
    let view = match sentsync::refresh_marked(&mut imap, a, &dirs.state, crate::clock::now()).await
    {
        Ok((index, _, marks)) => {
            guard.hold(a, mailbox, index.len());
            Some(SentView { index, marks })
        }
        Err(sentsync::SyncError::Imap(e))
            if matches!(e.kind, ErrorKind::Lost | ErrorKind::Unparsable) =>
        {
            return Err(e.into())
        }
        Err(_) => None,
    };
    let sel = imap.open_named(mailbox, false).await?;
    let mut runner = rules_file.as_ref().map(|_| crate::filter::Runner {
        a,
        path: rules_journal.clone(),
        mailbox: mailbox.to_string(),
        uidvalidity: sel.uid_validity,
        existing,
        created: Default::default(),
        dry_run: false,
    });
    let mut st = load_state(&state_file)
        .mailboxes
        .get(configured)
        .cloned()
        .unwrap_or_default();
    let first_run = st.uidvalidity != sel.uid_validity;
    if first_run {
        st = MailboxState {
            uidvalidity: sel.uid_validity,
            last_uid: 0,
        };
    }
    let mut n = 0usize;
    let mut sieve_mark: Option<i64> = None;
    let mut push = Push::Unknown;
    // How the last wait ended (None: no wait since the last look).
    let mut woke: Option<IdleOutcome> = None;
    // Commands in flight: the IDLE, and what is sent with it.
    let mut p = Pipeline::new();
    let mut view = view;
    // Search the mailbox before waiting (catch-up, and after any round
    // that may have missed news).
    let mut look = true;
    let mut idling_said = false;
    // Since the last wake: round trips (the counter then), messages, moves.
    let mut wake: Option<Wake> = None;
    let here = Here {
        a,
        mailbox,
        dirs,
        journal_path: &journal_path,
        uidvalidity: sel.uid_validity,
        want_origins: events.is_some(),
        guard,
    };
    loop {
        if look {
            // Catch up / process whatever is new.
            let query = if first_run && st.last_uid == 0 {
                let since = crate::clock::now() - i64::from(a.catch_up_days) * 86_400;
                format!("SINCE {}", imap::imap_date(since))
            } else {
                format!("UID {}:*", st.last_uid + 1)
            };
            let uids: Vec<u32> = imap
                .uid_search(&query)
                .await?
                .into_iter()
                .filter(|u| *u > st.last_uid)
                .collect();
            if let Some(how) = woke.take() {
                push = learn(push, how, !uids.is_empty());
            }
            for chunk in uids.chunks(clean::BATCH) {
                // The rules as the file says now (an edit takes effect here).
                if let Some(f) = rules_file.as_deref_mut() {
                    let how = f.refresh();
                    say(a, mailbox, f.path(), how);
                }
                let rules = runner
                    .as_mut()
                    .zip(rules_file.as_deref().and_then(|f| f.rules()));
                let moved = process(&mut imap, &here, &mut view, chunk, n, rules).await?;
                if let Some(w) = wake.as_mut() {
                    w.new += chunk.len();
                    w.moved += moved.count;
                }
                if let (Some(tx), true) = (events, moved.count > 0 || !moved.own_bounces.is_empty())
                {
                    let _ = tx.send(moved);
                }
                n += 1;
                st.last_uid = st.last_uid.max(*chunk.iter().max().unwrap_or(&0));
                save_state(&state_file, configured, &st)?;
            }
            if !uids.is_empty() {
                // Mail that came while we were busy may have been announced
                // only in a SELECT reply (absorbed), and a server does not
                // repeat it once IDLE starts: look again before waiting.
                continue;
            }
            if st.last_uid == 0 {
                // Nothing yet: remember where "now" is, so that a restart
                // does not re-read the catch-up window.
                st.last_uid = sel.uid_next.saturating_sub(1);
                save_state(&state_file, configured, &st)?;
            }
        }
        if !p.in_idle() && !p.has_news() {
            if refresh_sieve(&mut imap, a, secret, mailbox, dirs, timing, &mut sieve_mark).await? {
                // It re-selected the mailbox: look again before waiting.
                look = true;
                continue;
            }
            if *shutdown.borrow() {
                imap.logout().await;
                return Ok(());
            }
            if !imap.has("IDLE") || *idle_refused {
                tokio::select! {
                    _ = tokio::time::sleep(timing.poll) => {}
                    _ = stopped(shutdown.clone()) => {
                        imap.logout().await;
                        return Ok(());
                    }
                }
                imap.noop().await?;
                look = true;
                continue;
            }
            if imap.take_announced() {
                // Announced in a command's reply, which the server does
                // not repeat once IDLE starts.
                woke = Some(IdleOutcome::Announced);
                look = true;
                continue;
            }
            p.idle(&mut imap).await?;
            if !idling_said {
                // Once per connection: from here on, new mail is pushed.
                idling_said = true;
                info!(account = %a.name, mailbox = %mailbox, "waiting for new mail (IDLE)");
            }
        }
        if let Some(w) = wake.take() {
            let round_trips = imap::counters().2.saturating_sub(w.round_trips);
            debug!(
                account = %a.name,
                mailbox = %mailbox,
                "new mail handled: {} message(s), {} quarantined, {round_trips} round trips from the wake to IDLE again",
                w.new,
                w.moved
            );
        }
        // Wait for more.
        let outcome = match p.take_news() {
            // An EXISTS came with the answers of the last round.
            Some(_) => IdleOutcome::Announced,
            None => {
                let max = match push {
                    Push::Pushes => timing.reidle,
                    Push::Unknown => timing.check.min(timing.reidle),
                    Push::Silent => timing.nopush_check,
                };
                match p
                    .wait_idle(&mut imap, max, timing.silent, stopped(shutdown.clone()))
                    .await
                {
                    Ok(o) => o,
                    // The server lists IDLE but answers it NO or BAD: it is
                    // treated as missing (polled), not as a broken
                    // connection to log in to again and again.
                    Err(e)
                        if matches!(e.kind, ErrorKind::No | ErrorKind::Protocol)
                            && e.message.contains("start IDLE")
                            && !p.in_idle() =>
                    {
                        *idle_refused = true;
                        warn!(
                            account = %a.name,
                            mailbox = %mailbox,
                            "{e}: checking for new mail every {} s instead",
                            timing.poll.as_secs()
                        );
                        look = true;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if outcome == IdleOutcome::Stopped {
            p.end_idle(&mut imap).await?;
            p.drain(&mut imap).await?;
            imap.logout().await;
            return Ok(());
        }
        wake = Some(Wake {
            round_trips: imap::counters().2,
            ..Wake::default()
        });
        let ctx = Arrived {
            last_uid: st.last_uid,
            n,
            pipeline_idle: runner.is_none()
                && !sieve_due(a, mailbox, dirs, timing, sieve_mark)
                && !*shutdown.borrow(),
        };
        // The rules as the file says now (an edit takes effect here).
        if let Some(f) = rules_file.as_deref_mut() {
            let how = f.refresh();
            say(a, mailbox, f.path(), how);
        }
        let rules = runner
            .as_mut()
            .zip(rules_file.as_deref().and_then(|f| f.rules()));
        match arrival(&mut imap, &mut p, &here, &mut view, ctx, rules).await {
            Ok(r) => {
                match r.found_new {
                    Some(found) => push = learn(push, outcome, found),
                    // Not looked at here: the search will say.
                    None => woke = Some(outcome),
                }
                if let Some(w) = wake.as_mut() {
                    w.new += r.handled;
                    w.moved += r.moved.count;
                }
                if r.handled > 0 {
                    n += 1;
                }
                if let (Some(tx), true) =
                    (events, r.moved.count > 0 || !r.moved.own_bounces.is_empty())
                {
                    let _ = tx.send(r.moved);
                }
                if r.last_uid > st.last_uid {
                    st.last_uid = r.last_uid;
                    save_state(&state_file, configured, &st)?;
                }
                look = r.look;
            }
            Err(CleanError::Imap(e)) if e.kind == ErrorKind::Unparsable => {
                // As in `clean`: a new connection, moves whose answers were
                // lost settled from the journal, then a search and the
                // sweep's fetches, which contain such faults.
                warn!(account = %a.name, mailbox = %mailbox, "{e}: reconnecting and reading the new mail one step at a time");
                imap.reconnect().await?;
                p = Pipeline::new();
                reconcile(&mut imap, a, &journal_path).await?;
                woke = Some(outcome);
                look = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What the agent watches, for one session.
struct Here<'a> {
    a: &'a Account,
    mailbox: &'a str,
    dirs: &'a Dirs,
    journal_path: &'a Path,
    uidvalidity: u32,
    /// Read the origin of moved responses and legitimate bounces (for
    /// notifications).
    want_origins: bool,
    /// Holds the moves while the sent index is empty after it held mail.
    guard: &'a SentGuard,
}

/// The sent index of a session and what Sent looked like when it was
/// built, so that a STATUS can tell whether it is still current.
struct SentView {
    index: crate::sent::SentIndex,
    marks: sentsync::Marks,
}

/// Counted from a wake until the agent is IDLE again.
#[derive(Debug, Default)]
struct Wake {
    /// [`imap::ROUND_TRIPS`] at the wake.
    round_trips: u64,
    new: usize,
    moved: usize,
}

/// Where a wake finds the agent.
#[derive(Debug, Clone, Copy)]
struct Arrived {
    /// The highest UID handled so far.
    last_uid: u32,
    /// Batches so far (for journal batch names).
    n: usize,
    /// May IDLE start again behind the round's last command (nothing else
    /// is due before waiting: no rules to run, no Sieve refresh, no stop)?
    pipeline_idle: bool,
}

/// What [`arrival`] did.
#[derive(Debug, Default)]
struct Handled {
    /// Whether the wake found new mail (`None`: it could not tell, and a
    /// search follows).
    found_new: Option<bool>,
    /// Messages classified.
    handled: usize,
    /// The highest UID handled, or the previous one.
    last_uid: u32,
    moved: Moved,
    /// Search before waiting again: more mail than one round takes, news
    /// that came with the answers, or the mailbox was re-selected.
    look: bool,
}

/// Say what reading the rules file found: nothing when unchanged; a
/// warning naming the file and the line when it is broken (once per
/// version of the file: [`crate::filter::RulesFile::refresh`] reports a
/// version once).
fn say(a: &Account, mailbox: &str, path: &Path, how: crate::filter::Reload) {
    use crate::filter::Reload;
    match how {
        Reload::Unchanged => {}
        Reload::Loaded { first: true } => {
            info!(account = %a.name, mailbox = %mailbox, "rules: running {}", path.display());
        }
        Reload::Loaded { first: false } => {
            info!(account = %a.name, mailbox = %mailbox, "rules: {} changed; the new rules run from now on", path.display());
        }
        Reload::Broken(why) => {
            warn!(account = %a.name, mailbox = %mailbox, "rules: {why}; your rules do not run until the file is fixed (new mail is still checked for backscatter, and the file is read again when mail arrives)");
        }
    }
}

/// What a look after a wake teaches: new mail after a push means the
/// server pushes; new mail after a timed wake means it does not (Courier,
/// UW imapd and GNU Mailutils say nothing during IDLE).
fn learn(push: Push, woke: IdleOutcome, found_new: bool) -> Push {
    match (woke, found_new) {
        (IdleOutcome::NewData, true) => Push::Pushes,
        (IdleOutcome::Refresh | IdleOutcome::Silent, true) => Push::Silent,
        _ => push,
    }
}

/// Is a refresh of the server-side script ([`refresh_sieve`]) due: this is
/// the account's first watched mailbox, `sieve install` was run for it,
/// and the last refresh (`mark`, Unix seconds) is `timing.sieve_every` ago?
fn sieve_due(a: &Account, mailbox: &str, dirs: &Dirs, timing: &Timing, mark: Option<i64>) -> bool {
    let now = crate::clock::now();
    a.watch.first().map(String::as_str) == Some(mailbox)
        && crate::paths::account_file(&dirs.state, "sieve", &a.name, "json").exists()
        && mark.is_none_or(|t| now - t >= timing.sieve_every.as_secs() as i64)
}

/// Keep the server-side script fresh: when `sieve install` was run for
/// this account, at most once per `timing.sieve_every`, and only when the
/// sent index changed since the last upload, regenerate and upload it.
/// Failures are logged; they never stop the agent. Returns whether it
/// selected another mailbox (and the watched one again).
async fn refresh_sieve(
    imap: &mut Imap,
    a: &Account,
    secret: &Secret,
    mailbox: &str,
    dirs: &Dirs,
    timing: &Timing,
    mark: &mut Option<i64>,
) -> Result<bool, CleanError> {
    if !sieve_due(a, mailbox, dirs, timing, *mark) {
        return Ok(false);
    }
    let now = crate::clock::now();
    *mark = Some(now);
    let (index, _) = sentsync::refresh(imap, a, &dirs.state, now).await?;
    imap.select(mailbox).await?;
    let lists = crate::sieve::SentLists::from_index(&index, now);
    let fingerprint = lists.fingerprint();
    let fp_file = crate::paths::account_file(&dirs.state, "sieve", &a.name, "fingerprint");
    if std::fs::read_to_string(&fp_file).ok().as_deref() == Some(fingerprint.as_str()) {
        return Ok(true);
    }
    let upload = async {
        let mut s = crate::managesieve::Session::connect(a, secret).await?;
        let script = crate::managesieve::upload_script(&mut s, a, &lists)
            .await?
            .script;
        crate::managesieve::refresh_copy(&mut s, &script).await?;
        s.logout().await;
        Ok::<_, String>(script)
    };
    match upload.await {
        Ok(script) => {
            let _ = crate::paths::write_private_atomic(&fp_file, fingerprint.as_bytes());
            info!(
                account = %a.name,
                "sieve: uploaded a fresh script ({} sent Message-IDs)",
                script.ids_included
            );
        }
        Err(e) => warn!(account = %a.name, "sieve: could not refresh the server-side script: {e}"),
    }
    Ok(true)
}

/// Classify new messages and move the backscatter, the sweep's way (for a
/// catch-up, a burst, and servers without IDLE; [`arrival`] takes mail
/// that comes during IDLE). Before moving, the sent index is refreshed and
/// those messages classified again, so that the bounce of a message sent a
/// minute ago is recognised. The last index built is left in `view`.
async fn process(
    imap: &mut Imap,
    here: &Here<'_>,
    view: &mut Option<SentView>,
    uids: &[u32],
    n: usize,
    rules: Option<(&mut crate::filter::Runner<'_>, &crate::rules::Rules)>,
) -> Result<Moved, CleanError> {
    let Here {
        a,
        mailbox,
        dirs,
        journal_path,
        uidvalidity,
        want_origins,
        guard,
    } = *here;
    let (sent, stats, marks) =
        sentsync::refresh_marked(imap, a, &dirs.state, crate::clock::now()).await?;
    imap.select(mailbox).await?;
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let mut rows = classify_batch(imap, uids, &ctx).await?;
    let missing: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| !rows.iter().any(|r| r.uid == *u))
        .collect();
    say_unjudged(imap, a, mailbox, &missing).await?;
    let is_forged = |r: &Row| r.verdict.verdict == Decision::Backscatter;
    let mut latest = None;
    if rows.iter().any(is_forged) {
        // The sent index again, in case the original was sent just now,
        // and reaching back far enough for the oldest of them (mail that
        // came while the agent was not running, or was moved in by hand,
        // is judged against the sent mail of the days before it arrived).
        let now = crate::clock::now();
        let oldest = rows
            .iter()
            .filter(|r| is_forged(r))
            .filter_map(|r| r.arrived)
            .filter(|t| !crate::sent::window::covers(stats.reach, *t, a.sent_days))
            .min();
        let reach = oldest.map_or(sentsync::Reach::Now, sentsync::Reach::Since);
        let (sent2, stats, marks2) =
            sentsync::refresh_covering(imap, a, &dirs.state, now, reach).await?;
        imap.select(mailbox).await?;
        if stats.fetched > 0 || oldest.is_some() {
            let ctx2 = Context {
                sent: &sent2,
                own_addresses: &a.addresses,
            };
            let again: Vec<u32> = rows
                .iter()
                .filter(|r| is_forged(r))
                .map(|r| r.uid)
                .collect();
            // The second verdicts replace the first (the log says them).
            for f in classify_batch(imap, &again, &ctx2).await? {
                if let Some(r) = rows.iter_mut().find(|r| r.uid == f.uid) {
                    *r = f;
                }
            }
        }
        latest = Some(SentView {
            index: sent2,
            marks: marks2,
        });
    }
    let mut forged: Vec<&Row> = rows.iter().filter(|r| is_forged(r)).collect();
    let len = latest.as_ref().map_or(sent.len(), |v| v.index.len());
    let on_hold: Vec<u32> = match guard.hold(a, mailbox, len) {
        true => forged.drain(..).map(|r| r.uid).collect(),
        false => Vec::new(),
    };
    let mut moved = Moved {
        account: a.name.clone(),
        count: forged.len(),
        ..Moved::default()
    };
    if want_origins {
        // Before the move, while the UIDs are still these: a sample of
        // the forged responses and the legitimate bounces, whole.
        let sample: Vec<u32> = forged.iter().take(ORIGIN_SAMPLE).map(|r| r.uid).collect();
        let legit: Vec<u32> = rows
            .iter()
            .filter(|r| r.verdict.verdict == Decision::Legitimate)
            .take(ORIGIN_SAMPLE)
            .map(|r| r.uid)
            .collect();
        moved.originals = origins_of(imap, &sample).await?;
        moved.own_bounces = origins_of(imap, &legit).await?;
    }
    let m = if forged.is_empty() {
        clean::Moved::default()
    } else {
        move_batch(imap, a, journal_path, mailbox, uidvalidity, &forged, n).await?
    };
    moved.count = m.moved.len();
    // One line per message, saying what was done and why.
    let settled = clean::MoveOutcome {
        moved: m.moved.clone(),
        elsewhere: m.elsewhere.clone(),
        gone: m.gone.clone(),
    };
    for r in &rows {
        if on_hold.contains(&r.uid) {
            log_held(a, mailbox, r);
            continue;
        }
        log_row(a, mailbox, r, &settled, m.kept_by_user.contains(&r.uid));
    }
    if let Some((runner, rules)) = rules {
        // Held backscatter is not offered to the rules either.
        let forged: Vec<u32> = forged.iter().map(|r| r.uid).chain(on_hold).collect();
        run_rules(runner, rules, imap, here, uids, &forged, &ctx, n).await?;
    }
    *view = Some(latest.unwrap_or(SentView { index: sent, marks }));
    Ok(moved)
}

/// Say what became of UIDs the server returned nothing readable for (one
/// `UID SEARCH`, only when there are any): gone since (another client, or
/// a `clean` beside this agent, moved or deleted them: nothing to warn
/// about, logged at debug level), or still there and unreadable (left
/// where they are, a warning each).
async fn say_unjudged(
    imap: &mut Imap,
    a: &Account,
    mailbox: &str,
    uids: &[u32],
) -> Result<(), ImapError> {
    if uids.is_empty() {
        return Ok(());
    }
    let present = imap
        .uid_search(&format!("UID {}", imap::uid_set(uids)))
        .await?;
    for &uid in uids {
        if present.contains(&uid) {
            warn!(account = %a.name, mailbox = %mailbox, uid, "could not be judged (the server returned nothing readable for it): left where it is");
        } else {
            debug!(account = %a.name, mailbox = %mailbox, uid, "gone before it could be read (moved or deleted by another client)");
        }
    }
    Ok(())
}

/// Mail that came during IDLE, in as few round trips as the server
/// allows (RFC 3501 section 5.5 pipelining; RFC 2177 IDLE), with the same
/// verdicts and the same journal as [`process`]:
///
/// 1. One flight: `DONE`, `UID FETCH last+1:last+16` of size, flags and
///    the first [`plan::ARRIVAL_PREFIX`] bytes (all of nearly every
///    automated response), `UID SEARCH` for UIDs beyond those (a burst,
///    left to [`process`]), and `STATUS (UIDVALIDITY UIDNEXT)` of each
///    Sent mailbox. One round trip.
/// 2. Only when Sent changed (a UIDNEXT or UIDVALIDITY differs from the
///    last refresh, or a sent message aged out of the window): the sent
///    index is refreshed and the mailbox selected again. Only for a
///    longer message that may be automated: the rest of what the
///    classifier reads (one FETCH); a longer `multipart/mixed` one with
///    no sign from the sending side goes through the sweep's plan.
/// 3. The backscatter's intents are journaled; then one flight: a FETCH
///    of whole messages whose origin is wanted and not yet in hand, the
///    `UID MOVE`, and (with `pipeline_idle`) IDLE again. One round trip,
///    and the move is done on the server half-way through it.
///
/// Without MOVE the COPY fallback runs alone ([`Imap::uid_move_mapped`]).
/// A FETCH the server refuses leaves the new mail to a search and
/// [`process`]; a refused MOVE is reconciled from the journal.
async fn arrival(
    imap: &mut Imap,
    p: &mut Pipeline,
    here: &Here<'_>,
    view: &mut Option<SentView>,
    at: Arrived,
    rules: Option<(&mut crate::filter::Runner<'_>, &crate::rules::Rules)>,
) -> Result<Handled, CleanError> {
    let Here {
        a,
        mailbox,
        dirs,
        journal_path,
        uidvalidity,
        want_origins,
        guard,
    } = *here;
    let last = at.last_uid;
    let top = last.saturating_add(plan::ARRIVAL_BATCH);
    let mut out = Handled {
        last_uid: last,
        moved: Moved {
            account: a.name.clone(),
            ..Moved::default()
        },
        ..Handled::default()
    };
    // 1. One flight.
    p.clear_data();
    let idle = p.end_idle(imap).await?;
    let fetch = p
        .fetch_set(
            imap,
            &format!("{}:{top}", last.saturating_add(1)),
            &plan::arrival_items(),
        )
        .await?;
    let search = p
        .search(imap, &format!("UID {}:*", top.saturating_add(1)))
        .await?;
    let sent_boxes: Vec<String> = view
        .as_ref()
        .map(|v| v.marks.mailboxes.keys().cloned().collect())
        .unwrap_or_default();
    for mb in &sent_boxes {
        p.status(imap, mb).await?;
    }
    p.drain(imap).await?;
    if let Some(t) = idle {
        if let Some(Err(e)) = p.take_finished(&t) {
            warn!(account = %a.name, mailbox = %mailbox, "{e}");
        }
    }
    if let Some(Err(e)) = p.take_finished(&fetch) {
        warn!(account = %a.name, mailbox = %mailbox, "{e}; searching instead");
        out.look = true;
        return Ok(out);
    }
    out.look = match p.take_finished(&search) {
        Some(Ok(_)) => p.found.iter().any(|u| *u > top),
        _ => true,
    };
    let status: BTreeMap<String, (u32, u32)> = sent_boxes
        .iter()
        .filter_map(|mb| Some((mb.clone(), *p.statuses.get(&Pipeline::status_key(mb))?)))
        .collect();
    let mut held: BTreeMap<u32, Prefix> = std::mem::take(&mut p.prefixes)
        .into_iter()
        .filter(|(u, _)| *u > last && *u <= top)
        .collect();
    out.found_new = Some(!held.is_empty() || out.look);
    if held.is_empty() {
        return Ok(out);
    }
    // 2. The sent index, refreshed only when Sent changed.
    let now = crate::clock::now();
    if !view
        .as_ref()
        .is_some_and(|v| v.marks.still_fresh(&status, now))
    {
        let (index, _, marks) = sentsync::refresh_marked(imap, a, &dirs.state, now).await?;
        let sel = imap.select(mailbox).await?;
        if sel.uid_validity != uidvalidity {
            return Err(CleanError::Imap(ImapError {
                kind: ErrorKind::Protocol,
                message: format!(
                    "mailbox \"{}\" was renumbered (UIDVALIDITY changed): starting over",
                    imap::shown(mailbox)
                ),
            }));
        }
        *view = Some(SentView { index, marks });
        // The SELECT's reply may have announced more.
        out.look = true;
    }
    let Some(v) = view.as_ref() else {
        return Ok(out);
    };
    let ctx = Context {
        sent: &v.index,
        own_addresses: &a.addresses,
    };
    let mut rows: Vec<Row> = Vec::with_capacity(held.len());
    let mut rest: Vec<u32> = Vec::new();
    let mut structure: Vec<u32> = Vec::new();
    for (uid, pre) in &held {
        match plan::after_prefix(&pre.bytes, pre.size) {
            plan::Next::Classify | plan::Next::Settled => rows.push(clean::row(
                *uid,
                &pre.bytes,
                classify_at(&pre.bytes, &ctx, pre.arrived),
                pre.arrived,
            )),
            plan::Next::Rest => rest.push(*uid),
            // A header longer than the first fetch, or a structure to
            // look at: the sweep's plan, which reads either first.
            plan::Next::Structure | plan::Next::Header => structure.push(*uid),
        }
    }
    if !rest.is_empty() {
        let tag = p
            .fetch(imap, &rest, &plan::rest_item_after(plan::ARRIVAL_PREFIX))
            .await?;
        p.wait(imap, &tag).await??;
        for uid in rest {
            if let Some(pre) = held.get_mut(&uid) {
                if let Some(more) = p.rests.remove(&uid) {
                    pre.bytes.extend_from_slice(&more);
                }
                rows.push(clean::row(
                    uid,
                    &pre.bytes,
                    classify_at(&pre.bytes, &ctx, pre.arrived),
                    pre.arrived,
                ));
            }
        }
    }
    if !structure.is_empty() {
        rows.extend(classify_batch(imap, &structure, &ctx).await?);
        let missing: Vec<u32> = structure
            .iter()
            .copied()
            .filter(|u| !rows.iter().any(|r| r.uid == *u))
            .collect();
        say_unjudged(imap, a, mailbox, &missing).await?;
    }
    rows.sort_by_key(|r| r.uid);
    // Backscatter that arrived before the index reaches back far enough
    // to judge it (an old message moved in by hand): the batch is left to
    // the search and [`process`], which widens the index first.
    if rows.iter().any(|r| {
        r.verdict.verdict == Decision::Backscatter
            && r.arrived
                .is_some_and(|t| !crate::sent::window::covers(v.marks.reach, t, a.sent_days))
    }) {
        out.look = true;
        return Ok(out);
    }
    out.handled = held.len();
    out.last_uid = held.keys().copied().max().unwrap_or(last);
    // 3. Journal, then move in one flight with IDLE again.
    let mut forged: Vec<&Row> = rows
        .iter()
        .filter(|r| r.verdict.verdict == Decision::Backscatter)
        .collect();
    let on_hold: Vec<u32> = match guard.hold(a, mailbox, v.index.len()) {
        true => forged.drain(..).map(|r| r.uid).collect(),
        false => Vec::new(),
    };
    let mut ids: HashMap<u32, Identity> = forged
        .iter()
        .filter_map(|r| {
            let pre = held.get(&r.uid)?;
            plan::identity(r.uid, &pre.bytes, pre.size?, pre.flags.clone()).map(|i| (r.uid, i))
        })
        .collect();
    let missing: Vec<u32> = forged
        .iter()
        .map(|r| r.uid)
        .filter(|u| !ids.contains_key(u))
        .collect();
    if !missing.is_empty() {
        ids.extend(
            quarantine::identities(imap, &missing)
                .await?
                .into_iter()
                .map(|i| (i.uid, i)),
        );
    }
    let kept = match journal_path.parent() {
        Some(dir) => quarantine::load_kept(&quarantine::kept_path(dir, &a.name)).map_err(|e| {
            CleanError::Io(format!("cannot read the list of restored messages: {e}"))
        })?,
        None => Default::default(),
    };
    let batch = journal::batch_id(crate::clock::now(), at.n);
    let (mut intents, kept_by_user) =
        clean::intents(a, mailbox, uidvalidity, &forged, &ids, &kept, &batch);
    let to_move: Vec<u32> = intents.iter().map(|e| e.uid).collect();
    // Whole messages for their origin: the moved ones and the legitimate
    // bounces, at most ORIGIN_SAMPLE each; the bytes in hand do when they
    // are all the origin reader looks at.
    let (sample, legit): (Vec<u32>, Vec<u32>) = if want_origins {
        (
            to_move.iter().copied().take(ORIGIN_SAMPLE).collect(),
            rows.iter()
                .filter(|r| r.verdict.verdict == Decision::Legitimate)
                .take(ORIGIN_SAMPLE)
                .map(|r| r.uid)
                .collect(),
        )
    } else {
        Default::default()
    };
    let in_hand = |uid: &u32| {
        held.get(uid).is_some_and(|pre| {
            pre.size
                .is_some_and(|s| pre.bytes.len() as u64 >= u64::from(s))
                || pre.bytes.len() >= crate::mail::MAX_MESSAGE_BYTES
        })
    };
    let whole: Vec<u32> = sample
        .iter()
        .chain(&legit)
        .copied()
        .filter(|u| !in_hand(u))
        .collect();
    let _moving = match (intents.is_empty(), journal_path.parent()) {
        (false, Some(dir)) => Some(clean::hold_moves(dir, &a.name).await?),
        _ => None,
    };
    let _busy = (!intents.is_empty()).then(|| journal::in_flight(journal_path, &batch));
    if !intents.is_empty() && !imap.uses_move() {
        // The COPY fallback runs alone on the connection, after the
        // quarantine's UIDNEXT is noted.
        if p.end_idle(imap).await?.is_some() {
            out.look = true;
        }
        p.drain(imap).await?;
        clean::note_copy_floor(imap, &mut intents, &a.quarantine).await?;
    }
    if !intents.is_empty() {
        journal::append(journal_path, &intents)
            .map_err(|e| CleanError::Io(format!("cannot write the journal: {e}")))?;
    }
    let whole_tag = match whole.is_empty() {
        true => None,
        false => Some(p.fetch(imap, &whole, "BODY.PEEK[]").await?),
    };
    let mut settled = clean::MoveOutcome::default();
    if !to_move.is_empty() && imap.uses_move() {
        let tag = p.move_to(imap, &to_move, &a.quarantine).await?;
        if at.pipeline_idle && !out.look && rules.is_none() && !p.has_news() {
            p.idle(imap).await?;
        }
        let answer = p.wait(imap, &tag).await?;
        // A complete answer is committed at once, IDLE going on; anything
        // else (another client moved some of them first, a refusal) is
        // looked into alone on the connection.
        let complete = match &answer {
            Ok(Some(m)) => m.pairs.len() == to_move.len(),
            Ok(None) => !imap.has("UIDPLUS"),
            Err(_) => false,
        };
        if !complete {
            p.end_idle(imap).await?;
            p.drain(imap).await?;
            out.look = true;
        }
        settled = clean::settle_move(imap, a, journal_path, &batch, &intents, answer).await?;
    }
    if let Some(t) = &whole_tag {
        // Answered before the MOVE: no wait left.
        if let Err(e) = p.wait(imap, t).await? {
            warn!(account = %a.name, mailbox = %mailbox, "could not read the origin of the moved mail: {e}");
        }
    }
    if !to_move.is_empty() && !imap.uses_move() {
        // COPY + STORE + EXPUNGE: one step at a time, alone on the
        // connection.
        let answer = imap.uid_move_mapped(&to_move, &a.quarantine).await;
        settled = clean::settle_move(imap, a, journal_path, &batch, &intents, answer).await?;
    }
    let evidence = |uids: &[u32], p: &Pipeline| -> Vec<Evidence> {
        uids.iter()
            .filter_map(|u| match p.prefixes.get(u) {
                Some(whole) => origin::evidence(&whole.bytes),
                None => held.get(u).and_then(|pre| origin::evidence(&pre.bytes)),
            })
            .collect()
    };
    out.moved.originals = evidence(&sample, p);
    out.moved.own_bounces = evidence(&legit, p);
    out.moved.count = settled.moved.len();
    for r in &rows {
        if on_hold.contains(&r.uid) {
            log_held(a, mailbox, r);
            continue;
        }
        log_row(a, mailbox, r, &settled, kept_by_user.contains(&r.uid));
    }
    if let Some((runner, rules)) = rules {
        let uids: Vec<u32> = held.keys().copied().collect();
        let forged: Vec<u32> = forged.iter().map(|r| r.uid).chain(on_hold).collect();
        run_rules(runner, rules, imap, here, &uids, &forged, &ctx, at.n).await?;
    }
    Ok(out)
}

/// One line for a message judged backscatter but held ([`SentGuard`]).
fn log_held(a: &Account, mailbox: &str, r: &Row) {
    info!(
        account = %a.name,
        mailbox = %mailbox,
        uid = r.uid,
        "hold {} \"{}\": the sent index is empty, so it cannot be told from a response to your own mail; left where it is",
        r.verdict.kind.map_or("normal", |k| k.as_str()),
        crate::mail::printable(r.subject.as_deref().unwrap_or(""))
    );
}

/// One line per message, saying what was done and why (`settled`: what
/// became of the batch's move).
fn log_row(a: &Account, mailbox: &str, r: &Row, settled: &clean::MoveOutcome, kept_by_user: bool) {
    let subject = crate::mail::printable(r.subject.as_deref().unwrap_or(""));
    let reason = r.verdict.reasons.first().map(String::as_str).unwrap_or("");
    let action = if settled.moved.contains(&r.uid) {
        "quarantine"
    } else if settled.elsewhere.contains(&r.uid) {
        "already in quarantine (moved by another client)"
    } else if settled.gone.contains(&r.uid) {
        "gone (deleted or moved elsewhere by another client)"
    } else if kept_by_user {
        "keep (restored by the user, or on the keep list)"
    } else {
        "keep"
    };
    info!(
        account = %a.name,
        mailbox = %mailbox,
        uid = r.uid,
        "{action} {} \"{}\": {}",
        r.verdict.kind.map_or("normal", |k| k.as_str()),
        subject,
        reason
    );
}

/// The user's rules on the new messages `uids` that are not backscatter
/// (`forged`: a message judged backscatter is not offered to the rules),
/// nor handled by an earlier run killed before saving its place.
#[allow(clippy::too_many_arguments)]
async fn run_rules(
    runner: &mut crate::filter::Runner<'_>,
    rules: &crate::rules::Rules,
    imap: &mut Imap,
    here: &Here<'_>,
    uids: &[u32],
    forged: &[u32],
    ctx: &Context<'_>,
    n: usize,
) -> Result<(), CleanError> {
    let entries = journal::read(&runner.path)
        .map_err(|e| CleanError::Io(format!("cannot read the rules journal: {e}")))?;
    let done = crate::filter::handled(&entries, here.mailbox, here.uidvalidity);
    let rest: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| !forged.contains(u) && !done.contains(u))
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let mut summary = crate::filter::FilterSummary::default();
    let _moving = match runner.path.parent() {
        Some(dir) => Some(clean::hold_moves(dir, &here.a.name).await?),
        None => None,
    };
    runner
        .batch(imap, rules, &rest, ctx, n, &mut summary)
        .await?;
    if summary.moved + summary.copied + summary.flagged > 0 {
        info!(
            account = %here.a.name,
            mailbox = %here.mailbox,
            "rules: {} moved, {} copied, {} flagged",
            summary.moved,
            summary.copied,
            summary.flagged
        );
    }
    Ok(())
}

/// The origin evidence of whole messages (those that quote an original).
async fn origins_of(imap: &mut Imap, uids: &[u32]) -> Result<Vec<Evidence>, ImapError> {
    Ok(imap
        .uid_fetch(uids, "(UID BODY.PEEK[])")
        .await?
        .iter()
        .filter_map(|f| f.body())
        .filter_map(origin::evidence)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_look_after_a_wake_teaches() {
        use IdleOutcome::*;
        // New mail after a push: the server pushes.
        assert_eq!(learn(Push::Unknown, NewData, true), Push::Pushes);
        // New mail found by a timed look, never announced: it does not.
        assert_eq!(learn(Push::Unknown, Refresh, true), Push::Silent);
        assert_eq!(learn(Push::Pushes, Silent, true), Push::Silent);
        // Announced in a command's reply before IDLE: proves nothing.
        assert_eq!(learn(Push::Unknown, Announced, true), Push::Unknown);
        assert_eq!(learn(Push::Silent, Announced, true), Push::Silent);
        // Nothing new: nothing learnt.
        assert_eq!(learn(Push::Silent, Refresh, false), Push::Silent);
        assert_eq!(learn(Push::Pushes, NewData, false), Push::Pushes);
        // A server that starts pushing is trusted again.
        assert_eq!(learn(Push::Silent, NewData, true), Push::Pushes);
    }
}
