//! One sweep of a mailbox (`backscatter clean`) and its undo
//! (`backscatter restore`): fetch little, classify, move backscatter to
//! quarantine in journaled batches, and finish any batch an earlier run was
//! killed in.
//!
//! I/O orchestration over the pure pieces: `skeleton` plans what to fetch
//! and rebuilds the message, `classify` decides, `journal` records.

use crate::classify::{classify, Context, Decision, Verdict};
use crate::config::Account;
use crate::fingerprint::Identity;
use crate::imap::{self, structure, Imap, ImapError};
use crate::journal::{self, Entry, Op};
use crate::quarantine;
use crate::secret::Secret;
use crate::sent::SentIndex;
use crate::sentsync::{self, SyncError};
use crate::{plan, skeleton};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Messages fetched and moved per batch: bounds memory (at most
/// [`plan::PREFIX`] bytes a message, plus [`plan::WHOLE`] for the longer
/// automated ones) and the work a crash can leave unfinished. Larger
/// batches save round trips, but widen the window in which a killed run's
/// MOVE still runs on the server while the next run reconciles its journal.
pub const BATCH: usize = 500;

/// At most this many bytes of longer messages are fetched by one FETCH of
/// [`classify_batch`] and held at once.
const REST_BYTES: u64 = 24 << 20;

/// Messages classified per round of FETCH commands in `clean`: a few
/// commands for this many messages (at most [`plan::PREFIX`] bytes each,
/// plus [`plan::WHOLE`] for the longer automated ones), so that round trips
/// do not dominate over a home link; their moves still go in journaled
/// batches of [`BATCH`].
pub const FETCH_BATCH: usize = 4 * BATCH;

/// Where the journal and caches live (the platform dirs, or a test's).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub data: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub fn platform() -> std::io::Result<Dirs> {
        Ok(Dirs {
            data: crate::paths::data_dir()?,
            state: crate::paths::state_dir()?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    pub mailbox: String,
    /// Only messages received since this Unix time (IMAP SINCE, by day).
    pub since: Option<i64>,
    pub dry_run: bool,
    /// Record every message's outcome in [`Summary::each`].
    pub each: bool,
    /// Set (by Ctrl-C) to stop after the batch in flight.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// One message's outcome, for `--dry-run` listings.
#[derive(Debug, Clone)]
pub struct Row {
    pub uid: u32,
    pub verdict: Verdict,
    pub message_id: Option<String>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub scanned: usize,
    pub quarantined: usize,
    pub legitimate: usize,
    pub normal: usize,
    pub errors: usize,
    pub seconds: f64,
    /// Messages an interrupted earlier run had left half-done, now finished.
    pub recovered: usize,
    /// Backscatter left in place because the user restored it before
    /// (`$NotBackscatter`, or the local list).
    pub kept_by_user: usize,
    /// Bytes received from the server as they came off the connection
    /// (compressed, with `COMPRESS=DEFLATE`).
    pub bytes_fetched: u64,
    /// What those bytes inflated to; 0 when the connection was not
    /// compressed.
    pub bytes_inflated: u64,
    /// Commands sent and awaited (see `imap::ROUND_TRIPS`).
    pub round_trips: u64,
    pub sent_indexed: usize,
    /// Sent messages read from the server this run (the rest came from
    /// the cache).
    pub sent_fetched: usize,
    /// With `dry_run`: what would move.
    pub would_move: Vec<Row>,
    /// With `dry_run`: the legitimate responses kept (the user's own
    /// delivery problems).
    pub legitimate_kept: Vec<Row>,
    /// With `each`: every message's outcome, by UID.
    pub each: Vec<Outcome>,
    /// Stopped by `stop` before the end (after a whole batch).
    pub interrupted: bool,
}

/// What a sweep did with one message (`clean --each`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Moved to quarantine.
    Moved,
    /// Would be moved (dry run).
    WouldMove,
    /// Left in place: legitimate or normal.
    Kept,
    /// Backscatter left in place because the user restored it before.
    KeptByUser,
    /// Backscatter that was gone (expunged) by the time it was to move.
    Gone,
    /// Could not be judged (the server returned nothing usable): left.
    Error,
}

/// One message's outcome in a sweep.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub uid: u32,
    pub action: Action,
    /// The classifier's row; `None` for [`Action::Error`].
    pub row: Option<Row>,
}

/// Why a sweep stopped.
#[derive(Debug)]
pub enum CleanError {
    /// A configuration problem (exit status 2).
    Config(String),
    Imap(ImapError),
    Io(String),
}

impl std::fmt::Display for CleanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleanError::Config(m) | CleanError::Io(m) => f.write_str(m),
            CleanError::Imap(e) => write!(f, "{e}"),
        }
    }
}

