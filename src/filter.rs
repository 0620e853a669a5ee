//! `backscatter filter`: the user's own rules ([`crate::rules`]) run once
//! over a mailbox, and their undoing by `restore --rules` (moves back,
//! added flags taken off).
//!
//! Safety as `clean`'s: a journal of its own (`rules-journal-ACCOUNT.jsonl`
//! in the data dir, the same line format and intent/commit protocol as the
//! quarantine journal, so [`crate::clean`]'s reconciliation finishes a run
//! that was killed), one batch per destination, written and synced before
//! any command. A message once handled (its batch committed, or found
//! moved after a kill) is never filtered again, so a rerun neither copies
//! nor flags it twice.
//!
//! IMAP mapping ([`crate::rules::Plan`]): `fileinto` → UID MOVE into the
//! last mailbox when the message does not stay, UID COPY into the others;
//! flags → UID STORE `+FLAGS` (a copy's own flags are set for the COPY and
//! taken back after it). `fileinto` of a missing mailbox without `:create`
//! is a runtime error for that message, which then stays untouched, as
//! Pigeonhole's implicit keep.

use crate::clean::{CleanError, Dirs, Progress};
use crate::clock::now;
use crate::config::Account;
use crate::imap::{self, valid_flag, Imap};
use crate::journal::{self, Entry, Op};
use crate::restore::{RestoreFilter, RestoreSummary};
use crate::rules::{describe, Envelope, Plan, Rules, RulesError, VerdictEnv};
use crate::secret::Secret;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Messages fetched and filtered per batch.
const BATCH: usize = 100;

/// The rules journal of an account.
pub fn journal_path(data_dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(data_dir, "rules-journal", account, "jsonl")
}

#[derive(Debug, Clone)]
pub struct FilterOptions {
    pub mailbox: String,
    /// Only messages received since this Unix time (the first instant of
    /// the user's day): the server is asked for `SINCE` a day early, since
    /// it compares dates in a zone of its choosing ([`crate::day::search_since`]),
    /// and what arrived before is dropped by its INTERNALDATE.
    pub since: Option<i64>,
    pub dry_run: bool,
    /// Run the rules over messages an earlier run handled too (after the
    /// rules were edited).
    pub again: bool,
}

/// One message's result (listed by `--dry-run`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilterRow {
    pub uid: u32,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The actions, in `sieve-test`'s words.
    pub actions: Vec<String>,
    pub error: Option<String>,
}

/// What a run did; with [`FilterOptions::dry_run`], what a run would do,
/// counted the same way (only a refusal by the server, an error for the
/// message concerned, cannot be foreseen).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FilterSummary {
    /// The filtered mailbox as the server names it.
    pub mailbox: String,
    pub scanned: usize,
    /// Messages moved to another mailbox.
    pub moved: usize,
    /// Copies made.
    pub copied: usize,
    /// Messages whose flags were added to (moved ones included).
    pub flagged: usize,
    /// Messages that stay in the mailbox (flagged or copied ones
    /// included, and those whose rules failed).
    pub kept: usize,
    /// Messages skipped as handled by an earlier run.
    pub already: usize,
    /// Messages whose rules failed (left untouched).
    pub errors: usize,
    /// What went wrong, each distinct sentence once (the server's refusal
    /// quoted), at most [`MAX_ERROR_TEXTS`].
    pub error_texts: Vec<String>,
    /// Half-done moves of a killed run, finished.
    pub recovered: usize,
    /// Messages for which the rules computed `\Deleted` at run time (from
    /// a variable, a match group, an encoded character) and the engine
    /// dropped it: the other actions were carried out.
    pub dropped_deleted: usize,
    pub seconds: f64,
    #[serde(skip)]
    pub rows: Vec<FilterRow>,
}

/// How many distinct error sentences a [`FilterSummary`] keeps.
pub const MAX_ERROR_TEXTS: usize = 10;

impl FilterSummary {
    /// Count one message whose rules failed, keeping `text` (what went
    /// wrong, for the summary) if it is new.
    pub(crate) fn error(&mut self, text: String) {
        self.errors += 1;
        if self.error_texts.len() < MAX_ERROR_TEXTS && !self.error_texts.contains(&text) {
            self.error_texts.push(text);
        }
    }
}

