//! `backscatter restore`: move quarantined messages back where they came
//! from, and make the undo stick.
//!
//! Every message in the quarantine mailbox is identified ([`crate::quarantine`]):
//! journaled moves by the UID the server reported (COPYUID) or by their
//! fingerprint, so messages without a Message-ID, with a malformed one or
//! with a shared one are all found; messages the server's Sieve script
//! filed (never journaled) by searching the quarantine itself, and they go
//! back to INBOX. Before a message leaves quarantine it gets the keyword
//! `$NotBackscatter` where the mailbox keeps keywords, or goes on the
//! account's local list where it does not, so that no later sweep or agent
//! moves it again. Moves are journaled like a sweep's (intent, move,
//! commit with the COPYUID mapping) and reconciled after a crash.

use crate::clean::{CleanError, Dirs, BATCH};
use crate::clock::now;
use crate::config::Account;
use crate::fingerprint::id_key;
use crate::imap::{self, Imap};
use crate::journal::{self, Entry, Op, SERVER_ORIGIN};
use crate::quarantine::{self, Placed, NOT_BACKSCATTER};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Which quarantined messages to restore.
#[derive(Debug, Clone)]
pub enum RestoreFilter {
    /// Everything in quarantine, journaled or filed by the server.
    All,
    /// Moved (journaled) on or after this Unix time; for messages the
    /// server filed, arrived (INTERNALDATE) on or after it.
    Since(i64),
    /// Every message in quarantine whose Message-ID field is this (compared
    /// without angle brackets and case; IDs without `@` work too).
    MessageId(String),
    /// The messages with these UIDs in the quarantine mailbox (as
    /// `quarantine list` prints them); with `uidvalidity`, only while the
    /// mailbox still has that UIDVALIDITY (RFC 3501 section 2.3.1.1: else
    /// the UIDs may name other messages, and nothing is restored).
    Uids {
        uids: Vec<u32>,
        uidvalidity: Option<u32>,
    },
}

/// How to run a restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Say what would move, move nothing, write nothing.
    pub dry_run: bool,
    /// Set (by Ctrl-C) to stop after the batch in flight.
    pub stop: Option<Arc<AtomicBool>>,
}

/// One message restored, or that would be with `dry_run`.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its UID in quarantine.
    pub uid: u32,
    /// Where it goes.
    pub to: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    /// Journaled by a sweep or agent (`false`: filed by the server's
    /// Sieve script or by hand).
    pub journaled: bool,
    /// Not journaled and without the server script's mark: backscatter
    /// did not put it there (restored because it was named).
    pub foreign: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreSummary {
    pub restored: usize,
    /// Messages whose restore an interrupted earlier run had left
    /// half-done, found moved back or finished now (not in `restored`).
    pub recovered: usize,
    /// `restore --rules`: messages whose flags added by the rules were
    /// taken back (or, with `dry_run`, would be).
    pub unflagged: usize,
    /// Journaled, asked for, and certainly no longer in quarantine
    /// (deleted or moved by hand): nothing to restore.
    pub missing: usize,
    /// What was asked for and not restored, one description each (an
    /// entry that cannot be identified, a move the server refused).
    pub left_behind: Vec<String>,
    /// The messages restored (or, with `dry_run`, that would be).
    pub planned: Vec<Planned>,
    /// `--all`/`--since`: messages in quarantine that backscatter did not
    /// put there (no journal entry, no mark of the server's script), left
    /// where they are.
    pub foreign: usize,
    /// Stopped by `stop` before finishing.
    pub interrupted: bool,
    /// The restored messages got `$NotBackscatter` (else: the local list).
    pub keyword: bool,
    /// The quarantine mailbox's name on the server (resolved in its
    /// personal namespace).
    pub quarantine: String,
    pub seconds: f64,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> CleanError + '_ {
    move |e| CleanError::Io(format!("cannot {what}: {e}"))
}

/// A journal entry in a sentence, for "left behind" lists.
fn describe(e: &Entry) -> String {
    format!(
        "{} (UID {} of \"{}\", moved {})",
        e.message_id
            .as_deref()
            .unwrap_or("a message without Message-ID"),
        e.uid,
        e.mailbox,
        crate::day::time(e.ts, crate::clock::zone())
    )
}

