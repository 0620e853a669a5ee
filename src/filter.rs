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

use crate::clean::{now, CleanError, Dirs, Progress, RestoreFilter, RestoreSummary};
use crate::config::Account;
use crate::imap::{self, valid_flag, Imap};
use crate::journal::{self, Entry, Op};
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
    pub since: Option<i64>,
    pub dry_run: bool,
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

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FilterSummary {
    pub scanned: usize,
    /// Messages moved to another mailbox.
    pub moved: usize,
    /// Copies made.
    pub copied: usize,
    /// Messages whose flags were added to.
    pub flagged: usize,
    /// Messages the rules left as they were.
    pub kept: usize,
    /// Messages skipped as handled by an earlier run.
    pub already: usize,
    /// Messages whose rules failed (left untouched).
    pub errors: usize,
    /// Half-done moves of a killed run, finished.
    pub recovered: usize,
    pub seconds: f64,
    #[serde(skip)]
    pub rows: Vec<FilterRow>,
}

/// UIDs of `mailbox` (at `uidvalidity`) that an earlier run handled: in a
/// committed batch, or found moved when a killed batch was reconciled, or
/// in a closed batch that moved nothing (its copies and flags may have been
/// applied: never again). Also the messages `restore --rules` moved back
/// into it (their new UIDs, from the server's COPYUID): an undo sticks,
/// and neither `watch` nor `filter` files them again.
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
            committed.contains(e.batch.as_str()) && !retry
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
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the rules {}: {e}", path.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| format!("the rules {} are not UTF-8", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok(Rules::compile(&text, |name| {
        let p = dir.join(format!("{name}.sieve"));
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "cannot read the included script {}: {e}",
                p.display()
            )),
        }
    }))
}