impl From<ImapError> for CleanError {
    fn from(e: ImapError) -> Self {
        if e.kind == imap::ErrorKind::Missing {
            // A mailbox named in the config or on the command line.
            CleanError::Config(e.message)
        } else {
            CleanError::Imap(e)
        }
    }
}

impl From<SyncError> for CleanError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NoSentMailbox(m) => CleanError::Config(m),
            SyncError::Imap(e) => e.into(),
        }
    }
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> CleanError + '_ {
    move |e| CleanError::Io(format!("cannot {what}: {e}"))
}

pub use crate::clock::now;

/// Fetch and classify a batch of UIDs of the selected mailbox, following
/// the fetch plan ([`plan`]): the verdict of each message is the one
/// [`classify`] gives on the message's own bytes. At most three FETCH
/// commands per batch (prefix, structure of a few, rest of the longer
/// automated ones), each for the whole batch.
pub async fn classify_batch(
    imap: &mut Imap,
    uids: &[u32],
    ctx: &Context<'_>,
) -> Result<Vec<Row>, ImapError> {
    // 1. The first PREFIX bytes of every message, with its size.
    let first = imap
        .uid_fetch(uids, &format!("(UID {})", plan::prefix_items()))
        .await?;
    let mut bytes: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut sizes: HashMap<u32, u32> = HashMap::new();
    let mut next: BTreeMap<u32, plan::Next> = BTreeMap::new();
    for f in &first {
        let Some(uid) = f.uid else { continue };
        let prefix = f.body().unwrap_or_default().to_vec();
        next.insert(uid, plan::after_prefix(&prefix, f.size));
        sizes.insert(uid, f.size.unwrap_or(plan::WHOLE));
        bytes.insert(uid, prefix);
    }
    drop(first);
    // 2. The structure of long multipart/mixed messages with no sign from
    //    the sending side in their headers.
    let structure: Vec<u32> = next
        .iter()
        .filter(|(_, n)| **n == plan::Next::Structure)
        .map(|(u, _)| *u)
        .collect();
    if !structure.is_empty() {
        let fetched = imap.uid_fetch(&structure, "(UID BODYSTRUCTURE)").await?;
        let roots: HashMap<u32, skeleton::Part> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, structure::convert(f.bodystructure()?))))
            .collect();
        for uid in structure {
            let prefix = bytes.get(&uid).map(Vec::as_slice).unwrap_or_default();
            next.insert(uid, plan::after_structure(prefix, roots.get(&uid)));
        }
    }
    // 3. The rest of what the classifier reads, for the long candidates.
    let rest: Vec<u32> = next
        .iter()
        .filter(|(_, n)| **n == plan::Next::Rest)
        .map(|(u, _)| *u)
        .collect();
    // In groups of at most REST_BYTES, each classified and dropped before
    // the next is fetched: memory stays bounded however long the messages.
    let mut rows: Vec<Row> = Vec::with_capacity(bytes.len());
    let item = plan::rest_item();
    let mut group: Vec<u32> = Vec::new();
    let mut budget = 0u64;
    for (i, &uid) in rest.iter().enumerate() {
        group.push(uid);
        budget += u64::from(
            sizes
                .get(&uid)
                .copied()
                .unwrap_or(plan::WHOLE)
                .min(plan::WHOLE),
        );
        if budget < REST_BYTES && i + 1 < rest.len() {
            continue;
        }
        for f in imap.uid_fetch(&group, &format!("(UID {item})")).await? {
            if let (Some(uid), Some(more)) = (f.uid, f.body()) {
                if let Some(b) = bytes.get_mut(&uid) {
                    b.extend_from_slice(more);
                }
            }
        }
        for uid in group.drain(..) {
            if let Some(b) = bytes.remove(&uid) {
                rows.push(row(uid, &b, classify(&b, ctx)));
            }
        }
        budget = 0;
    }
    rows.extend(bytes.iter().map(|(uid, b)| row(*uid, b, classify(b, ctx))));
    rows.sort_by_key(|r| r.uid);
    Ok(rows)
}