/// Is `p` asked for: `--all` and `--since` take only what backscatter
/// moved ([`quarantine::moved_by_backscatter`]); a message named by its
/// Message-ID or UID is taken whoever put it there.
fn wanted(filter: &RestoreFilter, p: &Placed) -> bool {
    match filter {
        RestoreFilter::All => quarantine::moved_by_backscatter(p),
        RestoreFilter::Since(t) => {
            quarantine::moved_by_backscatter(p)
                && match &p.entry {
                    Some(e) => e.ts >= *t,
                    None => p.item.arrived >= *t,
                }
        }
        RestoreFilter::Uids { uids, .. } => uids.contains(&p.item.uid),
        RestoreFilter::MessageId(id) => {
            let k = id_key(id);
            p.item.message_id.as_deref().is_some_and(|m| id_key(m) == k)
                || p.entry
                    .as_ref()
                    .and_then(|e| e.message_id.as_deref())
                    .is_some_and(|m| id_key(m) == k)
        }
    }
}

fn entry_wanted(filter: &RestoreFilter, e: &Entry) -> bool {
    match filter {
        RestoreFilter::All => true,
        // A UID names what is in quarantine now, never a journal entry.
        RestoreFilter::Uids { .. } => false,
        RestoreFilter::Since(t) => e.ts >= *t,
        RestoreFilter::MessageId(id) => e
            .message_id
            .as_deref()
            .is_some_and(|m| id_key(m) == id_key(id)),
    }
}

/// Move quarantined messages back (see the module header).
pub async fn restore(
    a: &Account,
    secret: &Secret,
    filter: &RestoreFilter,
    dirs: &Dirs,
) -> Result<RestoreSummary, CleanError> {
    restore_with(a, secret, filter, dirs, &RestoreOptions::default()).await
}

