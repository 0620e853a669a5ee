//! The background agent (`backscatter watch`): for each account and watched
//! mailbox, catch up on what arrived while it was not running, then IDLE
//! and classify and move each new message as it arrives; reconnect with
//! capped exponential backoff after any failure; stop an account whose
//! login is refused; finish the move in flight and save state on shutdown.
//!
//! The decisions are the same pure ones `clean` uses; this module owns the
//! loop, its state file and its timing.

use crate::classify::{Context, Decision};
use crate::clean::{self, classify_batch, move_batch, reconcile, CleanError, Dirs, Row};
use crate::config::Account;
use crate::imap::{self, ErrorKind, IdleOutcome, Imap, ImapError};
use crate::journal;
use crate::origin::{self, Evidence};
use crate::secret::Secret;
use crate::sentsync;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

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
    /// `check` and capping `nopush_check` (for tests and impatient users).
    pub fn from_env() -> Timing {
        let mut t = Timing::default();
        if let Some(s) = std::env::var("BACKSCATTER_IDLE_CHECK")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
        {
            t.check = Duration::from_secs_f64(s);
            t.nopush_check = t.nopush_check.min(t.check);
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
    if let Some(d) = path.parent() {
        crate::paths::private_dir(d).map_err(|e| CleanError::Io(e.to_string()))?;
    }
    let bytes = serde_json::to_vec(&all).map_err(|e| CleanError::Io(e.to_string()))?;
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
    loop {
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
            let moved = process(
                &mut imap,
                a,
                mailbox,
                dirs,
                &journal_path,
                sel.uid_validity,
                chunk,
                n,
                events.is_some(),
                rules,
            )
            .await?;
            if let (Some(tx), true) = (events, moved.count > 0 || !moved.own_bounces.is_empty()) {
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
            // Nothing yet: remember where "now" is, so that a restart does
            // not re-read the catch-up window.
            st.last_uid = sel.uid_next.saturating_sub(1);
            save_state(&state_file, configured, &st)?;
        }
        if a.watch.first() == Some(mailbox)
            && refresh_sieve(&mut imap, a, secret, mailbox, dirs, timing, &mut sieve_mark).await?
        {
            // It re-selected the mailbox: look again before waiting.
            continue;
        }
        if *shutdown.borrow() {
            imap.logout().await;
            return Ok(());
        }
        // Wait for more.
        if imap.has("IDLE") {
            let max = match push {
                Push::Pushes => timing.reidle,
                Push::Unknown => timing.check.min(timing.reidle),
                Push::Silent => timing.nopush_check,
            };
            let (back, outcome) = imap
                .idle(max, timing.silent, stopped(shutdown.clone()))
                .await?;
            imap = back;
            woke = Some(outcome);
            match outcome {
                IdleOutcome::Stopped => {
                    imap.logout().await;
                    return Ok(());
                }
                IdleOutcome::Silent => imap.noop().await?,
                IdleOutcome::NewData | IdleOutcome::Announced | IdleOutcome::Refresh => {}
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(timing.poll) => {}
                _ = stopped(shutdown.clone()) => {
                    imap.logout().await;
                    return Ok(());
                }
            }
            imap.noop().await?;
        }
    }
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
    let installed = crate::paths::account_file(&dirs.state, "sieve", &a.name, "json");
    if !installed.exists() {
        return Ok(false);
    }
    let now = crate::clock::now();
    if mark.is_some_and(|t| now - t < timing.sieve_every.as_secs() as i64) {
        return Ok(false);
    }
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
        let script = crate::managesieve::upload_script(&mut s, a, &lists).await?;
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

/// Classify new messages and move the backscatter. Before moving, the sent
/// index is refreshed and those messages classified again, so that the
/// bounce of a message sent a minute ago is recognised.
#[allow(clippy::too_many_arguments)]
async fn process(
    imap: &mut Imap,
    a: &Account,
    mailbox: &str,
    dirs: &Dirs,
    journal_path: &Path,
    uidvalidity: u32,
    uids: &[u32],
    n: usize,
    want_origins: bool,
    rules: Option<(&mut crate::filter::Runner<'_>, &crate::rules::Rules)>,
) -> Result<Moved, CleanError> {
    let (sent, _) = sentsync::refresh(imap, a, &dirs.state, crate::clock::now()).await?;
    imap.select(mailbox).await?;
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let rows = classify_batch(imap, uids, &ctx).await?;
    for uid in uids.iter().filter(|u| !rows.iter().any(|r| r.uid == **u)) {
        warn!(account = %a.name, mailbox = %mailbox, uid, "could not be judged (the server returned nothing readable for it): left where it is");
    }
    let mut forged: Vec<&Row> = rows
        .iter()
        .filter(|r| r.verdict.verdict == Decision::Backscatter)
        .collect();
    let fresh;
    if !forged.is_empty() {
        // The sent index again, in case the original was sent just now.
        let (sent2, stats) = sentsync::refresh(imap, a, &dirs.state, crate::clock::now()).await?;
        imap.select(mailbox).await?;
        if stats.fetched > 0 {
            let ctx2 = Context {
                sent: &sent2,
                own_addresses: &a.addresses,
            };
            let again: Vec<u32> = forged.iter().map(|r| r.uid).collect();
            fresh = classify_batch(imap, &again, &ctx2).await?;
            forged = fresh
                .iter()
                .filter(|r| r.verdict.verdict == Decision::Backscatter)
                .collect();
        }
    }
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
    for r in &rows {
        let subject = crate::mail::printable(r.subject.as_deref().unwrap_or(""));
        let reason = r.verdict.reasons.first().map(String::as_str).unwrap_or("");
        let action = if m.moved.contains(&r.uid) {
            "quarantine"
        } else if m.kept_by_user.contains(&r.uid) {
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
    if let Some((runner, rules)) = rules {
        // A message quarantined as backscatter is not offered to the rules.
        // Nor one an earlier run (killed before saving its place) handled.
        let entries = journal::read(&runner.path)
            .map_err(|e| CleanError::Io(format!("cannot read the rules journal: {e}")))?;
        let done = crate::filter::handled(&entries, mailbox, uidvalidity);
        let rest: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| !forged.iter().any(|f| f.uid == *u) && !done.contains(u))
            .collect();
        if !rest.is_empty() {
            let mut summary = crate::filter::FilterSummary::default();
            runner
                .batch(imap, rules, &rest, &ctx, n, &mut summary)
                .await?;
            if summary.moved + summary.copied + summary.flagged > 0 {
                info!(
                    account = %a.name,
                    mailbox = %mailbox,
                    "rules: {} moved, {} copied, {} flagged",
                    summary.moved,
                    summary.copied,
                    summary.flagged
                );
            }
        }
    }
    Ok(moved)
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