/// [`compile_file`] as one sentence naming the file.
pub fn load_rules(path: &Path) -> Result<Rules, String> {
    compile_file(path)?.map_err(|e| format!("{}: {e}", path.display()))
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
    let mut imap = imap::connect(a, secret).await?;
    let (sent, _) = crate::sentsync::refresh(&mut imap, a, &dirs.state, now()).await?;
    let path = journal_path(&dirs.data, &a.name);
    let mut summary = FilterSummary::default();
    if !opts.dry_run {
        summary.recovered = crate::clean::reconcile(&mut imap, a, &path).await?;
    }
    let existing: HashSet<String> = imap.list().await?.into_iter().map(|m| m.name).collect();
    let sel = imap.select(&opts.mailbox).await?;
    let entries = journal::read(&path).map_err(io_err("read the rules journal"))?;
    let done = handled(&entries, &opts.mailbox, sel.uid_validity);
    let uids: Vec<u32> = if sel.exists == 0 {
        Vec::new()
    } else {
        match opts.since {
            Some(t) => {
                imap.uid_search(&format!("SINCE {}", imap::imap_date(t)))
                    .await?
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
        rules,
        path,
        mailbox: opts.mailbox.clone(),
        uidvalidity: sel.uid_validity,
        existing,
        created: HashSet::new(),
        dry_run: opts.dry_run,
    };
    for (n, chunk) in uids.chunks(BATCH).enumerate() {
        runner
            .batch(&mut imap, chunk, &ctx, n, &mut summary)
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
    pub rules: &'r Rules,
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

impl Runner<'_> {
    /// Fetch `uids` of the selected mailbox, run the rules on each, and
    /// (unless a dry run) journal and carry out what they say.
    pub(crate) async fn batch(
        &mut self,
        imap: &mut Imap,
        uids: &[u32],
        ctx: &crate::Context<'_>,
        n: usize,
        summary: &mut FilterSummary,
    ) -> Result<(), CleanError> {
        let fetched = imap.uid_fetch(uids, "(UID FLAGS BODY.PEEK[])").await?;
        let mut plans: Vec<Planned> = Vec::new();
        for f in &fetched {
            let Some(uid) = f.uid else { continue };
            let raw = f.body().unwrap_or_default();
            summary.scanned += 1;
            let v = VerdictEnv::of(&crate::classify(raw, ctx));
            let exists = |m: &str| self.existing.contains(m) || self.created.contains(m);
            let outcome = self
                .rules
                .run(raw, &Envelope::of(raw), Some(&v), &self.mailbox, &exists);
            let head = crate::classify::PARSER.parse_headers(raw);
            let message_id = head
                .as_ref()
                .and_then(|m| m.message_id())
                .map(|s| format!("<{s}>"));
            let subject = head.as_ref().and_then(|m| m.subject()).map(str::to_string);
            let mut plan = Plan::of(&outcome);
            let mut error = outcome.error.clone();
            // fileinto of a missing mailbox without :create fails (RFC 5490 §3).
            let missing = plan
                .mailboxes()
                .find(|m| !exists(m) && !plan.create.iter().any(|c| c == m))
                .map(str::to_string);
            if let Some(m) = missing {
                error = Some(format!(
                    "mailbox \"{m}\" does not exist (use fileinto :create)"
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
                summary.errors += 1;
                tracing::warn!(account = %self.a.name, mailbox = %self.mailbox, uid, "rules: {e}; the message stays as it is");
            }
            let actions = if error.is_some() {
                Vec::new()
            } else {
                describe(&outcome, &self.mailbox)
                    .into_iter()
                    .map(|l| l.trim().trim_start_matches("* ").to_string())
                    .collect()
            };
            if self.dry_run || plan.is_nothing() {
                if plan.is_nothing() {
                    summary.kept += 1;
                }
                if self.dry_run {
                    summary.rows.push(FilterRow {
                        uid,
                        message_id,
                        subject,
                        actions,
                        error,
                    });
                }
                continue;
            }
            plans.push((uid, message_id, imap::flags_of(f), plan, actions));
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

/// A message to act on: UID, Message-ID, its flags now, the plan, and the
/// actions in words (journaled as the reasons).
type Planned = (u32, Option<String>, Vec<String>, Plan, Vec<String>);

/// Journal and carry out one batch's plans: one journal batch per
/// destination (none = the message stays).
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
    let mut groups: BTreeMap<Option<&str>, Vec<&Planned>> = BTreeMap::new();
    for p in plans {
        groups.entry(p.3.move_to.as_deref()).or_default().push(p);
    }
    for (g, (dest, members)) in groups.into_iter().enumerate() {
        for p in &members {
            for m in &p.3.create {
                if created.insert(m.clone()) {
                    imap.ensure_mailbox(m).await?;
                }
            }
        }
        let batch = journal::batch_id(now(), n * 1000 + g);
        let ts = now();
        let intents: Vec<Entry> = members
            .iter()
            .map(|(uid, id, orig, plan, actions)| Entry {
                ts,
                op: Op::Quarantine,
                batch: batch.clone(),
                account: a.name.clone(),
                mailbox: mailbox.to_string(),
                uidvalidity,
                uid: *uid,
                message_id: id.clone(),
                kind: None,
                reasons: actions.clone(),
                to: dest.unwrap_or("").to_string(),
                moved: Vec::new(),
                fingerprint: String::new(),
                origin: String::new(),
                dest_uidvalidity: 0,
                mapped: Vec::new(),
                flags_before: orig.clone(),
                flags_added: plan.added(orig),
            })
            .collect();
        journal::append(path, &intents).map_err(io_err("write the rules journal"))?;
        // Copies, each with its own flags set for the COPY only.
        for (uid, _, orig, plan, _) in &members {
            for (mailbox, flags) in &plan.copies {
                let add: Vec<String> = flags
                    .iter()
                    .filter(|f| !orig.iter().any(|o| o.eq_ignore_ascii_case(f)))
                    .cloned()
                    .collect();
                imap.uid_store_flags(&[*uid], true, &add).await?;
                imap.uid_copy(&[*uid], mailbox).await?;
                let back: Vec<String> = add
                    .into_iter()
                    .filter(|f| !plan.flags.iter().any(|k| k.eq_ignore_ascii_case(f)))
                    .collect();
                imap.uid_store_flags(&[*uid], false, &back).await?;
                summary.copied += 1;
            }
        }
        // Final flags, grouped by flag set.
        let mut by_flags: BTreeMap<&[String], Vec<u32>> = BTreeMap::new();
        for (uid, _, _, plan, _) in &members {
            if !plan.flags.is_empty() {
                by_flags.entry(&plan.flags).or_default().push(*uid);
            }
        }
        for (flags, uids) in &by_flags {
            imap.uid_store_flags(uids, true, flags).await?;
            summary.flagged += uids.len();
        }
        if let Some(dest) = dest {
            let uids: Vec<u32> = members.iter().map(|p| p.0).collect();
            imap.uid_move(&uids, dest).await?;
            summary.moved += uids.len();
        } else {
            summary.kept += members.len();
        }
        journal::append(
            path,
            &[Entry::marker(Op::Commit, &batch, now(), Vec::new())],
        )
        .map_err(io_err("write the rules journal"))?;
    }
    Ok(())
}

/// Undo what the rules did (`restore --rules`): each message still in
/// the mailbox a rule filed it into (found by Message-ID) returns to the
/// mailbox it came from, and every message loses the flags the rules added
/// to it ([`Entry::flags_added`]: flags it had before keep, and so do
/// flags the user set on it since, unless they are the same). Copies stay
/// (undoing one would delete a message). With `dry_run` nothing is changed
/// and the summary counts what would be.
///
/// Journaled like the rules' own moves: one `restore` intent per message
/// (naming its origin), the `-FLAGS` and the move, then a commit; a run
/// killed between them is reconciled and repeated by the next, and taking
/// a flag away twice is harmless.
pub async fn undo(
    a: &Account,
    secret: &Secret,
    filter: &RestoreFilter,
    dirs: &Dirs,
    dry_run: bool,
) -> Result<RestoreSummary, CleanError> {
    let start = Instant::now();
    let path = journal_path(&dirs.data, &a.name);
    let mut imap = imap::connect(a, secret).await?;
    if !dry_run {
        crate::clean::reconcile(&mut imap, a, &path).await?;
    }
    let entries = journal::read(&path).map_err(io_err("read the rules journal"))?;
    let wanted: Vec<Entry> = journal::quarantined(&entries)
        .into_iter()
        .filter(|e| !e.to.is_empty() || !e.flags_added.is_empty())
        .filter(|e| match filter {
            RestoreFilter::All => true,
            RestoreFilter::Since(t) => e.ts >= *t,
            RestoreFilter::MessageId(id) => e.message_id.as_deref().is_some_and(|m| {
                crate::classify::fields::id_key(m) == crate::classify::fields::id_key(id)
            }),
        })
        .collect();
    let mut summary = RestoreSummary::default();
    // Moved messages, by where the rules put them; kept ones, by mailbox.
    let mut by_place: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    let mut kept: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in &wanted {
        if e.to.is_empty() {
            kept.entry(e.mailbox.clone()).or_default().push(e);
        } else {
            by_place.entry(e.to.clone()).or_default().push(e);
        }
    }
    let mut n = 0;
    for (place, items) in &by_place {
        let ids = match crate::clean::message_ids_in(&mut imap, place).await {
            Ok(m) => m,
            Err(e) if e.kind == imap::ErrorKind::No => {
                summary.missing += items.len();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let sel = imap.select(place).await?;
        let mut used: HashSet<u32> = HashSet::new();
        let mut back: BTreeMap<&str, Vec<(u32, &Entry)>> = BTreeMap::new();
        for e in items {
            let found = e
                .message_id
                .as_ref()
                .and_then(|id| ids.get(&crate::classify::fields::id_key(id)))
                .and_then(|u| u.iter().find(|u| !used.contains(u)).copied());
            match found {
                Some(uid) => {
                    used.insert(uid);
                    back.entry(e.mailbox.as_str()).or_default().push((uid, e));
                }
                None => summary.missing += 1,
            }
        }
        for (dest, list) in &back {
            if dry_run {
                summary.restored += list.len();
                summary.unflagged += list
                    .iter()
                    .filter(|(_, e)| !e.flags_added.is_empty())
                    .count();
                continue;
            }
            imap.ensure_mailbox(dest).await?;
            let batch = journal::batch_id(now(), n);
            n += 1;
            let intents: Vec<Entry> = list
                .iter()
                .map(|(uid, e)| undo_entry(a, &batch, e, place, sel.uid_validity, *uid, dest))
                .collect();
            journal::append(&path, &intents).map_err(io_err("write the rules journal"))?;
            summary.unflagged += take_back_flags(&mut imap, list).await?;
            let uids: Vec<u32> = list.iter().map(|(u, _)| *u).collect();
            // Where they land (COPYUID): the rules leave them alone there.
            let mapping = imap.uid_move_mapped(&uids, dest).await?;
            let mut commit = Entry::marker(Op::Commit, &batch, now(), Vec::new());
            if let Some(m) = mapping {
                commit.dest_uidvalidity = m.uidvalidity;
                commit.mapped = m.pairs;
            }
            journal::append(&path, &[commit]).map_err(io_err("write the rules journal"))?;
            summary.restored += uids.len();
        }
    }
    // Messages the rules left where they were but flagged: still there
    // under the same UID (same UIDVALIDITY), or no longer to be had.
    for (mailbox, items) in &kept {
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
            .copied()
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
            if dry_run {
                summary.unflagged += list.len();
                continue;
            }
            let batch = journal::batch_id(now(), n);
            n += 1;
            let intents: Vec<Entry> = list
                .iter()
                .map(|(uid, e)| undo_entry(a, &batch, e, mailbox, sel.uid_validity, *uid, ""))
                .collect();
            journal::append(&path, &intents).map_err(io_err("write the rules journal"))?;
            summary.unflagged += take_back_flags(&mut imap, &list).await?;
            journal::append(
                &path,
                &[Entry::marker(Op::Commit, &batch, now(), Vec::new())],
            )
            .map_err(io_err("write the rules journal"))?;
        }
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// The `restore` intent (in `batch`) undoing `e`: the message is `uid` of `mailbox`
/// (at `uidvalidity`) and goes to `to` (`""`: it stays; only its flags
/// are taken back).
fn undo_entry(
    a: &Account,
    batch: &str,
    e: &Entry,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
    to: &str,
) -> Entry {
    let mut r = Entry::marker(Op::Restore, batch, now(), Vec::new());
    r.account = a.name.clone();
    r.mailbox = mailbox.to_string();
    r.uidvalidity = uidvalidity;
    r.uid = uid;
    r.message_id = e.message_id.clone();
    r.to = to.to_string();
    r.origin = e.key();
    r.flags_added = e.flags_added.clone();
    r
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
            // Not closed yet: not handled (reconciled first by the run).
            e(Op::Quarantine, "b4", 5, "X", vec![]),
        ];
        let h = handled(&entries, "INBOX", 7);
        assert_eq!(h, [1, 2, 4].into_iter().collect());
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
            [1, 2, 4, 20].into_iter().collect()
        );
        assert!(!handled(&entries, "Lists", 7).contains(&20));
    }
}
