//! One sweep of a mailbox (`backscatter clean`) and its undo
//! (`backscatter restore`): fetch little, classify, move backscatter to
//! quarantine in journaled batches, and finish any batch an earlier run was
//! killed in.
//!
//! I/O orchestration over the pure pieces: `skeleton` plans what to fetch
//! and rebuilds the message, `classify` decides, `journal` records.

use crate::classify::{classify, Context, Decision, Kind, Verdict};
use crate::config::Account;
use crate::imap::{self, structure, Imap, ImapError};
use crate::journal::{self, Entry, Op};
use crate::secret::Secret;
use crate::sent::SentIndex;
use crate::sentsync::{self, SyncError};
use crate::{plan, skeleton};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// Messages fetched and moved per batch: bounds memory (at most
/// [`plan::PREFIX`] bytes a message, plus [`plan::WHOLE`] for the longer
/// automated ones) and the work a crash can leave unfinished. Larger
/// batches save round trips, but widen the window in which a killed run's
/// MOVE still runs on the server while the next run reconciles its journal.
pub const BATCH: usize = 500;

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

#[derive(Debug, Clone)]
pub struct CleanOptions {
    pub mailbox: String,
    /// Only messages received since this Unix time (IMAP SINCE, by day).
    pub since: Option<i64>,
    pub dry_run: bool,
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

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

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
    let mut next: BTreeMap<u32, plan::Next> = BTreeMap::new();
    for f in &first {
        let Some(uid) = f.uid else { continue };
        let prefix = f.body().unwrap_or_default().to_vec();
        next.insert(uid, plan::after_prefix(&prefix, f.size));
        bytes.insert(uid, prefix);
    }
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
    if !rest.is_empty() {
        let item = plan::rest_item();
        for f in imap.uid_fetch(&rest, &format!("(UID {item})")).await? {
            if let (Some(uid), Some(more)) = (f.uid, f.body()) {
                if let Some(b) = bytes.get_mut(&uid) {
                    b.extend_from_slice(more);
                }
            }
        }
    }
    let mut rows: Vec<Row> = bytes
        .iter()
        .map(|(uid, b)| row(*uid, b, classify(b, ctx)))
        .collect();
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
        subject: head.as_ref().and_then(|m| m.subject()).map(str::to_string),
        verdict,
    }
}

/// Finish batches an earlier run left without a commit (killed between
/// writing the intent and confirming the move). Returns how many messages
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
        let source = first.mailbox.clone();
        let dest = first.to.clone();
        let sel = match imap.select(&source).await {
            Ok(s) => s,
            Err(e) if e.kind == imap::ErrorKind::No => {
                // The mailbox is gone: nothing can be checked or finished.
                close(journal_path, &first.batch, Vec::new())?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let uids: Vec<u32> = batch.iter().map(|e| e.uid).collect();
        let still: HashSet<u32> = if sel.uid_validity == first.uidvalidity {
            imap.uid_search(&format!("UID {}", imap::uid_set(&uids)))
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        // Still in the source: either never moved (MOVE is atomic), or
        // copied without the expunge (COPY fallback). Finish the latter.
        let left: Vec<&Entry> = batch.iter().filter(|e| still.contains(&e.uid)).collect();
        let mut finished: Vec<u32> = Vec::new();
        if !left.is_empty() && !dest.is_empty() {
            // A destination that does not exist holds no copies.
            let in_dest = match message_ids_in(imap, &dest).await {
                Ok(m) => m,
                Err(e) if e.kind == imap::ErrorKind::No => HashMap::new(),
                Err(e) => return Err(e.into()),
            };
            imap.select(&source).await?;
            let copied: Vec<u32> = left
                .iter()
                .filter(|e| {
                    e.message_id.as_ref().is_some_and(|id| {
                        in_dest.contains_key(&crate::classify::fields::id_key(id))
                    })
                })
                .map(|e| e.uid)
                .collect();
            if !copied.is_empty() {
                imap.uid_delete(&copied).await?;
                finished = copied;
            }
        }
        let moved: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| !still.contains(u) || finished.contains(u))
            .collect();
        recovered += moved.len();
        close(journal_path, &first.batch, moved)?;
        let _ = a;
    }
    Ok(recovered)
}

fn close(path: &std::path::Path, batch: &str, moved: Vec<u32>) -> Result<(), CleanError> {
    journal::append(path, &[Entry::marker(Op::Reconciled, batch, now(), moved)])
        .map_err(io_err("write the journal"))
}