/// [`restore`] with a dry run and a stop signal.
pub async fn restore_with(
    a: &Account,
    secret: &Secret,
    filter: &RestoreFilter,
    dirs: &Dirs,
    opts: &RestoreOptions,
) -> Result<RestoreSummary, CleanError> {
    let start = Instant::now();
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let _moving = match opts.dry_run {
        true => None,
        false => Some(crate::clean::hold_moves(&dirs.data, &a.name).await?),
    };
    let mut imap = imap::connect(a, secret).await?;
    let a = &imap.resolve_account(a);
    let mut summary = RestoreSummary {
        quarantine: a.quarantine.clone(),
        ..RestoreSummary::default()
    };
    // A dry run too: it would promise moves that restore refuses.
    imap.can_move_safely()?;
    crate::clean::refuse_unfit_quarantine(&mut imap, a).await?;
    if !opts.dry_run {
        summary.recovered = crate::clean::reconcile_counted(&mut imap, a, &journal_path)
            .await?
            .1;
        crate::clean::compact_journal(&journal_path);
    }
    let entries = journal::read(&journal_path).map_err(io_err("read the journal"))?;
    let held: Vec<Entry> = journal::quarantined(&entries)
        .into_iter()
        .filter(|e| e.to == a.quarantine)
        .collect();
    let (sel, keywords, items) = match quarantine::inventory(&mut imap, &a.quarantine).await {
        Ok(x) => x,
        // No quarantine mailbox: nothing in it.
        Err(e) if e.kind == imap::ErrorKind::Missing => (
            imap::Selected {
                exists: 0,
                uid_validity: 0,
                uid_next: 0,
                highest_modseq: None,
            },
            false,
            Vec::new(),
        ),
        Err(e) => return Err(e.into()),
    };
    if let RestoreFilter::Uids {
        uidvalidity: Some(v),
        ..
    } = filter
    {
        if *v != sel.uid_validity {
            return Err(CleanError::Config(format!(
                "the quarantine \"{}\" has UIDVALIDITY {} now, not {v}: its UIDs were renumbered since you listed them, so they may name other messages; list it again (backscatter quarantine list --json) and give the UIDs it shows",
                imap::shown(&a.quarantine),
                sel.uid_validity
            )));
        }
    }
    let complete = items.len() as u32 == sel.exists;
    if let RestoreFilter::Uids { uids, .. } = filter {
        for u in uids {
            if !items.iter().any(|i| i.uid == *u) {
                summary.left_behind.push(format!(
                    "UID {u}: no message with this UID in \"{}\" (see backscatter quarantine list)",
                    imap::shown(&a.quarantine)
                ));
            }
        }
    }
    let att = quarantine::attribute(&held, items, sel.uid_validity);
    // Batches an interruption left open and a later run finished: only
    // there can a `\Deleted` of backscatter's (the COPY fallback's) have
    // stayed on a quarantined message (written by versions before the
    // flag was always taken off again).
    let reconciled: std::collections::HashSet<String> = entries
        .iter()
        .filter(|e| e.op == Op::Reconciled)
        .map(|e| e.batch.clone())
        .collect();
    summary.keyword = keywords;
    // Journaled messages certainly gone: said once, then forgotten.
    let gone: Vec<&Entry> = att
        .gone
        .iter()
        .filter(|e| entry_wanted(filter, e))
        .collect();
    summary.missing = gone.len();
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
        journal::append(&journal_path, &markers).map_err(io_err("write the journal"))?;
    }
    summary.left_behind.extend(
        att.unknown
            .iter()
            .filter(|e| entry_wanted(filter, e))
            .map(|e| format!("{}: journaled without anything to find it by", describe(e))),
    );
    if matches!(filter, RestoreFilter::All | RestoreFilter::Since(_)) {
        summary.foreign = att
            .placed
            .iter()
            .filter(|p| !quarantine::moved_by_backscatter(p))
            .count();
    }
    // What goes where.
    let mut by_dest: BTreeMap<String, Vec<&Placed>> = BTreeMap::new();
    for p in att.placed.iter().filter(|p| wanted(filter, p)) {
        let dest = p
            .entry
            .as_ref()
            .map_or_else(|| "INBOX".to_string(), |e| e.mailbox.clone());
        by_dest.entry(dest).or_default().push(p);
    }
    let plan = |p: &Placed, dest: &str| Planned {
        uid: p.item.uid,
        to: dest.to_string(),
        message_id: p.item.message_id.clone(),
        subject: p.item.shown_subject(),
        from: p.item.shown_from(),
        journaled: p.entry.is_some(),
        foreign: !quarantine::moved_by_backscatter(p),
    };
    if opts.dry_run {
        for (dest, items) in &by_dest {
            summary.planned.extend(items.iter().map(|p| plan(p, dest)));
        }
        imap.logout().await;
        summary.seconds = start.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let kept_path = quarantine::kept_path(&dirs.data, &a.name);
    let mut n = 0;
    'dests: for (dest, items) in &by_dest {
        if !dest.eq_ignore_ascii_case("INBOX") {
            imap.ensure_mailbox(dest).await?;
            imap.select(&a.quarantine).await?;
        }
        for chunk in items.chunks(BATCH) {
            if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                summary.interrupted = true;
                break 'dests;
            }
            n += 1;
            let done = restore_batch(
                &mut imap,
                a,
                &journal_path,
                &kept_path,
                sel.uid_validity,
                keywords,
                dest,
                chunk,
                &reconciled,
                n,
            )
            .await;
            match done {
                Ok(o) => {
                    // Another client may have deleted or moved some of the
                    // batch meanwhile (`NO [EXPUNGEISSUED]`: the rest was
                    // moved without them, `clean::settle_move`).
                    summary.restored += o.moved.len();
                    summary.missing += o.elsewhere.len() + o.gone.len();
                    summary.planned.extend(
                        chunk
                            .iter()
                            .filter(|p| o.moved.contains(&p.item.uid))
                            .map(|p| plan(p, dest)),
                    );
                }
                Err(CleanError::Imap(e)) if e.kind == imap::ErrorKind::No => {
                    // Refused (the batch was reconciled): say what stayed.
                    crate::clean::reconcile(&mut imap, a, &journal_path).await?;
                    summary.left_behind.extend(chunk.iter().map(|p| {
                        format!(
                            "{} (UID {} in \"{}\"): {e}",
                            p.item
                                .message_id
                                .as_deref()
                                .unwrap_or("a message without Message-ID"),
                            p.item.uid,
                            a.quarantine
                        )
                    }));
                    imap.select(&a.quarantine).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// One batch: mark (keyword, else the local list), journal, move, commit.
#[allow(clippy::too_many_arguments)]
async fn restore_batch(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
    kept_path: &std::path::Path,
    uidvalidity: u32,
    keywords: bool,
    dest: &str,
    chunk: &[&Placed],
    reconciled: &std::collections::HashSet<String>,
    n: usize,
) -> Result<crate::clean::MoveOutcome, CleanError> {
    let uids: Vec<u32> = chunk.iter().map(|p| p.item.uid).collect();
    // A `\Deleted` the journal says backscatter set (an interrupted move
    // by COPY, the message not `\Deleted` before) comes off before the
    // message goes back: the user's next EXPUNGE must not remove it. One
    // the user set stays.
    let ours = |p: &Placed| {
        quarantine::is_deleted(&p.item.flags)
            && p.entry
                .as_ref()
                .is_some_and(|q| !q.deleted_before && reconciled.contains(&q.batch))
    };
    let undelete: Vec<u32> = chunk
        .iter()
        .filter(|p| ours(p))
        .map(|p| p.item.uid)
        .collect();
    imap.uid_undelete(&undelete).await?;
    // The mark goes on before the message leaves quarantine: an agent
    // watching the destination must never see it unmarked.
    if keywords {
        imap.uid_add_keyword(&uids, NOT_BACKSCATTER).await?;
    } else {
        let items: Vec<_> = chunk.iter().map(|p| &p.item).collect();
        quarantine::remember_kept(kept_path, &items, now())
            .map_err(io_err("write the list of restored messages"))?;
    }
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let intents: Vec<Entry> = chunk
        .iter()
        .map(|p| {
            let mut e = Entry::marker(Op::Restore, &batch, ts, Vec::new());
            e.account = a.name.clone();
            e.mailbox = a.quarantine.clone();
            e.uidvalidity = uidvalidity;
            e.uid = p.item.uid;
            e.message_id = p.item.message_id.clone();
            e.kind = p.entry.as_ref().and_then(|q| q.kind);
            e.to = dest.to_string();
            e.fingerprint = p.item.fingerprint.clone();
            e.deleted_before = quarantine::is_deleted(&p.item.flags) && !ours(p);
            e.origin = p
                .entry
                .as_ref()
                .map_or_else(|| SERVER_ORIGIN.to_string(), Entry::key);
            e
        })
        .collect();
    let _busy = journal::in_flight(journal_path, &batch);
    let mut intents = intents;
    crate::clean::note_copy_floor(imap, &mut intents, dest).await?;
    journal::append(journal_path, &intents).map_err(io_err("write the journal"))?;
    // Settled as `clean` settles its moves: a NO [EXPUNGEISSUED] (another
    // client deleted one of the batch) moves the rest without those, a
    // short COPYUID commits what it names, other refusals are reconciled.
    let answer = imap.uid_move_mapped(&uids, dest).await;
    crate::clean::settle_move(imap, a, journal_path, &batch, &intents, answer).await
}

/// The quarantine as [`list`] found it.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The quarantine mailbox's name on the server (UTF-8, resolved in
    /// its personal namespace: `INBOX.Backscatter` on Cyrus).
    pub mailbox: String,
    /// Every message in it, in UID order.
    pub messages: Vec<quarantine::Listed>,
}

/// Everything in the account's quarantine, matched to the journal; the
/// messages no journal entry claims (filed by the server's script) are
/// classified now, with the sent index (refreshed from the server).
/// Nothing is stored or moved. An account without a quarantine mailbox
/// lists nothing.
pub async fn list(a: &Account, secret: &Secret, dirs: &Dirs) -> Result<Listing, CleanError> {
    let mut imap = imap::connect(a, secret).await?;
    let a = &imap.resolve_account(a);
    crate::clean::refuse_unfit_quarantine(&mut imap, a).await?;
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let entries = journal::read(&journal_path).map_err(io_err("read the journal"))?;
    let held: Vec<Entry> = journal::quarantined(&entries)
        .into_iter()
        .filter(|e| e.to == a.quarantine)
        .collect();
    let mut listing = Listing {
        mailbox: a.quarantine.clone(),
        messages: Vec::new(),
    };
    let (sel, _, items) = match quarantine::inventory(&mut imap, &a.quarantine).await {
        Ok(x) => x,
        Err(e) if e.kind == imap::ErrorKind::Missing => {
            imap.logout().await;
            return Ok(listing);
        }
        Err(e) => return Err(e.into()),
    };
    let att = quarantine::attribute(&held, items, sel.uid_validity);
    let unknown: Vec<u32> = att
        .placed
        .iter()
        .filter(|p| p.entry.is_none())
        .map(|p| p.item.uid)
        .collect();
    let mut verdicts = std::collections::HashMap::new();
    if !unknown.is_empty() {
        let (sent, _) = crate::sentsync::refresh(&mut imap, a, &dirs.state, now()).await?;
        imap.examine(&a.quarantine).await?;
        let ctx = crate::classify::Context {
            sent: &sent,
            own_addresses: &a.addresses,
        };
        for chunk in unknown.chunks(BATCH) {
            for r in crate::clean::classify_batch(&mut imap, chunk, &ctx).await? {
                verdicts.insert(r.uid, r.verdict);
            }
        }
    }
    imap.logout().await;
    listing.messages = att
        .placed
        .iter()
        .map(|p| quarantine::Listed {
            uidvalidity: sel.uid_validity,
            ..quarantine::Listed::new(p, verdicts.get(&p.item.uid))
        })
        .collect();
    Ok(listing)
}

/// The messages in quarantine that `which` names, each with the verdict
/// the classifier gives it now (all its reasons and the original it
/// found), in UID order, with the quarantine's name on the server: by UID
/// (digits only) the one message with that UID; by Message-ID (with or
/// without angle brackets, compared as [`id_key`]) every message that
/// carries it, since a quarantine can hold several (the same response
/// delivered twice, or responses that share an ID). Empty when there is
/// none.
pub async fn show(
    a: &Account,
    secret: &Secret,
    dirs: &Dirs,
    which: &str,
) -> Result<(String, Vec<(quarantine::Listed, crate::Verdict)>), CleanError> {
    let Listing { mailbox, messages } = list(a, secret, dirs).await?;
    let wanted = which.trim();
    let found: Vec<quarantine::Listed> = match wanted.parse::<u32>() {
        Ok(uid) => messages.into_iter().filter(|l| l.uid == uid).collect(),
        Err(_) => messages
            .into_iter()
            .filter(|l| {
                l.message_id
                    .as_deref()
                    .is_some_and(|m| id_key(m) == id_key(wanted))
            })
            .collect(),
    };
    if found.is_empty() {
        return Ok((mailbox, Vec::new()));
    }
    let mut imap = imap::connect(a, secret).await?;
    let a = &imap.resolve_account(a);
    let (sent, _) = crate::sentsync::refresh(&mut imap, a, &dirs.state, now()).await?;
    imap.examine(&a.quarantine).await?;
    let ctx = crate::classify::Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let uids: Vec<u32> = found.iter().map(|l| l.uid).collect();
    let mut verdicts: std::collections::HashMap<u32, crate::Verdict> = Default::default();
    for chunk in uids.chunks(BATCH) {
        for r in crate::clean::classify_batch(&mut imap, chunk, &ctx).await? {
            verdicts.insert(r.uid, r.verdict);
        }
    }
    imap.logout().await;
    Ok((
        mailbox,
        found
            .into_iter()
            .filter_map(|l| verdicts.remove(&l.uid).map(|v| (l, v)))
            .collect(),
    ))
}