/// UIDs of `mailbox` (at `uidvalidity`) that an earlier run handled: in a
/// committed batch, or found moved when a killed batch was reconciled, or
/// in a closed batch that moved nothing (its copies and flags may have been
/// applied: never again). Also the messages `restore --rules` moved back
/// into it (their new UIDs, from the server's COPYUID): an undo sticks,
/// and neither `watch` nor `filter` files them again.
/// A message the server refused an action for ([`Op::Failed`]) is not
/// handled: the next run tries it again.
pub(crate) fn handled(entries: &[Entry], mailbox: &str, uidvalidity: u32) -> HashSet<u32> {
    let mut committed: HashSet<&str> = HashSet::new();
    let mut moved: HashSet<(&str, u32)> = HashSet::new();
    for e in entries {
        match e.op {
            Op::Commit => {
                committed.insert(&e.batch);
            }
            Op::Reconciled => {
                for u in &e.moved {
                    moved.insert((&e.batch, *u));
                }
                committed.insert(&e.batch);
            }
            _ => {}
        }
    }
    let failed: HashSet<(&str, u32)> = entries
        .iter()
        .filter(|e| e.op == Op::Failed)
        .map(|e| (e.batch.as_str(), e.uid))
        .collect();
    let reconciled: HashSet<&str> = entries
        .iter()
        .filter(|e| e.op == Op::Reconciled)
        .map(|e| e.batch.as_str())
        .collect();
    let restored_here: HashSet<&str> = entries
        .iter()
        .filter(|e| e.op == Op::Restore && e.to == mailbox)
        .map(|e| e.batch.as_str())
        .collect();
    let restored = entries
        .iter()
        .filter(|e| matches!(e.op, Op::Commit | Op::Reconciled))
        .filter(|e| e.dest_uidvalidity == uidvalidity && restored_here.contains(e.batch.as_str()))
        .flat_map(|e| e.mapped.iter().map(|(_, d)| *d));
    entries
        .iter()
        .filter(|e| e.op == Op::Quarantine && e.mailbox == mailbox && e.uidvalidity == uidvalidity)
        .filter(|e| {
            // A killed move batch whose message is still there is retried.
            let retry = reconciled.contains(e.batch.as_str())
                && !e.to.is_empty()
                && !moved.contains(&(e.batch.as_str(), e.uid));
            committed.contains(e.batch.as_str())
                && !retry
                && !failed.contains(&(e.batch.as_str(), e.uid))
        })
        .map(|e| e.uid)
        .chain(restored)
        .collect()
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> CleanError {
    move |e| CleanError::Io(format!("cannot {what}: {e}"))
}

/// Read and compile a rules file: `include "NAME"` is read from
/// `NAME.sieve` beside it (as Pigeonhole's `sieve_dir`). The outer error
/// is a sentence naming the unreadable file.
pub fn compile_file(path: &Path) -> Result<Result<Rules, RulesError>, String> {
    compile_reading(path, &mut Vec::new())
}

/// The files a compile read, each with its bytes (`None`: missing or
/// unreadable), in the order read.
type Read = Vec<(PathBuf, Option<Vec<u8>>)>;

/// [`compile_file`], recording in `read` every file it read.
fn compile_reading(path: &Path, read: &mut Read) -> Result<Result<Rules, RulesError>, String> {
    let bytes = std::fs::read(path);
    read.push((path.to_path_buf(), bytes.as_ref().ok().cloned()));
    let text = bytes.map_err(|e| format!("cannot read the rules {}: {e}", path.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| format!("the rules {} are not UTF-8", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok(Rules::compile(&text, |name| {
        let p = dir.join(format!("{name}.sieve"));
        match std::fs::read(&p) {
            Ok(b) => {
                read.push((p.clone(), Some(b.clone())));
                String::from_utf8(b)
                    .map(Some)
                    .map_err(|_| format!("the included script {} is not UTF-8", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                read.push((p, None));
                Ok(None)
            }
            Err(e) => {
                read.push((p.clone(), None));
                Err(format!(
                    "cannot read the included script {}: {e}",
                    p.display()
                ))
            }
        }
    }))
}

/// [`compile_file`] as one sentence naming the file.
pub fn load_rules(path: &Path) -> Result<Rules, String> {
    compile_file(path)?.map_err(|e| format!("{}: {e}", path.display()))
}

/// The user's rules as the agent (`watch`) keeps them: read again at each
/// wake-up ([`RulesFile::refresh`], before each batch of new mail), and
/// compiled again when the bytes of the file or of a script it includes
/// changed, so that an edit takes effect without a restart. Rules that
/// cannot be read or do not compile do not run until they are fixed (as
/// Pigeonhole keeps a message whose script is broken: "when in doubt,
/// keep"); the backscatter policy runs regardless. No polling of its
/// own: it is looked at when mail arrives.
#[derive(Debug)]
pub struct RulesFile {
    path: PathBuf,
    /// What the last compile read; empty before the first.
    read: Read,
    rules: Option<Rules>,
}

/// What [`RulesFile::refresh`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The same bytes as last time: nothing to say.
    Unchanged,
    /// Read and compiled: `first` the first time, else after an edit.
    Loaded { first: bool },
    /// Unreadable or not compiling (new bytes): the sentence to say,
    /// naming the file and the line. Said once per version of the file.
    Broken(String),
}

impl RulesFile {
    pub fn new(path: PathBuf) -> RulesFile {
        RulesFile {
            path,
            read: Vec::new(),
            rules: None,
        }
    }

    /// The rules file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rules to run now; `None` while the file is broken.
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    /// Read the file (and what it includes) again; compile it when its
    /// bytes changed since the last compile.
    pub fn refresh(&mut self) -> Reload {
        let first = self.read.is_empty();
        if !first
            && self
                .read
                .iter()
                .all(|(p, bytes)| std::fs::read(p).ok() == *bytes)
        {
            return Reload::Unchanged;
        }
        let mut read = Vec::new();
        let compiled = compile_reading(&self.path, &mut read);
        self.read = read;
        match compiled {
            Ok(Ok(r)) => {
                self.rules = Some(r);
                Reload::Loaded { first }
            }
            Ok(Err(e)) => {
                self.rules = None;
                Reload::Broken(format!("{}: {e}", self.path.display()))
            }
            Err(m) => {
                self.rules = None;
                Reload::Broken(m)
            }
        }
    }
}

/// Run the rules once over a mailbox.
pub async fn filter(
    a: &Account,
    secret: &Secret,
    rules: &Rules,
    opts: &FilterOptions,
    dirs: &Dirs,
    progress: Progress<'_>,
) -> Result<FilterSummary, CleanError> {
    let start = Instant::now();
    let _moving = match opts.dry_run {
        true => None,
        false => Some(crate::clean::hold_moves(&dirs.data, &a.name).await?),
    };
    let mut imap = imap::connect(a, secret).await?;
    // Every name as this server spells it (its namespace and delimiter).
    let a = &imap.resolve_account(a);
    let opts = &FilterOptions {
        mailbox: imap.resolve(&opts.mailbox),
        ..opts.clone()
    };
    let (sent, _) = crate::sentsync::refresh(&mut imap, a, &dirs.state, now()).await?;
    let path = journal_path(&dirs.data, &a.name);
    let mut summary = FilterSummary {
        mailbox: opts.mailbox.clone(),
        ..FilterSummary::default()
    };
    if !opts.dry_run {
        summary.recovered = crate::clean::reconcile(&mut imap, a, &path).await?;
    }
    let existing: HashSet<String> = imap.list().await?.into_iter().map(|m| m.name).collect();
    let sel = imap.select(&opts.mailbox).await?;
    let entries = journal::read(&path).map_err(io_err("read the rules journal"))?;
    let done = if opts.again {
        HashSet::new()
    } else {
        handled(&entries, &opts.mailbox, sel.uid_validity)
    };
    let uids: Vec<u32> = if sel.exists == 0 {
        Vec::new()
    } else {
        match opts.since {
            Some(t) => {
                let found = imap
                    .uid_search(&format!(
                        "SINCE {}",
                        imap::imap_date(crate::day::search_since(t))
                    ))
                    .await?;
                arrived_since(&mut imap, found, t).await?
            }
            None => imap.uid_search("ALL").await?,
        }
    };
    let (uids, skipped): (Vec<u32>, Vec<u32>) = uids.into_iter().partition(|u| !done.contains(u));
    summary.already = skipped.len();
    let ctx = crate::Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let total = uids.len();
    progress(0, total);
    let mut runner = Runner {
        a,
        path,
        mailbox: opts.mailbox.clone(),
        uidvalidity: sel.uid_validity,
        existing,
        created: HashSet::new(),
        dry_run: opts.dry_run,
    };
    for (n, chunk) in uids.chunks(BATCH).enumerate() {
        runner
            .batch(&mut imap, rules, chunk, &ctx, n, &mut summary)
            .await?;
        progress(summary.scanned, total);
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Runs the rules on batches of one selected mailbox (shared by `filter`
/// and `watch`).
pub(crate) struct Runner<'r> {
    pub a: &'r Account,
    /// The rules journal.
    pub path: PathBuf,
    pub mailbox: String,
    pub uidvalidity: u32,
    /// Mailboxes the server has (LIST).
    pub existing: HashSet<String>,
    /// Mailboxes created by `:create` so far.
    pub created: HashSet<String>,
    pub dry_run: bool,
}

/// Of `uids` (found by a `SEARCH SINCE` a day early), those that arrived
/// at or after `since` (INTERNALDATE, Unix seconds; one `UID FETCH`):
/// the user's rules run over the day they named, not the days before
/// (with `--again`, what the rules copy would be copied again). A message
/// whose INTERNALDATE the server does not give is kept.
async fn arrived_since(
    imap: &mut Imap,
    uids: Vec<u32>,
    since: i64,
) -> Result<Vec<u32>, CleanError> {
    if uids.is_empty() {
        return Ok(uids);
    }
    let before: HashSet<u32> = imap
        .uid_fetch(&uids, "(UID INTERNALDATE)")
        .await?
        .iter()
        .filter(|f| f.internal_date.is_some_and(|t| t < since))
        .filter_map(|f| f.uid)
        .collect();
    Ok(uids.into_iter().filter(|u| !before.contains(u)).collect())
}

impl Runner<'_> {
    /// Fetch `uids` of the selected mailbox, run the rules on each, and
    /// (unless a dry run) journal and carry out what they say.
    pub(crate) async fn batch(
        &mut self,
        imap: &mut Imap,
        rules: &Rules,
        uids: &[u32],
        ctx: &crate::Context<'_>,
        n: usize,
        summary: &mut FilterSummary,
    ) -> Result<(), CleanError> {
        let fetched = imap.uid_fetch(uids, "(UID FLAGS BODY.PEEK[])").await?;
        let mut plans: Vec<Planned> = Vec::new();
        let mut dropped = 0;
        for f in &fetched {
            let Some(uid) = f.uid else { continue };
            let raw = f.body().unwrap_or_default();
            summary.scanned += 1;
            let mut verdict = crate::classify(raw, ctx);
            // A message the user restored from quarantine (keyword
            // `$NotBackscatter`) is not backscatter to their rules either.
            if verdict.verdict == crate::Decision::Backscatter
                && f.flags
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(crate::quarantine::NOT_BACKSCATTER))
            {
                verdict.verdict = crate::Decision::Normal;
            }
            let v = VerdictEnv::of(&verdict);
            // The script's names are the user's: resolved in the server's
            // personal namespace like every configured name.
            let exists = |m: &str| {
                let m = imap.resolve(m);
                self.existing.contains(&m) || self.created.contains(&m)
            };
            let outcome = rules.run(raw, &Envelope::of(raw), Some(&v), &self.mailbox, &exists);
            if outcome.dropped_deleted {
                summary.dropped_deleted += 1;
                dropped += 1;
            }
            let head = crate::classify::PARSER.parse_headers(raw);
            let message_id = head
                .as_ref()
                .and_then(|m| m.message_id())
                .map(|s| format!("<{s}>"));
            let subject = head.as_ref().and_then(crate::classify::subject);
            let mut plan = Plan::of(&outcome).with_names(|m| imap.resolve(m));
            let mut error = outcome.error.clone();
            // fileinto of a missing mailbox without :create fails (RFC 5490 §3).
            let missing = plan
                .mailboxes()
                .find(|m| !exists(m) && !plan.create.iter().any(|c| c == m))
                .map(str::to_string);
            if let Some(m) = missing {
                error = Some(format!(
                    "mailbox \"{}\" does not exist (use fileinto :create)",
                    imap::shown(&m)
                ));
                plan = Plan::default();
            }
            let bad: Vec<String> = plan
                .flags
                .iter()
                .chain(plan.copies.iter().flat_map(|(_, f)| f))
                .filter(|f| !valid_flag(f))
                .cloned()
                .collect();
            if !bad.is_empty() {
                error = Some(format!("not valid IMAP flags: {}", bad.join(" ")));
                plan = Plan::default();
            }
            if let Some(e) = &error {
                summary.error(imap::shown(e));
                tracing::warn!(account = %self.a.name, mailbox = %imap::shown(&self.mailbox), uid, "rules: {}; the message stays as it is", imap::shown(e));
            }
            let actions = if error.is_some() {
                Vec::new()
            } else {
                describe(&outcome, &self.mailbox)
                    .into_iter()
                    .map(|l| l.trim().trim_start_matches("* ").to_string())
                    .collect()
            };
            if self.dry_run {
                // Counted as `apply` counts a run's, so that the dry run's
                // summary is the run's (but for refusals by the server).
                if plan.move_to.is_some() {
                    summary.moved += 1;
                } else {
                    summary.kept += 1;
                }
                summary.copied += plan.copies.len();
                if !plan.flags.is_empty() {
                    summary.flagged += 1;
                }
                summary.rows.push(FilterRow {
                    uid,
                    message_id,
                    subject,
                    actions,
                    error,
                });
                continue;
            }
            if plan.is_nothing() {
                summary.kept += 1;
                continue;
            }
            let fingerprint = crate::fingerprint::fingerprint(header_block(raw), raw.len() as u32);
            plans.push(Planned {
                uid,
                message_id,
                flags: f.flags.clone(),
                plan,
                actions,
                fingerprint,
            });
        }
        if dropped > 0 {
            tracing::warn!(account = %self.a.name, mailbox = %imap::shown(&self.mailbox), "rules: the flag \\Deleted your rules computed (from a variable, a header or an encoded character) was dropped for {dropped} message{}: backscatter never marks mail for deletion", if dropped == 1 { "" } else { "s" });
        }
        if !self.dry_run {
            apply(
                imap,
                self.a,
                &self.path,
                &self.mailbox,
                self.uidvalidity,
                &plans,
                n,
                &mut self.created,
                summary,
            )
            .await?;
        }
        Ok(())
    }
}

/// A message to act on.
struct Planned {
    uid: u32,
    message_id: Option<String>,
    /// Its flags now.
    flags: Vec<String>,
    plan: Plan,
    /// The actions in words (journaled as the reasons).
    actions: Vec<String>,
    /// [`crate::fingerprint::fingerprint`] of its header, journaled so that
    /// `restore --rules` finds it without a Message-ID.
    fingerprint: String,
}

/// The header block of a message (up to the first empty line), as
/// [`crate::fingerprint::FETCH_ITEMS`] would have fetched it.
fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// Journal and carry out one batch's plans: one journal batch per
/// destination (none = the message stays).
///
/// A refusal by the server (NO: a mailbox name built from the message
/// that the server will not create, a MOVE or COPY it refuses) is an error
/// for the messages it concerns only: they are counted in
/// [`FilterSummary::errors`], logged, left where they are, journaled as
/// [`Op::Failed`] (when their intent was written) and tried again by the
/// next run; the other messages go on. A lost connection still ends the
/// run (the journal lets the next run finish the batch).
#[allow(clippy::too_many_arguments)]
async fn apply(
    imap: &mut Imap,
    a: &Account,
    path: &Path,
    mailbox: &str,
    uidvalidity: u32,
    plans: &[Planned],
    n: usize,
    created: &mut HashSet<String>,
    summary: &mut FilterSummary,
) -> Result<(), CleanError> {
    let refused = |summary: &mut FilterSummary, uid: u32, e: &imap::ImapError| {
        summary.error(e.to_string());
        tracing::warn!(account = %a.name, mailbox = %imap::shown(mailbox), uid, "rules: {e}; the message stays as it is");
    };
    let mut groups: BTreeMap<Option<&str>, Vec<&Planned>> = BTreeMap::new();
    for p in plans {
        groups.entry(p.plan.move_to.as_deref()).or_default().push(p);
    }
    for (g, (dest, mut members)) in groups.into_iter().enumerate() {
        // Mailboxes to create; a name the server refuses fails the
        // messages that need it, and only them.
        let mut cannot: BTreeMap<String, imap::ImapError> = BTreeMap::new();
        for p in &members {
            for m in &p.plan.create {
                if created.contains(m) || cannot.contains_key(m) {
                    continue;
                }
                match imap.ensure_mailbox(m).await {
                    Ok(()) => {
                        created.insert(m.clone());
                    }
                    Err(e) if e.kind == imap::ErrorKind::No => {
                        cannot.insert(m.clone(), e);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        members.retain(|p| match p.plan.mailboxes().find_map(|m| cannot.get(m)) {
            Some(e) => {
                refused(summary, p.uid, e);
                false
            }
            None => true,
        });
        if members.is_empty() {
            continue;
        }
        let batch = journal::batch_id(now(), n * 1000 + g);
        let ts = now();
        let intents: Vec<Entry> = members
            .iter()
            .map(|p| Entry {
                ts,
                op: Op::Quarantine,
                batch: batch.clone(),
                account: a.name.clone(),
                mailbox: mailbox.to_string(),
                uidvalidity,
                uid: p.uid,
                message_id: p.message_id.clone(),
                kind: None,
                reasons: p.actions.clone(),
                to: dest.unwrap_or("").to_string(),
                moved: Vec::new(),
                fingerprint: p.fingerprint.clone(),
                origin: String::new(),
                dest_uidvalidity: 0,
                mapped: Vec::new(),
                flags_before: p.flags.clone(),
                flags_added: p.plan.added(&p.flags),
                deleted_before: crate::quarantine::is_deleted(&p.flags),
                copy_floor: None,
            })
            .collect();
        let mut intents = intents;
        if let Some(dest) = dest {
            crate::clean::note_copy_floor(imap, &mut intents, dest).await?;
        }
        journal::append(path, &intents).map_err(io_err("write the rules journal"))?;
        let mut failed: BTreeMap<u32, String> = BTreeMap::new();
        // Copies, each with its own flags set for the COPY only.
        for Planned {
            uid,
            flags: orig,
            plan,
            ..
        } in &members
        {
            for (mailbox, flags) in &plan.copies {
                let add: Vec<String> = flags
                    .iter()
                    .filter(|f| !orig.iter().any(|o| o.eq_ignore_ascii_case(f)))
                    .cloned()
                    .collect();
                imap.uid_store_flags(&[*uid], true, &add).await?;
                let copied = imap.uid_copy(&[*uid], mailbox).await;
                let back: Vec<String> = add
                    .into_iter()
                    .filter(|f| !plan.flags.iter().any(|k| k.eq_ignore_ascii_case(f)))
                    .collect();
                imap.uid_store_flags(&[*uid], false, &back).await?;
                match copied {
                    Ok(()) => summary.copied += 1,
                    Err(e) if e.kind == imap::ErrorKind::No => {
                        refused(summary, *uid, &e);
                        failed.insert(*uid, e.to_string());
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Final flags, grouped by flag set.
        let mut by_flags: BTreeMap<&[String], Vec<u32>> = BTreeMap::new();
        for p in &members {
            if !p.plan.flags.is_empty() && !failed.contains_key(&p.uid) {
                by_flags.entry(&p.plan.flags).or_default().push(p.uid);
            }
        }
        for (flags, uids) in &by_flags {
            match imap.uid_store_flags(uids, true, flags).await {
                Ok(()) => summary.flagged += uids.len(),
                Err(e) if e.kind == imap::ErrorKind::No => {
                    for u in uids {
                        refused(summary, *u, &e);
                        failed.insert(*u, e.to_string());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut mapping = None;
        let ok: Vec<u32> = members
            .iter()
            .map(|p| p.uid)
            .filter(|u| !failed.contains_key(u))
            .collect();
        if let Some(dest) = dest {
            match imap.uid_move_mapped(&ok, dest).await {
                Ok(m) => {
                    mapping = m;
                    summary.moved += ok.len();
                }
                Err(e) if e.kind == imap::ErrorKind::No => {
                    for u in &ok {
                        refused(summary, *u, &e);
                        failed.insert(*u, e.to_string());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            summary.kept += ok.len();
        }
        let marks: Vec<Entry> = failed
            .into_iter()
            .map(|(uid, why)| {
                let mut m = Entry::marker(Op::Failed, &batch, now(), Vec::new());
                m.uid = uid;
                m.reasons = vec![why];
                m
            })
            .collect();
        journal::append(path, &marks).map_err(io_err("write the rules journal"))?;
        commit(path, &batch, mapping)?;
    }
    Ok(())
}

/// Undo what the rules did (`restore --rules`): each message still in
/// the mailbox a rule filed it into returns to the mailbox it came from,
/// and every message loses the flags the rules added to it
/// ([`Entry::flags_added`]: flags it had before keep, and so do flags the
/// user set on it since, unless they are the same). Moved messages are
/// found as `restore` finds quarantined ones
/// ([`crate::quarantine::attribute`]): by the UID the server reported for
/// the move (COPYUID), else by fingerprint, else (journals written before
/// fingerprints) by Message-ID, so a message without a Message-ID is found
/// too; messages the rules left in place are found by their UID (same
/// UIDVALIDITY). Copies stay (undoing one would delete a message).
///
/// With `opts.dry_run` nothing is moved, flagged or written:
/// [`RestoreSummary::planned`] lists what would move and
/// [`RestoreSummary::unflagged`] counts the messages that would lose
/// flags. `opts.stop` ends the run after the batch in flight. What was
/// asked for and cannot be found or was refused is in
/// [`RestoreSummary::left_behind`].
///
/// Journaled like the rules' own moves: one `restore` intent per message
/// (naming its origin and the flags it takes back), the `-FLAGS` and the
/// move, then a commit with the server's COPYUID mapping (so that the
/// rules never file a restored message again, see [`handled`]); a run
/// killed between them is reconciled and repeated by the next, and taking
/// a flag away twice is harmless.
pub async fn undo(
    a: &Account,
    secret: &Secret,
    filter: &RestoreFilter,
    dirs: &Dirs,
    opts: &crate::restore::RestoreOptions,
) -> Result<RestoreSummary, CleanError> {
    use crate::quarantine;
    use crate::restore::Planned;
    use std::sync::atomic::Ordering;
    let start = Instant::now();
    let path = journal_path(&dirs.data, &a.name);
    let _moving = match opts.dry_run {
        true => None,
        false => Some(crate::clean::hold_moves(&dirs.data, &a.name).await?),
    };
    let mut imap = imap::connect(a, secret).await?;
    if !opts.dry_run {
        imap.can_move_safely()?;
        crate::clean::reconcile(&mut imap, a, &path).await?;
    }
    let entries = journal::read(&path).map_err(io_err("read the rules journal"))?;
    let wanted = |e: &Entry| match filter {
        RestoreFilter::All => true,
        RestoreFilter::Since(t) => e.ts >= *t,
        // Refused with --rules on the command line (UIDs of which mailbox?).
        RestoreFilter::Uids { .. } => false,
        RestoreFilter::MessageId(id) => e
            .message_id
            .as_deref()
            .is_some_and(|m| crate::mail::id_key(m) == crate::mail::id_key(id)),
    };
    let mut summary = RestoreSummary::default();
    // Moved messages, by where the rules put them; messages the rules
    // only flagged, by their mailbox.
    let mut by_place: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut kept: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in journal::quarantined(&entries) {
        if !e.to.is_empty() {
            by_place.entry(e.to.clone()).or_default().push(e);
        } else if !e.flags_added.is_empty() && wanted(&e) {
            kept.entry(e.mailbox.clone()).or_default().push(e);
        }
    }
    let stopped = || opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let mut n = 0;
    'places: for (place, held) in &by_place {
        if !held.iter().any(wanted) {
            continue;
        }
        let (sel, _, items) = match quarantine::inventory(&mut imap, place).await {
            Ok(x) => x,
            Err(e) if e.kind == imap::ErrorKind::Missing => {
                summary.missing += held.iter().filter(|e| wanted(e)).count();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let complete = items.len() as u32 == sel.exists;
        let att = quarantine::attribute(held, items, sel.uid_validity);
        summary.missing += att.gone.iter().filter(|e| wanted(e)).count();
        if !opts.dry_run && complete && !att.gone.is_empty() {
            let markers: Vec<Entry> = att
                .gone
                .iter()
                .map(|e| {
                    let mut m = Entry::marker(Op::Gone, &e.batch, now(), Vec::new());
                    m.origin = e.key();
                    m
                })
                .collect();
            journal::append(&path, &markers).map_err(io_err("write the rules journal"))?;
        }
        summary
            .left_behind
            .extend(att.unknown.iter().filter(|e| wanted(e)).map(|e| {
                format!(
                "{} (UID {} of \"{}\"): journaled without anything to find it by in \"{place}\"",
                e.message_id
                    .as_deref()
                    .unwrap_or("a message without Message-ID"),
                e.uid,
                e.mailbox
            )
            }));
        let mut back: BTreeMap<String, Vec<(&quarantine::Placed, &Entry)>> = BTreeMap::new();
        for p in &att.placed {
            if let Some(e) = p.entry.as_ref().filter(|e| wanted(e)) {
                back.entry(e.mailbox.clone()).or_default().push((p, e));
            }
        }
        let plan = |p: &quarantine::Placed, dest: &str| Planned {
            uid: p.item.uid,
            to: dest.to_string(),
            message_id: p.item.message_id.clone(),
            subject: p.item.shown_subject(),
            from: p.item.shown_from(),
            journaled: true,
            foreign: false,
        };
        if opts.dry_run {
            for (dest, list) in &back {
                summary
                    .planned
                    .extend(list.iter().map(|(p, _)| plan(p, dest)));
                summary.unflagged += list
                    .iter()
                    .filter(|(_, e)| !e.flags_added.is_empty())
                    .count();
            }
            continue;
        }
        for (dest, list) in &back {
            if stopped() {
                summary.interrupted = true;
                break 'places;
            }
            n += 1;
            let done =
                undo_batch(&mut imap, a, &path, place, sel.uid_validity, dest, list, n).await;
            match done {
                Ok(unflagged) => {
                    summary.restored += list.len();
                    summary.unflagged += unflagged;
                    summary
                        .planned
                        .extend(list.iter().map(|(p, _)| plan(p, dest)));
                }
                Err(CleanError::Imap(e)) if e.kind == imap::ErrorKind::No => {
                    crate::clean::reconcile(&mut imap, a, &path).await?;
                    summary.left_behind.extend(list.iter().map(|(p, _)| {
                        format!(
                            "{} (UID {} in \"{}\"): {e}",
                            p.item
                                .message_id
                                .as_deref()
                                .unwrap_or("a message without Message-ID"),
                            p.item.uid,
                            imap::shown(place)
                        )
                    }));
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Messages the rules left where they were but flagged: still there
    // under the same UID (same UIDVALIDITY), or no longer to be had.
    'kept: for (mailbox, items) in &kept {
        if summary.interrupted {
            break;
        }
        let sel = match imap.select(mailbox).await {
            Ok(s) => s,
            Err(e) if e.kind == imap::ErrorKind::No => {
                summary.missing += items.len();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let same: Vec<&Entry> = items
            .iter()
            .filter(|e| e.uidvalidity == sel.uid_validity)
            .collect();
        summary.missing += items.len() - same.len();
        for chunk in same.chunks(500) {
            let uids: Vec<u32> = chunk.iter().map(|e| e.uid).collect();
            let present: HashSet<u32> = if sel.exists == 0 {
                HashSet::new()
            } else {
                imap.uid_search(&format!("UID {}", imap::uid_set(&uids)))
                    .await?
                    .into_iter()
                    .collect()
            };
            let list: Vec<(u32, &Entry)> = chunk
                .iter()
                .filter(|e| present.contains(&e.uid))
                .map(|e| (e.uid, *e))
                .collect();
            summary.missing += chunk.len() - list.len();
            if list.is_empty() {
                continue;
            }
            if opts.dry_run {
                summary.unflagged += list.len();
                continue;
            }
            if stopped() {
                summary.interrupted = true;
                break 'kept;
            }
            n += 1;
            match unflag_batch(&mut imap, a, &path, mailbox, sel.uid_validity, &list, n).await {
                Ok(k) => summary.unflagged += k,
                Err(CleanError::Imap(e)) if e.kind == imap::ErrorKind::No => {
                    crate::clean::reconcile(&mut imap, a, &path).await?;
                    summary.left_behind.extend(list.iter().map(|(uid, e2)| {
                        format!(
                            "{} (UID {uid} in \"{}\"): its flags could not be taken back: {e}",
                            e2.message_id
                                .as_deref()
                                .unwrap_or("a message without Message-ID"),
                            imap::shown(mailbox)
                        )
                    }));
                    imap.select(mailbox).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// One batch of [`undo`]: journal, take back the flags the rules added
/// (`-FLAGS`), move from `place` back to `dest`, commit with the COPYUID
/// mapping. Returns how many messages had flags taken back.
#[allow(clippy::too_many_arguments)]
async fn undo_batch(
    imap: &mut Imap,
    a: &Account,
    path: &Path,
    place: &str,
    uidvalidity: u32,
    dest: &str,
    list: &[(&crate::quarantine::Placed, &Entry)],
    n: usize,
) -> Result<usize, CleanError> {
    imap.ensure_mailbox(dest).await?;
    imap.select(place).await?;
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let intents: Vec<Entry> = list
        .iter()
        .map(|(p, e)| {
            let mut r = Entry::marker(Op::Restore, &batch, ts, Vec::new());
            r.account = a.name.clone();
            r.mailbox = place.to_string();
            r.uidvalidity = uidvalidity;
            r.uid = p.item.uid;
            r.message_id = p.item.message_id.clone();
            r.to = dest.to_string();
            r.fingerprint = p.item.fingerprint.clone();
            r.origin = e.key();
            r.flags_added = e.flags_added.clone();
            r
        })
        .collect();
    let mut intents = intents;
    crate::clean::note_copy_floor(imap, &mut intents, dest).await?;
    journal::append(path, &intents).map_err(io_err("write the rules journal"))?;
    let found: Vec<(u32, &Entry)> = list.iter().map(|(p, e)| (p.item.uid, *e)).collect();
    let unflagged = take_back_flags(imap, &found).await?;
    let uids: Vec<u32> = list.iter().map(|(p, _)| p.item.uid).collect();
    // Where they land (COPYUID): the rules leave them alone there.
    let mapping = imap.uid_move_mapped(&uids, dest).await?;
    commit(path, &batch, mapping)?;
    Ok(unflagged)
}

/// One batch of [`undo`] for messages the rules left in `mailbox` (the
/// selected mailbox, at `uidvalidity`) but flagged: journal, take back
/// the flags (`-FLAGS`), commit. Returns how many messages had flags
/// taken back.
async fn unflag_batch(
    imap: &mut Imap,
    a: &Account,
    path: &Path,
    mailbox: &str,
    uidvalidity: u32,
    list: &[(u32, &Entry)],
    n: usize,
) -> Result<usize, CleanError> {
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let intents: Vec<Entry> = list
        .iter()
        .map(|(uid, e)| {
            let mut r = Entry::marker(Op::Restore, &batch, ts, Vec::new());
            r.account = a.name.clone();
            r.mailbox = mailbox.to_string();
            r.uidvalidity = uidvalidity;
            r.uid = *uid;
            r.message_id = e.message_id.clone();
            r.fingerprint = e.fingerprint.clone();
            r.origin = e.key();
            r.flags_added = e.flags_added.clone();
            r
        })
        .collect();
    journal::append(path, &intents).map_err(io_err("write the rules journal"))?;
    let unflagged = take_back_flags(imap, list).await?;
    commit(path, &batch, None)?;
    Ok(unflagged)
}

/// UID STORE `-FLAGS` of each message's [`Entry::flags_added`] in the
/// selected mailbox, grouped by flag set; returns how many messages had
/// flags to take back.
async fn take_back_flags(imap: &mut Imap, list: &[(u32, &Entry)]) -> Result<usize, CleanError> {
    let mut by_flags: BTreeMap<&[String], Vec<u32>> = BTreeMap::new();
    for (uid, e) in list {
        if !e.flags_added.is_empty() {
            by_flags.entry(&e.flags_added).or_default().push(*uid);
        }
    }
    let mut n = 0;
    for (flags, uids) in &by_flags {
        imap.uid_store_flags(uids, false, flags).await?;
        n += uids.len();
    }
    Ok(n)
}

/// Close a batch: the commit marker, with the server's COPYUID mapping
/// where it sent one.
fn commit(path: &Path, batch: &str, mapping: Option<imap::CopyUid>) -> Result<(), CleanError> {
    let mut marker = Entry::marker(Op::Commit, batch, now(), Vec::new());
    if let Some(m) = mapping {
        marker.dest_uidvalidity = m.uidvalidity;
        marker.mapped = m.pairs;
    }
    journal::append(path, &[marker]).map_err(io_err("write the rules journal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(op: Op, batch: &str, uid: u32, to: &str, moved: Vec<u32>) -> Entry {
        let mut x = Entry::marker(op, batch, 1, moved);
        x.mailbox = "INBOX".into();
        x.uidvalidity = 7;
        x.uid = uid;
        x.to = to.into();
        x
    }

    /// Hand-written rules in a temporary directory: a broken file is
    /// reported once per version, a fix and each edit (of the file or of
    /// a script it includes) are compiled once, an unchanged file never.
    #[test]
    fn a_rules_file_is_compiled_again_only_when_its_bytes_change() {
        let dir = std::env::temp_dir().join(format!("bs-rulesfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.sieve");
        let mut f = RulesFile::new(path.clone());
        // Missing: broken, said once.
        assert!(matches!(f.refresh(), Reload::Broken(m) if m.contains("cannot read the rules")));
        assert_eq!(f.refresh(), Reload::Unchanged);
        std::fs::write(&path, "require \"fileinto\";\nfileinto \"A\"\n").unwrap();
        match f.refresh() {
            Reload::Broken(m) => assert!(m.contains("rules.sieve") && m.contains("at line"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(f.rules().is_none());
        assert_eq!(f.refresh(), Reload::Unchanged);
        std::fs::write(&path, "require \"include\";\ninclude \"more\";\n").unwrap();
        std::fs::write(dir.join("more.sieve"), "keep;\n").unwrap();
        assert_eq!(f.refresh(), Reload::Loaded { first: false });
        assert!(f.rules().is_some());
        assert_eq!(f.refresh(), Reload::Unchanged);
        // An edit of the included script counts too.
        std::fs::write(dir.join("more.sieve"), "keep\n").unwrap();
        assert!(matches!(f.refresh(), Reload::Broken(m) if m.contains("more")));
        std::fs::write(dir.join("more.sieve"), "keep;\n").unwrap();
        assert_eq!(f.refresh(), Reload::Loaded { first: false });
        let mut g = RulesFile::new(path);
        assert_eq!(g.refresh(), Reload::Loaded { first: true });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn handled_skips_committed_and_moved_and_retries_unmoved_moves() {
        let entries = vec![
            e(Op::Quarantine, "b1", 1, "Lists", vec![]),
            e(Op::Commit, "b1", 0, "", vec![]),
            // Killed mid-move: 2 moved, 3 not (retried).
            e(Op::Quarantine, "b2", 2, "Lists", vec![]),
            e(Op::Quarantine, "b2", 3, "Lists", vec![]),
            e(Op::Reconciled, "b2", 0, "", vec![2]),
            // Killed in a batch that stays (copies/flags): never again.
            e(Op::Quarantine, "b3", 4, "", vec![]),
            e(Op::Reconciled, "b3", 0, "", vec![]),
            // The server refused 7's copy: tried again; 6 is done.
            e(Op::Quarantine, "b5", 6, "", vec![]),
            e(Op::Quarantine, "b5", 7, "", vec![]),
            e(Op::Failed, "b5", 7, "", vec![]),
            e(Op::Commit, "b5", 0, "", vec![]),
            // Not closed yet: not handled (reconciled first by the run).
            e(Op::Quarantine, "b4", 5, "X", vec![]),
        ];
        let h = handled(&entries, "INBOX", 7);
        assert_eq!(h, [1, 2, 4, 6].into_iter().collect());
        assert!(handled(&entries, "INBOX", 8).is_empty());
        // restore --rules moved UID 9 of Lists back to INBOX as UID 20.
        let mut entries = entries;
        let mut r = e(Op::Restore, "r1", 9, "INBOX", vec![]);
        r.mailbox = "Lists".into();
        entries.push(r);
        let mut c = e(Op::Commit, "r1", 0, "", vec![]);
        c.dest_uidvalidity = 7;
        c.mapped = vec![(9, 20)];
        entries.push(c);
        assert_eq!(
            handled(&entries, "INBOX", 7),
            [1, 2, 4, 6, 20].into_iter().collect()
        );
        assert!(!handled(&entries, "Lists", 7).contains(&20));
    }
}