fn row(uid: u32, msg: &[u8], verdict: Verdict) -> Row {
    // As the classifier does: saved messages may start with blank lines.
    let start = msg
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(msg.len());
    let head = crate::classify::PARSER.parse_headers(&msg[start..]);
    Row {
        uid,
        message_id: head
            .as_ref()
            .and_then(|m| m.message_id())
            .map(|s| format!("<{s}>")),
        subject: head.as_ref().and_then(crate::classify::subject),
        verdict,
    }
}

/// Finish batches an earlier run left without a commit (killed between
/// writing the intent and confirming the move, or a move the server
/// refused partway). Each message is looked for by its fingerprint (or,
/// in old journals, its Message-ID) in both mailboxes, never by trusting
/// one server reply: in the destination only, it moved; in both, the COPY
/// fallback was cut before its expunge, which is finished now; in the
/// source only, or nowhere, it did not move. Returns how many messages
/// were found moved or finished.
pub(crate) async fn reconcile(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
) -> Result<usize, CleanError> {
    let entries = journal::read(journal_path).map_err(io_err("read the journal"))?;
    let mut recovered = 0;
    for batch in journal::unfinished(&entries) {
        let first = &batch[0];
        let (source, dest) = (first.mailbox.clone(), first.to.clone());
        // The source: which of the batch's UIDs still hold their message.
        let in_source: HashSet<u32> = match imap.select(&source).await {
            Ok(sel) if sel.uid_validity == first.uidvalidity => {
                let uids: Vec<u32> = batch.iter().map(|e| e.uid).collect();
                let found: HashMap<u32, Identity> = quarantine::identities(imap, &uids)
                    .await?
                    .into_iter()
                    .map(|i| (i.uid, i))
                    .collect();
                batch
                    .iter()
                    .filter(|e| found.get(&e.uid).is_some_and(|i| same_message(e, i)))
                    .map(|e| e.uid)
                    .collect()
            }
            // Renumbered or gone: none of these UIDs is the message.
            Ok(_) => HashSet::new(),
            Err(e) if e.kind == imap::ErrorKind::No => HashSet::new(),
            Err(e) => return Err(e.into()),
        };
        // The destination: messages no earlier move accounts for. Where
        // the server reported where earlier moves landed, only what
        // arrived after the newest of them is read.
        let held: Vec<Entry> = journal::quarantined(&entries)
            .into_iter()
            .filter(|e| e.to == dest)
            .collect();
        let floor = |validity: u32| {
            if held
                .iter()
                .all(|e| e.dest_uid().is_some_and(|(v, _)| v == validity))
            {
                held.iter()
                    .filter_map(|e| e.dest_uid().map(|(_, u)| u))
                    .max()
                    .unwrap_or(0)
            } else {
                0
            }
        };
        let (dest_validity, in_dest) = match quarantine::inventory_above(imap, &dest, floor).await {
            Ok((sel, _, items)) => {
                let free: Vec<Identity> = quarantine::attribute(&held, items, sel.uid_validity)
                    .placed
                    .into_iter()
                    .filter(|p| p.entry.is_none())
                    .map(|p| p.item)
                    .collect();
                (sel.uid_validity, free)
            }
            Err(e) if e.kind == imap::ErrorKind::No => (0, Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut claimed: HashSet<u32> = HashSet::new();
        let mut mapped: Vec<(u32, u32)> = Vec::new();
        for e in &batch {
            if let Some(d) = in_dest
                .iter()
                .find(|i| !claimed.contains(&i.uid) && same_message(e, i))
            {
                claimed.insert(d.uid);
                mapped.push((e.uid, d.uid));
            }
        }
        let doubled: Vec<u32> = mapped
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| in_source.contains(s))
            .collect();
        if !doubled.is_empty() {
            imap.select(&source).await?;
            imap.uid_delete(&doubled).await?;
        }
        let moved: Vec<u32> = mapped.iter().map(|(s, _)| *s).collect();
        recovered += moved.len();
        let mut marker = Entry::marker(Op::Reconciled, &first.batch, now(), moved);
        marker.dest_uidvalidity = dest_validity;
        marker.mapped = mapped;
        journal::append(journal_path, &[marker]).map_err(io_err("write the journal"))?;
        let _ = a;
    }
    Ok(recovered)
}

/// Keep the journal small ([`journal::maybe_compact`]); a failure is
/// logged, never fatal (the journal is still whole).
pub(crate) fn compact_journal(path: &std::path::Path) {
    match journal::maybe_compact(path, now(), journal::COMPACT_BYTES) {
        Ok(Some((before, after))) => {
            tracing::info!("journal compacted from {before} to {after} lines")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("could not compact the journal {}: {e}", path.display()),
    }
}

/// Is `i` the message journaled in `e`: the same fingerprint, or for
/// entries written before fingerprints the same Message-ID (or, lacking
/// both, the same UID, which the caller checked).
fn same_message(e: &Entry, i: &Identity) -> bool {
    if !e.fingerprint.is_empty() {
        return e.fingerprint == i.fingerprint;
    }
    match (&e.message_id, &i.message_id) {
        (Some(a), Some(b)) => crate::fingerprint::id_key(a) == crate::fingerprint::id_key(b),
        (Some(_), None) => false,
        (None, _) => e.uid == i.uid,
    }
}

fn commit(
    path: &std::path::Path,
    batch: &str,
    mapping: Option<imap::CopyUid>,
) -> Result<(), CleanError> {
    let mut marker = Entry::marker(Op::Commit, batch, now(), Vec::new());
    if let Some(m) = mapping {
        marker.dest_uidvalidity = m.uidvalidity;
        marker.mapped = m.pairs;
    }
    journal::append(path, &[marker]).map_err(io_err("write the journal"))
}

/// Message-ID key -> UIDs, for every message of `mailbox` (selects it).
pub(crate) async fn message_ids_in(
    imap: &mut Imap,
    mailbox: &str,
) -> Result<HashMap<String, Vec<u32>>, ImapError> {
    let mut out: HashMap<String, Vec<u32>> = HashMap::new();
    let sel = imap.select(mailbox).await?;
    if sel.exists == 0 {
        return Ok(out);
    }
    let uids = imap.uid_search("ALL").await?;
    for chunk in uids.chunks(2000) {
        for f in imap
            .uid_fetch(chunk, "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await?
        {
            if let (Some(uid), Some(h)) = (f.uid, f.header()) {
                let text = String::from_utf8_lossy(h);
                if let Some(id) = crate::classify::fields::first_message_id(
                    text.split_once(':').map(|x| x.1).unwrap_or(""),
                ) {
                    out.entry(id.key().to_string()).or_default().push(uid);
                }
            }
        }
    }
    Ok(out)
}

/// Progress callback: (done, total).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Sweep one mailbox.
pub async fn clean(
    a: &Account,
    secret: &Secret,
    opts: &CleanOptions,
    dirs: &Dirs,
    progress: Progress<'_>,
) -> Result<Summary, CleanError> {
    let start = Instant::now();
    let counters0 = imap::counters();
    let mut imap = imap::connect(a, secret).await?;
    // Every name as this server spells it (its namespace and delimiter).
    let a = &imap.resolve_account(a);
    let opts = &CleanOptions {
        mailbox: imap.resolve(&opts.mailbox),
        ..opts.clone()
    };
    if opts.mailbox == a.quarantine {
        return Err(CleanError::Config(format!(
            "\"{}\" is the quarantine mailbox of account \"{}\": sweep another mailbox, or use `backscatter restore`",
            opts.mailbox, a.name
        )));
    }
    let (sent, stats) = sentsync::refresh(&mut imap, a, &dirs.state, now()).await?;
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let mut summary = Summary {
        sent_indexed: stats.messages,
        sent_fetched: stats.fetched,
        ..Summary::default()
    };
    if !opts.dry_run {
        // Refuse before anything is journaled on a server where moves are
        // unsafe.
        imap.can_move_safely()?;
        summary.recovered = reconcile(&mut imap, a, &journal_path).await?;
        compact_journal(&journal_path);
    }
    let sel = imap.open_named(&opts.mailbox, false).await?;
    if !opts.dry_run && sel.exists > 0 {
        imap.ensure_mailbox(&a.quarantine).await?;
    }
    let uids = if sel.exists == 0 {
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
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let total = uids.len();
    progress(0, total);
    for (n, chunk) in uids.chunks(FETCH_BATCH).enumerate() {
        if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            summary.interrupted = true;
            break;
        }
        let rows = classify_batch(&mut imap, chunk, &ctx).await?;
        // A UID the server returned nothing for could not be judged: it
        // stays where it is, counted as an error.
        let judged: HashSet<u32> = rows.iter().map(|r| r.uid).collect();
        let unjudged: Vec<u32> = chunk
            .iter()
            .copied()
            .filter(|u| !judged.contains(u))
            .collect();
        summary.errors += unjudged.len();
        summary.scanned += rows.len() + unjudged.len();
        let mut to_move: Vec<&Row> = Vec::new();
        for r in &rows {
            match r.verdict.verdict {
                Decision::Backscatter => to_move.push(r),
                Decision::Legitimate => {
                    summary.legitimate += 1;
                    if opts.dry_run {
                        summary.legitimate_kept.push(r.clone());
                    }
                }
                Decision::Normal => summary.normal += 1,
            }
        }
        let mut moved = Moved::default();
        if opts.dry_run {
            summary.quarantined += to_move.len();
            summary
                .would_move
                .extend(to_move.iter().map(|r| (*r).clone()));
        } else if !to_move.is_empty() {
            // Journaled moves stay at BATCH messages each.
            for (k, part) in to_move.chunks(BATCH).enumerate() {
                let m = move_batch(
                    &mut imap,
                    a,
                    &journal_path,
                    &opts.mailbox,
                    sel.uid_validity,
                    part,
                    n * (FETCH_BATCH / BATCH) + k,
                )
                .await?;
                moved.moved.extend(m.moved);
                moved.kept_by_user.extend(m.kept_by_user);
            }
            summary.quarantined += moved.moved.len();
            summary.kept_by_user += moved.kept_by_user.len();
        }
        if opts.each {
            summary.each.extend(unjudged.iter().map(|&uid| Outcome {
                uid,
                action: Action::Error,
                row: None,
            }));
            for r in &rows {
                let action = match r.verdict.verdict {
                    Decision::Backscatter if opts.dry_run => Action::WouldMove,
                    Decision::Backscatter if moved.moved.contains(&r.uid) => Action::Moved,
                    Decision::Backscatter if moved.kept_by_user.contains(&r.uid) => {
                        Action::KeptByUser
                    }
                    Decision::Backscatter => Action::Gone,
                    _ => Action::Kept,
                };
                summary.each.push(Outcome {
                    uid: r.uid,
                    action,
                    row: Some(r.clone()),
                });
            }
            summary.each.sort_by_key(|o| o.uid);
        }
        progress(summary.scanned, total);
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    let counters = imap::counters();
    summary.bytes_fetched = counters.0 - counters0.0;
    summary.bytes_inflated = counters.1 - counters0.1;
    summary.round_trips = counters.2 - counters0.2;
    Ok(summary)
}

/// What [`move_batch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    /// UIDs moved to quarantine.
    pub moved: Vec<u32>,
    /// UIDs left where they are because the user restored them before
    /// (keyword [`quarantine::NOT_BACKSCATTER`] or the local list) or the
    /// account's `keep` list matches them.
    pub kept_by_user: Vec<u32>,
}

/// Move these rows of the selected `mailbox` to quarantine, journaled:
/// refuse first if the server cannot move safely; read each message's
/// fingerprint and flags; leave the ones the user restored before; write
/// the intents; move; commit with the server's COPYUID mapping. A move
/// the server refuses is reconciled at once (it may have moved part of
/// the set); a lost connection leaves the batch for the next run.
pub(crate) async fn move_batch(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
    mailbox: &str,
    uidvalidity: u32,
    rows: &[&Row],
    n: usize,
) -> Result<Moved, CleanError> {
    imap.can_move_safely()?;
    let mut out = Moved::default();
    let uids: Vec<u32> = rows.iter().map(|r| r.uid).collect();
    let found: HashMap<u32, Identity> = quarantine::identities(imap, &uids)
        .await?
        .into_iter()
        .map(|i| (i.uid, i))
        .collect();
    let kept = match journal_path.parent() {
        Some(dir) => quarantine::load_kept(&quarantine::kept_path(dir, &a.name))
            .map_err(io_err("read the list of restored messages"))?,
        None => HashSet::new(),
    };
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let mut intents: Vec<Entry> = Vec::new();
    for r in rows {
        // A message gone since it was classified is not moved.
        let Some(id) = found.get(&r.uid) else {
            continue;
        };
        if id.has_flag(quarantine::NOT_BACKSCATTER) || kept.contains(&id.fingerprint) {
            out.kept_by_user.push(r.uid);
            continue;
        }
        let seen = crate::keep::Seen {
            from: id.from.as_deref(),
            list_id: id.list_id.as_deref(),
            reporting_mta: r.verdict.original.reporting_mta.as_deref(),
        };
        if let Some(rule) = crate::keep::matches(&a.keep, &seen) {
            tracing::info!(account = %a.name, uid = r.uid, "kept: matches keep entry \"{rule}\"");
            out.kept_by_user.push(r.uid);
            continue;
        }
        let mut e = Entry::marker(Op::Quarantine, &batch, ts, Vec::new());
        e.account = a.name.clone();
        e.mailbox = mailbox.to_string();
        e.uidvalidity = uidvalidity;
        e.uid = r.uid;
        e.message_id = r.message_id.clone().or_else(|| id.message_id.clone());
        e.kind = r.verdict.kind;
        e.reasons = r.verdict.reasons.clone();
        e.to = a.quarantine.clone();
        e.fingerprint = id.fingerprint.clone();
        intents.push(e);
    }
    if intents.is_empty() {
        return Ok(out);
    }
    journal::append(journal_path, &intents).map_err(io_err("write the journal"))?;
    let uids: Vec<u32> = intents.iter().map(|e| e.uid).collect();
    match imap.uid_move_mapped(&uids, &a.quarantine).await {
        Ok(mapping) => commit(journal_path, &batch, mapping)?,
        Err(e) => {
            if e.kind == imap::ErrorKind::No {
                // Part of the set may have moved (RFC 6851 section 4.4):
                // look, rather than assume.
                reconcile(imap, a, journal_path).await?;
            }
            return Err(e.into());
        }
    }
    out.moved = uids;
    Ok(out)
}

pub use crate::restore::{restore, RestoreFilter, RestoreSummary};

/// The sent index alone (for `account check`).
pub async fn sent_index(
    imap: &mut Imap,
    a: &Account,
    dirs: &Dirs,
) -> Result<(SentIndex, sentsync::SyncStats), CleanError> {
    Ok(sentsync::refresh(imap, a, &dirs.state, now()).await?)
}