fn commit(path: &std::path::Path, batch: &str) -> Result<(), CleanError> {
    journal::append(path, &[Entry::marker(Op::Commit, batch, now(), Vec::new())])
        .map_err(io_err("write the journal"))
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
                    out.entry(crate::classify::fields::id_key(&id))
                        .or_default()
                        .push(uid);
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
        summary.recovered = reconcile(&mut imap, a, &journal_path).await?;
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
    for (n, chunk) in uids.chunks(BATCH).enumerate() {
        let rows = classify_batch(&mut imap, chunk, &ctx).await?;
        summary.scanned += rows.len();
        let mut to_move: Vec<&Row> = Vec::new();
        for r in &rows {
            match r.verdict.verdict {
                Decision::Backscatter => to_move.push(r),
                Decision::Legitimate => summary.legitimate += 1,
                Decision::Normal => summary.normal += 1,
            }
        }
        if opts.dry_run {
            summary.quarantined += to_move.len();
            summary.would_move.extend(to_move.into_iter().cloned());
        } else if !to_move.is_empty() {
            move_batch(
                &mut imap,
                a,
                &journal_path,
                &opts.mailbox,
                sel.uid_validity,
                &to_move,
                n,
            )
            .await?;
            summary.quarantined += to_move.len();
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

pub(crate) async fn move_batch(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
    mailbox: &str,
    uidvalidity: u32,
    rows: &[&Row],
    n: usize,
) -> Result<(), CleanError> {
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let intents: Vec<Entry> = rows
        .iter()
        .map(|r| Entry {
            ts,
            op: Op::Quarantine,
            batch: batch.clone(),
            account: a.name.clone(),
            mailbox: mailbox.to_string(),
            uidvalidity,
            uid: r.uid,
            message_id: r.message_id.clone(),
            kind: r.verdict.kind,
            reasons: r.verdict.reasons.clone(),
            to: a.quarantine.clone(),
            moved: Vec::new(),
        })
        .collect();
    journal::append(journal_path, &intents).map_err(io_err("write the journal"))?;
    let uids: Vec<u32> = rows.iter().map(|r| r.uid).collect();
    if let Err(e) = imap.uid_move(&uids, &a.quarantine).await {
        if e.kind == imap::ErrorKind::No {
            // The server refused the whole command: nothing moved.
            close(journal_path, &batch, Vec::new())?;
        }
        return Err(e.into());
    }
    commit(journal_path, &batch)
}

/// Which quarantined messages to restore.
#[derive(Debug, Clone)]
pub enum RestoreFilter {
    All,
    Since(i64),
    MessageId(String),
}

#[derive(Debug, Clone, Default)]
pub struct RestoreSummary {
    pub restored: usize,
    /// In the journal but no longer in quarantine (moved or deleted by hand).
    pub missing: usize,
    pub seconds: f64,
}

/// Move quarantined messages back where they came from, finding them in
/// quarantine by Message-ID (UIDs change when a message moves).
pub async fn restore(
    a: &Account,
    secret: &Secret,
    filter: &RestoreFilter,
    dirs: &Dirs,
) -> Result<RestoreSummary, CleanError> {
    let start = Instant::now();
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let entries = journal::read(&journal_path).map_err(io_err("read the journal"))?;
    let mut imap = imap::connect(a, secret).await?;
    let a = &imap.resolve_account(a);
    reconcile(&mut imap, a, &journal_path).await?;
    let entries = {
        // Re-read: reconciliation may have closed batches.
        let mut e = journal::read(&journal_path).map_err(io_err("read the journal"))?;
        if e.is_empty() {
            e = entries;
        }
        e
    };
    let wanted: Vec<Entry> = journal::quarantined(&entries)
        .into_iter()
        .filter(|e| e.to == a.quarantine)
        .filter(|e| match filter {
            RestoreFilter::All => true,
            RestoreFilter::Since(t) => e.ts >= *t,
            RestoreFilter::MessageId(id) => e.message_id.as_deref().is_some_and(|m| {
                crate::classify::fields::id_key(m) == crate::classify::fields::id_key(id)
            }),
        })
        .collect();
    let mut summary = RestoreSummary::default();
    if wanted.is_empty() {
        imap.logout().await;
        summary.seconds = start.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let in_q = message_ids_in(&mut imap, &a.quarantine).await?;
    let sel = imap.select(&a.quarantine).await?;
    // Group by the mailbox each message came from.
    let mut by_dest: BTreeMap<String, Vec<(u32, &Entry)>> = BTreeMap::new();
    let mut used: HashSet<u32> = HashSet::new();
    for e in &wanted {
        let found = e
            .message_id
            .as_ref()
            .and_then(|id| in_q.get(&crate::classify::fields::id_key(id)))
            .and_then(|uids| uids.iter().find(|u| !used.contains(u)).copied());
        match found {
            Some(uid) => {
                used.insert(uid);
                by_dest.entry(e.mailbox.clone()).or_default().push((uid, e));
            }
            None => summary.missing += 1,
        }
    }
    for (dest, items) in &by_dest {
        imap.ensure_mailbox(dest).await?;
        for (n, chunk) in items.chunks(BATCH).enumerate() {
            let batch = journal::batch_id(now(), n);
            let intents: Vec<Entry> = chunk
                .iter()
                .map(|(uid, e)| Entry {
                    ts: now(),
                    op: Op::Restore,
                    batch: batch.clone(),
                    account: a.name.clone(),
                    mailbox: a.quarantine.clone(),
                    uidvalidity: sel.uid_validity,
                    uid: *uid,
                    message_id: e.message_id.clone(),
                    kind: e.kind,
                    reasons: Vec::new(),
                    to: dest.clone(),
                    moved: Vec::new(),
                })
                .collect();
            journal::append(&journal_path, &intents).map_err(io_err("write the journal"))?;
            let uids: Vec<u32> = chunk.iter().map(|(u, _)| *u).collect();
            imap.uid_move(&uids, dest).await?;
            commit(&journal_path, &batch)?;
            summary.restored += chunk.len();
        }
    }
    imap.logout().await;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Kinds counted in a summary (for the CLI).
pub fn kind_counts(rows: &[Row]) -> BTreeMap<Kind, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        if let Some(k) = r.verdict.kind {
            *m.entry(k).or_default() += 1;
        }
    }
    m
}

/// The sent index alone (for `account check`).
pub async fn sent_index(
    imap: &mut Imap,
    a: &Account,
    dirs: &Dirs,
) -> Result<(SentIndex, sentsync::SyncStats), CleanError> {
    Ok(sentsync::refresh(imap, a, &dirs.state, now()).await?)
}
