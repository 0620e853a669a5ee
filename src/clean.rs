//! One sweep of a mailbox (`backscatter clean`) and its undo
//! (`backscatter restore`): fetch little, classify, move backscatter to
//! quarantine in journaled batches, and finish any batch an earlier run was
//! killed in.
//!
//! I/O orchestration over the pure pieces: `skeleton` plans what to fetch
//! and rebuilds the message, `classify` decides, `journal` records.

use crate::classify::{classify_at, Context, Decision, Verdict};
use crate::clock::now;
use crate::config::Account;
use crate::fingerprint::Identity;
use crate::imap::{self, pipeline, pipeline::Pipeline, Imap, ImapError};
use crate::journal::{self, Entry, Op};
use crate::quarantine;
use crate::rerun::{self, Mark, Plan};
use crate::secret::Secret;
use crate::sent::window;
use crate::sent::SentIndex;
use crate::sentsync::{self, Reach, SyncError};
use crate::{plan, skeleton};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Only messages received since this Unix time: the first instant of
    /// the user's day (`--since`, [`crate::day::parse`]). The server
    /// compares days in a zone of its choosing, so it is asked for `SINCE` the day
    /// before that instant's UTC date ([`crate::day::search_since`]): a
    /// sweep may read up to two days more than asked, never less than a
    /// `SINCE` of the typed day did.
    pub since: Option<i64>,
    pub dry_run: bool,
    /// Read every message, ignoring what earlier sweeps recorded (`--full`).
    pub full: bool,
    /// Record every message's outcome in [`Summary::each`].
    pub each: bool,
    /// Set (by Ctrl-C) to stop after the batch in flight.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// One message's outcome, for `--dry-run` listings.
#[derive(Debug, Clone)]
pub struct Row {
    pub uid: u32,
    /// When it arrived (INTERNALDATE, Unix seconds), where the server said.
    pub arrived: Option<i64>,
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
    /// Backscatter that another client (a `watch` running at the same
    /// time, a second `clean`) moved to quarantine after this sweep
    /// scheduled it and before its move: found in quarantine.
    pub already_moved: usize,
    /// Backscatter that left the mailbox after it was scheduled and is not
    /// in quarantine either (deleted, or moved elsewhere by a mail client).
    pub gone: usize,
    /// Backscatter left in place because the user restored it before
    /// (`$NotBackscatter`, or the local list) or the keep list matches it
    /// (those also counted in `kept_by_list`).
    pub kept_by_user: usize,
    /// Of `kept_by_user`, those kept by the account's keep list, by the
    /// entry that matched.
    pub kept_by_list: BTreeMap<String, usize>,
    /// With `dry_run`: the backscatter the keep list keeps, with the
    /// reason naming the entry.
    pub kept_listed: Vec<(Row, String)>,
    /// Bytes received from the server as they came off the connection
    /// (compressed, with `COMPRESS=DEFLATE`).
    pub bytes_fetched: u64,
    /// What those bytes inflated to; 0 when the connection was not
    /// compressed.
    pub bytes_inflated: u64,
    /// Commands sent and awaited (see `imap::ROUND_TRIPS`).
    pub round_trips: u64,
    /// Why every message was read; `None` for a rerun, which read only
    /// what arrived or changed since the last sweep ([`rerun`]).
    pub full: Option<rerun::Full>,
    /// Messages in the mailbox that a rerun did not read because an
    /// earlier sweep had judged them.
    pub skipped_known: usize,
    pub sent_indexed: usize,
    /// Sent messages read from the server this run (the rest came from
    /// the cache).
    pub sent_fetched: usize,
    /// Round trips spent bringing the sent index up to date (part of
    /// `round_trips`): the refresh, the search for mail older than it
    /// reaches and any widening with the SELECT back.
    pub sent_round_trips: u64,
    /// Bytes received for the same (part of `bytes_fetched`).
    pub sent_bytes_fetched: u64,
    /// With `dry_run`: what would move.
    pub would_move: Vec<Row>,
    /// With `dry_run`: the legitimate responses kept (the user's own
    /// delivery problems).
    pub legitimate_kept: Vec<Row>,
    /// With `each`: every message's outcome, by UID.
    pub each: Vec<Outcome>,
    /// Stopped by `stop` before the end (after a whole batch).
    pub interrupted: bool,
    /// With `dry_run`: why `clean` would refuse to move anything on this
    /// server (neither MOVE nor UIDPLUS); the verdicts are still listed.
    pub refused: Option<String>,
    /// The swept mailbox and the quarantine as the server names them
    /// (resolved in its personal namespace: `INBOX.Backscatter` on Cyrus).
    pub mailbox: String,
    pub quarantine: String,
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
    /// Backscatter that was gone (expunged) by the time it was to move,
    /// and is not in quarantine.
    Gone,
    /// Backscatter another client moved to quarantine first.
    AlreadyMoved,
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

impl std::error::Error for CleanError {}

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

/// Fetch and classify a batch of UIDs of the selected mailbox, following
/// the fetch plan ([`plan`]): the verdict of each message is the one
/// [`classify_at`] gives on the message's own bytes and its arrival
/// (INTERNALDATE). At most three FETCH
/// commands per batch (prefix, structure of a few, rest of the longer
/// automated ones), each for the whole batch.
///
/// A reply the server garbles is contained to the messages concerned:
/// a BODYSTRUCTURE that cannot be parsed (GNU Mailutils' for attached
/// messages) makes the batch's structure candidates fetch their bytes
/// instead, for the rest of the session; a message whose bytes cannot be
/// read ([`Imap::uid_fetch_contained`]) gets no row, and the caller
/// leaves it where it is.
pub async fn classify_batch(
    imap: &mut Imap,
    uids: &[u32],
    ctx: &Context<'_>,
) -> Result<Vec<Row>, ImapError> {
    // 1. The first PREFIX bytes of every message, with its size.
    let (first, _) = imap
        .uid_fetch_contained(uids, &format!("(UID {})", plan::prefix_items()))
        .await?;
    let mut bytes: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut sizes: HashMap<u32, u32> = HashMap::new();
    let mut arrived: HashMap<u32, i64> = HashMap::new();
    let mut next: BTreeMap<u32, plan::Next> = BTreeMap::new();
    for f in &first {
        let Some(uid) = f.uid else { continue };
        if let Some(d) = f.internal_date {
            arrived.insert(uid, d);
        }
        let prefix = f.body().unwrap_or_default().to_vec();
        next.insert(uid, plan::after_prefix(&prefix, f.size));
        sizes.insert(uid, f.size.unwrap_or(plan::WHOLE));
        bytes.insert(uid, prefix);
    }
    drop(first);
    // 1b. The whole header of messages whose header is longer than the
    //     prefix: it decides, as the prefix's header does for the others.
    //     A message settled by it is classified on its header alone.
    let long: Vec<u32> = next
        .iter()
        .filter(|(_, n)| **n == plan::Next::Header)
        .map(|(u, _)| *u)
        .collect();
    let mut headers: HashMap<u32, Vec<u8>> = HashMap::new();
    if !long.is_empty() {
        let (fetched, _) = imap
            .uid_fetch_contained(&long, &format!("(UID {})", plan::HEADER_ITEM))
            .await?;
        for f in fetched {
            if let (Some(uid), Some(h)) = (f.uid, f.header()) {
                headers.insert(uid, h.to_vec());
            }
        }
        for uid in long {
            let n = match headers.get(&uid) {
                Some(h) => plan::after_header(h),
                // Not returned: read on, rather than guess.
                None => plan::Next::Rest,
            };
            next.insert(uid, n);
            if n == plan::Next::Settled {
                if let Some(h) = headers.remove(&uid) {
                    bytes.insert(uid, h);
                }
            }
        }
    }
    // 2. The structure of long multipart/mixed messages with no sign from
    //    the sending side in their headers.
    let structure: Vec<u32> = next
        .iter()
        .filter(|(_, n)| **n == plan::Next::Structure)
        .map(|(u, _)| *u)
        .collect();
    if !structure.is_empty() {
        let fetched = if imap.structure_unreadable {
            Vec::new()
        } else {
            match imap.uid_fetch(&structure, "(UID BODYSTRUCTURE)").await {
                Ok(f) => f,
                Err(e) if e.kind == imap::ErrorKind::Unparsable => {
                    // Each structure unread: the plan fetches their bytes.
                    tracing::warn!(
                        account = %imap.account,
                        "{e}; reading the messages' bytes instead of their structure"
                    );
                    imap.structure_unreadable = true;
                    imap.reconnect().await?;
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        };
        let roots: HashMap<u32, skeleton::Part> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.structure()?.clone())))
            .collect();
        for uid in structure {
            let head = headers.get(&uid).or(bytes.get(&uid));
            let n =
                plan::after_structure(head.map(Vec::as_slice).unwrap_or_default(), roots.get(&uid));
            next.insert(uid, n);
            if n == plan::Next::Settled {
                if let Some(h) = headers.remove(&uid) {
                    bytes.insert(uid, h);
                }
            }
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
        let (fetched, unreadable) = imap
            .uid_fetch_contained(&group, &format!("(UID {item})"))
            .await?;
        for f in fetched {
            if let (Some(uid), Some(more)) = (f.uid, f.body()) {
                if let Some(b) = bytes.get_mut(&uid) {
                    b.extend_from_slice(more);
                }
            }
        }
        // Not judged from part of the message: no row.
        for (uid, _) in unreadable {
            bytes.remove(&uid);
        }
        for uid in group.drain(..) {
            if let Some(b) = bytes.remove(&uid) {
                let at = arrived.get(&uid).copied();
                rows.push(row(uid, &b, classify_at(&b, ctx, at), at));
            }
        }
        budget = 0;
    }
    rows.extend(bytes.iter().map(|(uid, b)| {
        let at = arrived.get(uid).copied();
        row(*uid, b, classify_at(b, ctx, at), at)
    }));
    rows.sort_by_key(|r| r.uid);
    Ok(rows)
}

pub(crate) fn row(uid: u32, msg: &[u8], verdict: Verdict, arrived: Option<i64>) -> Row {
    // As the classifier does: saved messages may start with blank lines.
    let start = msg
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(msg.len());
    let head = crate::classify::PARSER.parse_headers(&msg[start..]);
    Row {
        uid,
        arrived,
        message_id: head
            .as_ref()
            .and_then(|m| m.message_id())
            .map(|s| format!("<{s}>")),
        subject: head.as_ref().and_then(crate::classify::subject),
        verdict,
    }
}

/// Refuse (exit 2, [`CleanError::Config`]) a quarantine that is one of
/// the user's own mailboxes with a role (SPECIAL-USE, RFC 6154): `\Sent`
/// or a configured Sent mailbox (the sent index is read from it, and
/// `restore --all` would empty it into INBOX), `\Drafts`, `\Trash`
/// (emptied on their own by clients and servers), or INBOX. `a` is
/// resolved in the server's namespace. One LIST.
pub(crate) async fn refuse_unfit_quarantine(
    imap: &mut Imap,
    a: &Account,
) -> Result<(), CleanError> {
    let q = &a.quarantine;
    let refuse = |what: &str| {
        Err(CleanError::Config(format!(
            "the quarantine \"{}\" of account \"{}\" is {what}: set quarantine to a mailbox of its own (the default is \"Backscatter\")",
            imap::shown(q),
            a.name
        )))
    };
    if imap::names::is_inbox(q) {
        return refuse("INBOX");
    }
    if a.sent.iter().flatten().any(|m| m == q) {
        return refuse("a Sent mailbox (sent), which the sent index is built from");
    }
    let list = imap.list().await?;
    if let Some(m) = list.iter().find(|m| &m.name == q) {
        for (attr, what) in [
            ("\\Sent", "the server's Sent mailbox (\\Sent), which the sent index is built from"),
            ("\\Drafts", "the server's Drafts mailbox (\\Drafts)"),
            ("\\Trash", "the server's Trash mailbox (\\Trash), which mail clients and servers empty on their own"),
        ] {
            if m.special_use.iter().any(|u| u.eq_ignore_ascii_case(attr)) {
                return refuse(what);
            }
        }
    }
    Ok(())
}

/// Finish batches an earlier run left without a commit (killed between
/// writing the intent and confirming the move, or a move the server
/// refused partway). Each message is looked for by its fingerprint (or,
/// in old journals, its Message-ID) in both mailboxes, never by trusting
/// one server reply: in the destination only, it moved; in both, the COPY
/// fallback was cut before its expunge, which is finished now; in the
/// source only, or nowhere, it did not move. A `\Deleted` flag the move
/// set is taken off wherever each message stays (unless the journal says
/// the user had set it, `deleted_before`); a refusal of that is an error
/// and leaves the batch open for the next run. Returns how many messages
/// were found moved or finished.
pub(crate) async fn reconcile(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
) -> Result<usize, CleanError> {
    let (into, out_of) = reconcile_counted(imap, a, journal_path).await?;
    Ok(into + out_of)
}

/// [`reconcile`], counting apart the messages found moved or finished
/// into quarantine and those moved back out of it (by `restore`):
/// `(quarantined, restored)`.
pub(crate) async fn reconcile_counted(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
) -> Result<(usize, usize), CleanError> {
    let entries = journal::read(journal_path).map_err(io_err("read the journal"))?;
    let (mut into, mut out_of) = (0, 0);
    for batch in journal::unfinished(&entries) {
        if journal::busy(journal_path, &batch[0].batch) {
            // Another running `watch`, `clean` or `restore` (or another
            // task of this one) is moving it: it settles it itself.
            tracing::debug!(batch = %batch[0].batch, "left to the run moving it");
            continue;
        }
        let n = reconcile_batch(imap, &entries, journal_path, &batch)
            .await?
            .len();
        if batch[0].op == Op::Restore {
            out_of += n;
        } else {
            into += n;
        }
    }
    let _ = a;
    Ok((into, out_of))
}

/// [`reconcile`] of one unfinished batch (its intents, `batch`; `entries`
/// the whole journal): returns the UIDs found moved, after writing the
/// batch's `reconciled` marker. Leaves another mailbox selected.
async fn reconcile_batch(
    imap: &mut Imap,
    entries: &[Entry],
    journal_path: &std::path::Path,
    batch: &[Entry],
) -> Result<Vec<u32>, CleanError> {
    {
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
        let held: Vec<Entry> = journal::quarantined(entries)
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
            Err(e) if e.kind == imap::ErrorKind::Missing => (0, Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut claimed: HashSet<u32> = HashSet::new();
        let mut mapped: Vec<(u32, u32)> = Vec::new();
        for e in batch {
            // A message still in the source moved only if this batch's
            // COPY made a copy, which has a UID at or above the UIDNEXT the
            // destination had before it ([`Entry::copy_floor`]). Without
            // that floor (a MOVE, which never leaves a message in both
            // mailboxes, RFC 6851 section 3.3, or an older journal) it did
            // not move: a look-alike in the destination (the same bounce
            // delivered twice) must never cost the source its message.
            let floor = if in_source.contains(&e.uid) {
                match e.copy_floor {
                    Some((v, next)) if v == dest_validity && next > 0 => next,
                    _ => continue,
                }
            } else {
                0
            };
            if let Some(d) = in_dest
                .iter()
                .find(|i| i.uid >= floor && !claimed.contains(&i.uid) && same_message(e, i))
            {
                claimed.insert(d.uid);
                mapped.push((e.uid, d.uid));
            }
        }
        // A `\Deleted` an interrupted move by COPY set (on the copies when
        // taking them back, on the originals) comes off wherever each
        // message stays, before anything else: never the only copy left
        // flagged for some client's EXPUNGE. The user's own (journaled as
        // `deleted_before`) stays. A refusal leaves the batch open.
        let ours = |uid: u32| batch.iter().any(|e| e.uid == uid && !e.deleted_before);
        let dest_ours: Vec<u32> = mapped
            .iter()
            .filter(|(s, _)| ours(*s))
            .map(|(_, d)| *d)
            .collect();
        if !dest_ours.is_empty() {
            // Still selected by the inventory above.
            imap.uid_undelete(&dest_ours).await?;
        }
        let doubled: Vec<u32> = mapped
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| in_source.contains(s))
            .collect();
        let stayed: Vec<u32> = in_source
            .iter()
            .copied()
            .filter(|s| !mapped.iter().any(|(m, _)| m == s) && ours(*s))
            .collect();
        if !doubled.is_empty() || !stayed.is_empty() {
            imap.select(&source).await?;
            imap.uid_undelete(&stayed).await?;
        }
        if !doubled.is_empty() {
            imap.uid_delete(&doubled).await?;
        }
        let moved: Vec<u32> = mapped.iter().map(|(s, _)| *s).collect();
        let mut marker = Entry::marker(Op::Reconciled, &first.batch, now(), moved.clone());
        marker.dest_uidvalidity = dest_validity;
        marker.mapped = mapped;
        journal::append(journal_path, &[marker]).map_err(io_err("write the journal"))?;
        Ok(moved)
    }
}

/// Take account `account`'s move lock ([`journal::MoveLock`], in
/// `data_dir`, where its journals are): at once when no other process
/// holds it; otherwise a warning names the process that does, and this
/// waits (checking every 200 ms) until it lets go. `clean`, `restore` and
/// `filter` hold it for their whole run, `watch` for each batch it moves,
/// so that two processes never move the same message at once.
pub(crate) async fn hold_moves(
    data_dir: &std::path::Path,
    account: &str,
) -> Result<journal::MoveLock, CleanError> {
    let path = journal::move_lock_path(data_dir, account);
    let io = io_err("take the account's move lock");
    let mut said = false;
    loop {
        if let Some(l) = journal::try_move_lock(&path).map_err(&io)? {
            return Ok(l);
        }
        if !said {
            said = true;
            let who = journal::move_lock_holder(&path)
                .map_or_else(|| "another process".to_string(), |p| format!("process {p}"));
            let msg = format!(
                "another backscatter run ({who}) is moving mail of this account: waiting for it to finish"
            );
            // The agent logs; a command (which sets up no log) says it on
            // stderr, since it may wait a while.
            if tracing::dispatcher::has_been_set() {
                tracing::warn!(account = %account, "{msg}");
            } else {
                eprintln!("backscatter: account \"{account}\": {msg}");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Before a move by COPY + `\Deleted` + UID EXPUNGE (a server without
/// MOVE), note in each of its intents the destination's UIDVALIDITY and
/// UIDNEXT ([`Entry::copy_floor`], one STATUS), so that a check after an
/// interruption tells the COPY's copies from look-alikes already there.
/// Nothing with MOVE. A destination whose STATUS is refused (it does not
/// exist yet) gives no floor: such a check then keeps a message in both
/// mailboxes rather than risk its only copy.
pub(crate) async fn note_copy_floor(
    imap: &mut Imap,
    intents: &mut [Entry],
    dest: &str,
) -> Result<(), ImapError> {
    if imap.uses_move() || intents.is_empty() {
        return Ok(());
    }
    let floor = match imap.status_next(dest).await {
        Ok((v, next)) if v != 0 && next != 0 => Some((v, next)),
        Ok(_) => None,
        Err(e) if e.kind == imap::ErrorKind::No => None,
        Err(e) => return Err(e),
    };
    for e in intents {
        e.copy_floor = floor;
    }
    Ok(())
}

/// How many times a move refused with `NO [EXPUNGEISSUED]` is sent again
/// (each time without the messages another session took meanwhile).
const EXPUNGED_RETRIES: usize = 5;

/// What became of one journaled batch's move.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveOutcome {
    /// UIDs this batch moved to quarantine.
    pub moved: Vec<u32>,
    /// UIDs gone from the source before the move because another client
    /// (a concurrent `watch` or `clean`, or a mail client) moved them to
    /// quarantine: found there, or journaled there by another batch.
    pub elsewhere: Vec<u32>,
    /// UIDs gone from the source and not in quarantine (deleted, or moved
    /// to another mailbox, by another client).
    pub gone: Vec<u32>,
}

/// Settle the server's answer to the move of batch `batch` (its intents
/// `intents`, already journaled, all from one source mailbox): commit it
/// with the COPYUID mapping, and account for every UID.
///
/// A message another session expunged after it was scheduled is not an
/// error: it is already elsewhere. `NO [EXPUNGEISSUED]` (RFC 5530) is
/// Dovecot's answer when another session moved part of the set first (the
/// whole command then moves nothing); the server has told this session
/// about the expunges with it, so a `UID SEARCH` of the set says which
/// messages remain, and the move is sent again for those alone (up to
/// [`EXPUNGED_RETRIES`] times; none left: nothing to move). An OK whose
/// COPYUID (RFC 4315) names fewer UIDs than were sent (a partial UID MOVE)
/// commits the UIDs it names; the others are not this batch's. An OK
/// without COPYUID from a server with UIDPLUS, or refusals that go on, are
/// read back from both mailboxes ([`reconcile`]'s check, for this batch
/// only). Each UID that did not move is then looked for: journaled in
/// quarantine by another batch, or found in quarantine by its Message-ID
/// and fingerprint, it is [`MoveOutcome::elsewhere`]; otherwise
/// [`MoveOutcome::gone`]. The source mailbox is selected again afterwards
/// when anything else was (an error if it was renumbered meanwhile).
/// Other refusals are reconciled for this batch and returned.
///
/// The connection must be free (no pipelined command in flight).
pub(crate) async fn settle_move(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
    batch: &str,
    intents: &[Entry],
    mut answer: Result<Option<imap::CopyUid>, ImapError>,
) -> Result<MoveOutcome, CleanError> {
    let Some(first) = intents.first() else {
        return Ok(MoveOutcome::default());
    };
    let (source, validity) = (first.mailbox.clone(), first.uidvalidity);
    // The UIDs of the last move sent, and those found gone before it.
    let mut sent: Vec<u32> = intents.iter().map(|e| e.uid).collect();
    let mut absent: Vec<u32> = Vec::new();
    let mut tries = 0;
    while matches!(&answer, Err(e) if imap::expunge_issued(e)) && tries < EXPUNGED_RETRIES {
        tries += 1;
        let present = imap
            .uid_search(&format!("UID {}", imap::uid_set(&sent)))
            .await?;
        absent.extend(sent.iter().filter(|u| !present.contains(u)));
        sent.retain(|u| present.contains(u));
        tracing::info!(
            account = %a.name,
            mailbox = %imap::shown(&source),
            "{} of the batch were moved or expunged by another client first; moving the other {}",
            absent.len(),
            sent.len()
        );
        if sent.is_empty() {
            break;
        }
        answer = imap.uid_move_mapped(&sent, &first.to).await;
    }
    let mut reselect = false;
    let moved: Vec<u32> = match answer {
        // Nothing left to move: the batch is closed, nothing moved by it.
        _ if sent.is_empty() => {
            let marker = Entry::marker(Op::Reconciled, batch, now(), Vec::new());
            journal::append(journal_path, &[marker]).map_err(io_err("write the journal"))?;
            Vec::new()
        }
        Ok(Some(m)) => {
            let moved: Vec<u32> = m.pairs.iter().map(|(s, _)| *s).collect();
            commit(journal_path, batch, Some(m))?;
            moved
        }
        Ok(None) if !imap.has("UIDPLUS") => {
            // The server says all that was sent moved; those found gone
            // before are not this batch's.
            let failed: Vec<Entry> = absent
                .iter()
                .map(|&uid| {
                    let mut m = Entry::marker(Op::Failed, batch, now(), Vec::new());
                    m.uid = uid;
                    m.reasons = vec!["expunged by another client before the move".into()];
                    m
                })
                .collect();
            journal::append(journal_path, &failed).map_err(io_err("write the journal"))?;
            commit(journal_path, batch, None)?;
            sent.clone()
        }
        Ok(None) => {
            reselect = true;
            read_back(imap, journal_path, batch, &sent).await?
        }
        Err(e) if imap::expunge_issued(&e) => {
            reselect = true;
            read_back(imap, journal_path, batch, &sent).await?
        }
        Err(e) => {
            if e.kind == imap::ErrorKind::No {
                // Part of the set may have moved (RFC 6851 section 4.4):
                // look, rather than assume.
                read_back(imap, journal_path, batch, &sent).await?;
            }
            return Err(e.into());
        }
    };
    let missing: Vec<&Entry> = intents.iter().filter(|e| !moved.contains(&e.uid)).collect();
    let mut out = MoveOutcome {
        moved,
        ..MoveOutcome::default()
    };
    if !missing.is_empty() {
        reselect = true;
        let found = in_quarantine(imap, journal_path, batch, &missing).await?;
        for e in missing {
            if found.contains(&e.uid) {
                out.elsewhere.push(e.uid);
            } else {
                out.gone.push(e.uid);
            }
        }
        tracing::info!(
            account = %a.name,
            mailbox = %imap::shown(&source),
            "{} moved, {} already moved by another client, {} no longer in the mailbox",
            out.moved.len(),
            out.elsewhere.len(),
            out.gone.len()
        );
    }
    if reselect {
        let sel = imap.select(&source).await?;
        if sel.uid_validity != validity {
            return Err(CleanError::Imap(ImapError {
                kind: imap::ErrorKind::Protocol,
                message: format!(
                    "mailbox \"{}\" was renumbered (UIDVALIDITY changed) during the sweep: run again",
                    imap::shown(&source)
                ),
            }));
        }
    }
    Ok(out)
}

/// Read back what batch `batch` moved of the UIDs `sent` ([`reconcile_batch`]),
/// when the server's answer does not say: the UIDs found moved.
async fn read_back(
    imap: &mut Imap,
    journal_path: &std::path::Path,
    batch: &str,
    sent: &[u32],
) -> Result<Vec<u32>, CleanError> {
    let entries = journal::read(journal_path).map_err(io_err("read the journal"))?;
    match journal::unfinished(&entries)
        .into_iter()
        .find(|b| b.first().is_some_and(|e| e.batch == batch))
    {
        // Only the UIDs the last move named: the others were gone before
        // it, and are not this batch's whatever is found.
        Some(mut intents) => {
            intents.retain(|e| sent.contains(&e.uid));
            if intents.is_empty() {
                return Ok(Vec::new());
            }
            reconcile_batch(imap, &entries, journal_path, &intents).await
        }
        // Settled meanwhile (another process reconciled it): as it says.
        None => Ok(journal::quarantined(&entries)
            .into_iter()
            .filter(|e| e.batch == batch)
            .map(|e| e.uid)
            .collect()),
    }
}

/// Which of these intents of batch `batch`, whose messages left the
/// source without this batch moving them, are in quarantine: journaled
/// there by another batch (the same source UID), or found there by
/// Message-ID (one `UID SEARCH` per 20) and fingerprint. Leaves the
/// quarantine selected when it looked there.
async fn in_quarantine(
    imap: &mut Imap,
    journal_path: &std::path::Path,
    batch: &str,
    missing: &[&Entry],
) -> Result<HashSet<u32>, CleanError> {
    let entries = journal::read(journal_path).map_err(io_err("read the journal"))?;
    let held: HashSet<(String, u32, u32)> = journal::quarantined(&entries)
        .into_iter()
        .filter(|e| e.batch != batch)
        .map(|e| (e.mailbox, e.uidvalidity, e.uid))
        .collect();
    let mut found: HashSet<u32> = HashSet::new();
    let mut look: Vec<&Entry> = Vec::new();
    for e in missing {
        if held.contains(&(e.mailbox.clone(), e.uidvalidity, e.uid)) {
            found.insert(e.uid);
        } else {
            look.push(e);
        }
    }
    let searchable: Vec<(&Entry, String)> = look
        .iter()
        .filter_map(|e| {
            let id = e.message_id.as_deref()?;
            Some((*e, imap::quoted(id)?))
        })
        .collect();
    let Some(dest) = searchable.first().map(|(e, _)| e.to.clone()) else {
        return Ok(found);
    };
    match imap.examine(&dest).await {
        Ok(_) => {}
        Err(e) if e.kind == imap::ErrorKind::No => return Ok(found),
        Err(e) => return Err(e.into()),
    }
    for chunk in searchable.chunks(20) {
        // OR k1 OR k2 k3 ... (RFC 3501 section 6.4.4).
        let mut query = String::new();
        for (i, (_, id)) in chunk.iter().enumerate() {
            if i + 1 < chunk.len() {
                query.push_str("OR ");
            }
            query.push_str(&format!("HEADER Message-ID {id} "));
        }
        let uids = imap.uid_search(query.trim_end()).await?;
        let prints: HashSet<String> = quarantine::identities(imap, &uids)
            .await?
            .into_iter()
            .map(|i| i.fingerprint)
            .collect();
        found.extend(
            chunk
                .iter()
                .filter(|(e, _)| prints.contains(&e.fingerprint))
                .map(|(e, _)| e.uid),
        );
    }
    Ok(found)
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

pub(crate) fn commit(
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
    // One process moves an account's mail at a time (a dry run moves
    // nothing, and waits for nobody).
    let _moving = match opts.dry_run {
        true => None,
        false => Some(hold_moves(&dirs.data, &a.name).await?),
    };
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
    refuse_unfit_quarantine(&mut imap, a).await?;
    // The sent index reaches back far enough to judge mail that arrived
    // since `--since` (each message against the `sent-days` before it
    // arrived), and as far as the cache already reaches; older mail is
    // found below and the index widened.
    let (mut sent, mut stats, _) = sentsync::refresh_covering(
        &mut imap,
        a,
        &dirs.state,
        now(),
        Reach::Since(opts.since.map_or_else(now, crate::day::search_since)),
    )
    .await?;
    let journal_path = journal::path_for(&dirs.data, &a.name);
    let mut summary = Summary {
        sent_indexed: stats.messages,
        sent_fetched: stats.fetched,
        sent_round_trips: stats.round_trips,
        sent_bytes_fetched: stats.bytes,
        mailbox: opts.mailbox.clone(),
        quarantine: a.quarantine.clone(),
        ..Summary::default()
    };
    // Refuse before anything is journaled on a server where moves are
    // unsafe; a dry run classifies, and says the moves would be refused.
    if let Err(e) = imap.can_move_safely() {
        if !opts.dry_run {
            return Err(e.into());
        }
        summary.refused = Some(e.message);
    }
    if !opts.dry_run {
        summary.recovered = reconcile(&mut imap, a, &journal_path).await?;
        compact_journal(&journal_path);
    }
    let sel = imap.open_named_condstore(&opts.mailbox).await?;
    // What earlier sweeps established (see `rerun`): read only what
    // arrived or changed since, unless the mailbox was renumbered or the
    // verdicts' inputs changed.
    let server = rerun::Server {
        uidvalidity: sel.uid_validity,
        uid_next: sel.uid_next,
        highest_modseq: sel.highest_modseq,
    };
    // Whose mailbox, not how it is reached: the port (an SSH tunnel, a
    // proxy) decides no verdict, and a different server behind the same
    // name has other UIDVALIDITYs, which the mark checks.
    let who = format!("{}@{}", a.username, a.imap.host.to_lowercase());
    let fingerprint = inputs(a, &who, &stats.sources).fingerprint();
    let path = mark_path(&dirs.state, &a.name, &opts.mailbox);
    let stored = load_mark(&path).filter(|m| m.mailbox == opts.mailbox);
    let since = opts
        .since
        .map(|t| imap::imap_date(crate::day::search_since(t)));
    let (uids, base) = match rerun::decide(stored.as_ref(), &fingerprint, &server, opts.full) {
        Plan::Full(why) => {
            tracing::info!(account = %a.name, mailbox = %opts.mailbox, "reading every message: {}", why.describe());
            summary.full = Some(why);
            let uids = match (sel.exists, &since) {
                (0, _) => Vec::new(),
                (_, Some(d)) => imap.uid_search(&format!("SINCE {d}")).await?,
                (_, None) => imap.uid_search("ALL").await?,
            };
            let base = Mark::fresh(&opts.mailbox, &server, &fingerprint, now());
            (uids, base)
        }
        Plan::Rerun(r) => {
            let found = match r.query(since.as_deref(), quarantine::NOT_BACKSCATTER) {
                Some(q) if sel.exists > 0 => imap.uid_search(&q).await?,
                _ => Vec::new(),
            };
            let (uids, base) = r.resolve(&found, &server, now());
            summary.skipped_known = (sel.exists as usize).saturating_sub(uids.len());
            (uids, base)
        }
    };
    // Mail that arrived before the index reaches back far enough to
    // judge it: the index is widened to cover the oldest (once: the cache
    // keeps it), and the mailbox selected again. `--since` was covered
    // above.
    let t0 = imap::counters();
    if opts.since.is_none() && !uids.is_empty() {
        if let Some(oldest) = oldest_uncovered(&mut imap, &uids, stats.reach, a.sent_days).await? {
            tracing::info!(account = %a.name, mailbox = %opts.mailbox, "the oldest message arrived {}: reading the sent mail from {} days before it", crate::day::time(oldest, crate::clock::zone()), window::Window::days_before(a.sent_days));
            let fetched = stats.fetched;
            (sent, stats, _) =
                sentsync::refresh_covering(&mut imap, a, &dirs.state, now(), Reach::Since(oldest))
                    .await?;
            stats.fetched += fetched;
            let again = imap.open_named_condstore(&opts.mailbox).await?;
            summary.sent_indexed = stats.messages;
            summary.sent_fetched = stats.fetched;
            if again.uid_validity != sel.uid_validity {
                return Err(CleanError::Imap(ImapError {
                    kind: imap::ErrorKind::Protocol,
                    message: format!(
                        "mailbox \"{}\" was renumbered (UIDVALIDITY changed) during the sweep: run it again",
                        imap::shown(&opts.mailbox)
                    ),
                }));
            }
        }
    }
    // The search for old mail, and any widening with the SELECT back.
    let t1 = imap::counters();
    summary.sent_round_trips += t1.2 - t0.2;
    summary.sent_bytes_fetched += t1.0 - t0.0;
    if !opts.dry_run && !uids.is_empty() {
        imap.ensure_mailbox(&a.quarantine).await?;
    }
    // A dry run predicts and records nothing; `--since` reads only part
    // of the mailbox, so it cannot vouch for the rest.
    let marks = (!opts.dry_run && opts.since.is_none()).then(|| Marks {
        path,
        mark: base,
        done: VecDeque::new(),
        complete_through: uids
            .last()
            .copied()
            .unwrap_or(0)
            .max(sel.uid_next.saturating_sub(1)),
        warned: false,
    });
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let total = uids.len();
    progress(0, total);
    let mut sweep = Sweep {
        a,
        opts,
        journal_path: &journal_path,
        uidvalidity: sel.uid_validity,
        ctx: &ctx,
        summary: &mut summary,
        kept: HashSet::new(),
        moves: Vec::new(),
        backscatter: Vec::new(),
        moved: HashSet::new(),
        elsewhere: HashSet::new(),
        kept_by_user: HashSet::new(),
        kept_why: HashMap::new(),
        batches: 0,
        marks,
    };
    if sweep.run(&mut imap, &uids, progress).await? {
        imap.logout().await;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    let counters = imap::counters();
    summary.bytes_fetched = counters.0 - counters0.0;
    summary.bytes_inflated = counters.1 - counters0.1;
    summary.round_trips = counters.2 - counters0.2;
    Ok(summary)
}

/// Of these UIDs of the selected mailbox, when the oldest arrived (Unix
/// seconds, INTERNALDATE), if an index reaching back to `reach` cannot
/// judge it ([`window::covers`]); `None` when it can judge them all.
/// One `UID SEARCH ... BEFORE` (a superset, by date,
/// [`window::uncovered_before`]); only when it finds some, one `UID
/// FETCH` of their INTERNALDATE.
async fn oldest_uncovered(
    imap: &mut Imap,
    uids: &[u32],
    reach: i64,
    sent_days: u32,
) -> Result<Option<i64>, ImapError> {
    let before = imap::imap_date(window::uncovered_before(reach, sent_days));
    let found = imap
        .uid_search(&format!("UID {} BEFORE {before}", imap::uid_set(uids)))
        .await?;
    if found.is_empty() {
        return Ok(None);
    }
    let oldest = imap
        .uid_fetch(&found, "(UID INTERNALDATE)")
        .await?
        .iter()
        .filter_map(|f| f.internal_date)
        .min();
    Ok(oldest.filter(|t| !window::covers(reach, *t, sent_days)))
}

/// A UID MOVE sent and not yet confirmed: its journal batch and UIDs, and
/// the round of the sweep they belong to.
struct InFlight {
    tag: pipeline::Tag,
    batch: String,
    intents: Vec<Entry>,
    round: usize,
    /// Keeps other reconciliations off the batch until it is settled.
    _busy: journal::InFlight,
}

/// The rerun mark a real sweep of a whole mailbox keeps up to date
/// ([`rerun::Mark`]): after each round whose moves are all confirmed, so
/// that a run killed anywhere leaves a true mark.
struct Marks {
    path: PathBuf,
    mark: Mark,
    /// Rounds classified (and their moves sent), oldest first, not yet on
    /// the mark.
    done: VecDeque<Round>,
    /// Where the mark stands once every round is done: the last UID read,
    /// or below UIDNEXT as SELECT gave it (every message below it was in
    /// the search).
    complete_through: u32,
    /// A failed write was logged.
    warned: bool,
}

/// One classified round of the sweep, for [`Marks`].
struct Round {
    n: usize,
    uids: Vec<u32>,
    /// Backscatter left in place because it carries `$NotBackscatter`.
    kept_by_keyword: Vec<u32>,
    /// Without a final outcome (nothing usable from the server, no
    /// identity, or a move whose answer was lost).
    unjudged: Vec<u32>,
}

/// The state file of the rerun mark of an account's mailbox:
/// `sweep-ACCOUNT-HASH.json` in the state dir, HASH from the mailbox name
/// (which may hold any character).
pub fn mark_path(state_dir: &std::path::Path, account: &str, mailbox: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(mailbox.as_bytes());
    let hash: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    crate::paths::account_file(state_dir, "sweep", &format!("{account}-{hash}"), "json")
}

/// The stored mark, if one can be read (an unreadable one means a full
/// sweep, never an error).
fn load_mark(path: &std::path::Path) -> Option<Mark> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replace the mark atomically, mode 0600.
fn save_mark(path: &std::path::Path, mark: &Mark) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir)?;
    }
    let bytes = serde_json::to_vec(mark).map_err(std::io::Error::other)?;
    crate::paths::write_private_atomic(path, &bytes)
}

/// What the verdicts of a sweep of account `a` depend on besides the
/// messages: the program, the user's addresses, the keep list, the Sent
/// mailboxes indexed (`sent`, with their UIDVALIDITY) and the window.
/// `server` is `username@host:port`.
fn inputs<'a>(a: &'a Account, server: &'a str, sent: &'a [(String, u32)]) -> rerun::Inputs<'a> {
    rerun::Inputs {
        classifier: concat!(
            env!("CARGO_PKG_VERSION"),
            " ",
            env!("BACKSCATTER_VERSION_DETAIL")
        ),
        server,
        addresses: &a.addresses,
        keep: &a.keep,
        sent_days: a.sent_days,
        sent,
    }
}

/// One pipelined sweep of the selected mailbox (`clean`'s I/O loop; the
/// decisions are [`plan`]'s and [`classify`]'s). Per round of
/// [`FETCH_BATCH`] messages: the round's prefix FETCH was sent before, the
/// next round's is sent as soon as this one's has arrived, so that it
/// crosses the link while this round is classified and moved; the round's
/// longer candidates are fetched; its backscatter is journaled and moved
/// [`BATCH`] at a time, each UID MOVE sent after its intents are written
/// and confirmed (committed with the server's COPYUID mapping) when its
/// answer arrives. Where the server lacks MOVE, the COPY fallback runs one
/// command at a time, as in [`move_batch`].
struct Sweep<'s, 'c> {
    a: &'s Account,
    opts: &'s CleanOptions,
    journal_path: &'s std::path::Path,
    uidvalidity: u32,
    ctx: &'s Context<'c>,
    summary: &'s mut Summary,
    /// Fingerprints of messages the user restored before.
    kept: HashSet<String>,
    moves: Vec<InFlight>,
    /// Backscatter rows, for `--each` once their moves are settled.
    backscatter: Vec<Row>,
    moved: HashSet<u32>,
    /// Moved to quarantine by another client first.
    elsewhere: HashSet<u32>,
    kept_by_user: HashSet<u32>,
    /// Why the keep list kept a message (for `--each`).
    kept_why: HashMap<u32, String>,
    batches: usize,
    /// The rerun mark, on a real sweep of the whole mailbox.
    marks: Option<Marks>,
}

impl Sweep<'_, '_> {
    /// Count a message kept out of quarantine by the keep list (not by a
    /// restore) under its entry; returns the reason, naming the entry.
    fn note_kept(&mut self, r: &Row, id: &Identity) -> Option<String> {
        if id.has_flag(quarantine::NOT_BACKSCATTER) || self.kept.contains(&id.fingerprint) {
            return None;
        }
        let entry = keep_entry(&self.a.keep, r, id)?.to_string();
        let why = format!("kept: matches keep entry {entry}");
        *self.summary.kept_by_list.entry(entry).or_default() += 1;
        self.kept_why.insert(r.uid, why.clone());
        Some(why)
    }

    /// Sweep `uids`; `false` when stopped with a FETCH left unread on the
    /// connection (no MOVE in flight), which must then be dropped.
    async fn run(
        &mut self,
        imap: &mut Imap,
        uids: &[u32],
        progress: Progress<'_>,
    ) -> Result<bool, CleanError> {
        // The dry run too: its keep check must be the run's.
        if let Some(dir) = self.journal_path.parent() {
            self.kept = quarantine::load_kept(&quarantine::kept_path(dir, &self.a.name))
                .map_err(io_err("read the list of restored messages"))?;
        }
        let items = plan::sweep_prefix_items();
        let rounds: Vec<&[u32]> = uids.chunks(FETCH_BATCH).collect();
        let mut p = Pipeline::new();
        let mut next = match rounds.first() {
            Some(r) => Some(p.fetch(imap, r, &items).await?),
            None => None,
        };
        // Once a reply could not be parsed (GNU Mailutils' BODYSTRUCTURE
        // of an attached message, a garbled FETCH), the connection is
        // re-opened and the rest of the mailbox read without pipelining,
        // through the FETCH that contains such faults to the messages
        // concerned ([`classify_batch`]).
        let mut contained = false;
        // Ctrl-C: no FETCH is sent after it, and a FETCH whose data no
        // move will use is not waited for while no MOVE is in flight (the
        // connection is then dropped, not logged out of: its answer would
        // have to be read through first). With MOVEs in flight, their
        // answers come after the FETCH sent before them: it is read to its
        // end (at most one round), the moves settled, and the sweep ends.
        let flag = self.opts.stop.clone().unwrap_or_default();
        for (n, chunk) in rounds.iter().enumerate() {
            if self.stopped() {
                self.summary.interrupted = true;
                break;
            }
            let (rows, ids) = if contained {
                (classify_batch(imap, chunk, self.ctx).await?, HashMap::new())
            } else {
                let round = async {
                    let Some(tag) = next.take() else {
                        return Ok(None);
                    };
                    if !fetched(imap, &mut p, &tag, &flag, self.moves.is_empty()).await? {
                        return Ok(None);
                    }
                    self.settle(imap, &mut p, false).await?;
                    if !self.stopped() {
                        if let Some(r) = rounds.get(n + 1) {
                            next = Some(p.fetch(imap, r, &items).await?);
                        }
                    }
                    let abandon = self.moves.is_empty();
                    classify_round(imap, &mut p, chunk, self.ctx, &flag, abandon).await
                };
                match round.await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.summary.interrupted |= self.stopped();
                        break;
                    }
                    Err(CleanError::Imap(e)) if e.kind == imap::ErrorKind::Unparsable => {
                        tracing::warn!(account = %self.a.name, "{e}: reading the rest one command at a time");
                        imap.reconnect().await?;
                        p = Pipeline::new();
                        next = None;
                        // Moves whose answers were lost with the
                        // connection: settled from the journal; whether
                        // each moved is not known here, so the mark
                        // leaves them to be examined again.
                        let lost: Vec<(usize, Vec<u32>)> = std::mem::take(&mut self.moves)
                            .into_iter()
                            .map(|m| (m.round, m.intents.iter().map(|e| e.uid).collect()))
                            .collect();
                        if !self.opts.dry_run {
                            reconcile(imap, self.a, self.journal_path).await?;
                        }
                        for (round, uids) in lost {
                            self.unsure(round, &uids);
                        }
                        contained = true;
                        (classify_batch(imap, chunk, self.ctx).await?, HashMap::new())
                    }
                    Err(e) => return Err(e),
                }
            };
            self.account(imap, &mut p, n, chunk, rows, ids).await?;
            self.checkpoint(false);
            progress(self.summary.scanned, uids.len());
            if self.stopped() || self.summary.interrupted {
                self.summary.interrupted = true;
                break;
            }
        }
        // Stopped with no MOVE in flight: what is still in flight is data
        // nobody will use, and the journal is settled.
        let in_step = !(self.summary.interrupted && self.moves.is_empty() && p.busy());
        if in_step {
            p.drain(imap).await?;
            self.settle(imap, &mut p, true).await?;
        }
        let interrupted = self.summary.interrupted;
        self.checkpoint(!interrupted);
        if self.opts.each {
            for mut r in std::mem::take(&mut self.backscatter) {
                if let Some(why) = self.kept_why.get(&r.uid) {
                    r.verdict.reasons.insert(0, why.clone());
                }
                // The dry run predicts the keep check as well.
                let action = if self.kept_by_user.contains(&r.uid) {
                    Action::KeptByUser
                } else if self.opts.dry_run {
                    Action::WouldMove
                } else if self.moved.contains(&r.uid) {
                    Action::Moved
                } else if self.elsewhere.contains(&r.uid) {
                    Action::AlreadyMoved
                } else {
                    Action::Gone
                };
                self.summary.each.push(Outcome {
                    uid: r.uid,
                    action,
                    row: Some(r),
                });
            }
            self.summary.each.sort_by_key(|o| o.uid);
        }
        Ok(in_step)
    }

    /// Record on the mark the rounds whose moves are all confirmed (and,
    /// with `complete`, that the whole list was read), and write it. A
    /// mark that cannot be written costs only time on the next run: it is
    /// logged, never fatal.
    fn checkpoint(&mut self, complete: bool) {
        let Some(m) = self.marks.as_mut() else {
            return;
        };
        let busy = self.moves.iter().map(|f| f.round).min();
        let mut changed = false;
        while let Some(r) = m.done.front() {
            if busy.is_some_and(|b| b <= r.n) {
                break;
            }
            let Some(r) = m.done.pop_front() else { break };
            let through = r.uids.last().copied().unwrap_or(0);
            m.mark
                .advance(through, &r.uids, &r.kept_by_keyword, &r.unjudged, now());
            changed = true;
        }
        if complete && busy.is_none() && m.done.is_empty() {
            m.mark.advance(m.complete_through, &[], &[], &[], now());
            changed = true;
        }
        if changed {
            if let Err(e) = save_mark(&m.path, &m.mark) {
                if !m.warned {
                    tracing::warn!(
                        "cannot write {}: {e}; the next run reads the mailbox again",
                        m.path.display()
                    );
                    m.warned = true;
                }
            }
        }
    }

    /// These UIDs of round `n` have no known outcome (a move whose answer
    /// was lost): the mark leaves them for the next run.
    fn unsure(&mut self, n: usize, uids: &[u32]) {
        if let Some(r) = self
            .marks
            .as_mut()
            .and_then(|m| m.done.iter_mut().find(|r| r.n == n))
        {
            r.unjudged.extend_from_slice(uids);
        }
    }

    /// Was the sweep asked to stop (Ctrl-C, SIGTERM)?
    fn stopped(&self) -> bool {
        self.opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// Count a round's verdicts and start moving its backscatter.
    async fn account(
        &mut self,
        imap: &mut Imap,
        p: &mut Pipeline,
        round: usize,
        chunk: &[u32],
        rows: Vec<Row>,
        mut ids: HashMap<u32, Identity>,
    ) -> Result<(), CleanError> {
        let summary = &mut *self.summary;
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
        if self.opts.each {
            summary.each.extend(unjudged.iter().map(|&uid| Outcome {
                uid,
                action: Action::Error,
                row: None,
            }));
        }
        let mut to_move: Vec<&Row> = Vec::new();
        for r in &rows {
            match r.verdict.verdict {
                Decision::Backscatter => to_move.push(r),
                Decision::Legitimate => {
                    summary.legitimate += 1;
                    if self.opts.dry_run {
                        summary.legitimate_kept.push(r.clone());
                    }
                }
                Decision::Normal => summary.normal += 1,
            }
            if self.opts.each && r.verdict.verdict != Decision::Backscatter {
                summary.each.push(Outcome {
                    uid: r.uid,
                    action: Action::Kept,
                    row: Some(r.clone()),
                });
            }
        }
        if self.opts.each {
            self.backscatter
                .extend(to_move.iter().map(|r| (*r).clone()));
        }
        // Identities the prefix could not give (a header longer than what
        // was read): from the server, once nothing else is in flight.
        let missing: Vec<u32> = to_move
            .iter()
            .map(|r| r.uid)
            .filter(|u| !ids.contains_key(u))
            .collect();
        // Stopped: nothing will move, and the drain would read the next
        // round's FETCH through.
        if !missing.is_empty() && !self.stopped() {
            p.drain(imap).await?;
            self.settle(imap, p, false).await?;
            ids.extend(
                quarantine::identities(imap, &missing)
                    .await?
                    .into_iter()
                    .map(|i| (i.uid, i)),
            );
        }
        if self.opts.dry_run {
            // The same keep check as a real run's (`intents`), so that the
            // dry run predicts it.
            for r in &to_move {
                match ids.get(&r.uid) {
                    Some(id) if user_keeps_one(self.a, &self.a.keep, r, id, &self.kept) => {
                        self.summary.kept_by_user += 1;
                        self.kept_by_user.insert(r.uid);
                        if let Some(why) = self.note_kept(r, id) {
                            self.summary.kept_listed.push(((*r).clone(), why));
                        }
                    }
                    _ => {
                        self.summary.quarantined += 1;
                        self.summary.would_move.push((*r).clone());
                    }
                }
            }
            return Ok(());
        }
        // For the rerun mark: backscatter without an identity (gone, or
        // not readable) is looked at again; the user's keyword is checked
        // again.
        let mut round_unjudged = unjudged;
        round_unjudged.extend(
            to_move
                .iter()
                .map(|r| r.uid)
                .filter(|u| !ids.contains_key(u)),
        );
        let mut kept_by_keyword: Vec<u32> = Vec::new();
        for part in to_move.chunks(BATCH) {
            // Ctrl-C during the scan: no new move starts (those already
            // sent are settled; the rest waits for the next run, and the
            // round is not recorded as done on the rerun mark).
            if self.stopped() {
                self.summary.interrupted = true;
                return Ok(());
            }
            let batch = journal::batch_id(now(), self.batches);
            self.batches += 1;
            let (intents, kept) = intents(
                self.a,
                &self.opts.mailbox,
                self.uidvalidity,
                part,
                &ids,
                &self.kept,
                &batch,
            );
            self.summary.kept_by_user += kept.len();
            for u in &kept {
                if let (Some(r), Some(id)) = (part.iter().find(|r| r.uid == *u), ids.get(u)) {
                    self.note_kept(r, id);
                }
            }
            kept_by_keyword.extend(kept.iter().copied().filter(|u| {
                ids.get(u)
                    .is_some_and(|i| i.has_flag(quarantine::NOT_BACKSCATTER))
            }));
            self.kept_by_user.extend(kept);
            if intents.is_empty() {
                continue;
            }
            let busy = journal::in_flight(self.journal_path, &batch);
            let mut intents = intents;
            if !imap.uses_move() {
                // COPY + STORE + EXPUNGE: one step at a time, alone on the
                // connection, after the destination's UIDNEXT is noted.
                p.drain(imap).await?;
                self.settle(imap, p, false).await?;
                note_copy_floor(imap, &mut intents, &self.a.quarantine).await?;
            }
            journal::append(self.journal_path, &intents).map_err(io_err("write the journal"))?;
            let uids: Vec<u32> = intents.iter().map(|e| e.uid).collect();
            if imap.uses_move() {
                let tag = p.move_to(imap, &uids, &self.a.quarantine).await?;
                self.moves.push(InFlight {
                    tag,
                    batch,
                    intents,
                    round,
                    _busy: busy,
                });
            } else {
                let answer = imap.uid_move_mapped(&uids, &self.a.quarantine).await;
                let o =
                    settle_move(imap, self.a, self.journal_path, &batch, &intents, answer).await?;
                self.settled(o);
            }
        }
        if let Some(m) = self.marks.as_mut() {
            m.done.push_back(Round {
                n: round,
                uids: chunk.to_vec(),
                kept_by_keyword,
                unjudged: round_unjudged,
            });
        }
        Ok(())
    }

    /// Commit the moves whose answer has arrived, in the order they were
    /// sent (all of them with `all`, after a drain). A move the server
    /// refused is reconciled (part of its set may have moved, RFC 6851
    /// section 4.4) once nothing else is in flight, and ends the sweep.
    async fn settle(
        &mut self,
        imap: &mut Imap,
        p: &mut Pipeline,
        all: bool,
    ) -> Result<(), CleanError> {
        while let Some(m) = self.moves.first() {
            let outcome = match p.take_finished(&m.tag) {
                Some(o) => o,
                None if all => p.wait(imap, &m.tag).await?,
                None => break,
            };
            let m = self.moves.remove(0);
            // A complete answer is committed at once; anything else is
            // looked into alone on the connection.
            let complete = match &outcome {
                Ok(Some(map)) => map.pairs.len() == m.intents.len(),
                Ok(None) => !imap.has("UIDPLUS"),
                Err(_) => false,
            };
            if !complete {
                p.drain(imap).await?;
            }
            let settled = settle_move(
                imap,
                self.a,
                self.journal_path,
                &m.batch,
                &m.intents,
                outcome,
            )
            .await;
            match settled {
                Ok(o) => self.settled(o),
                Err(e) => {
                    p.drain(imap).await?;
                    // Commit what did move before stopping; the rest is
                    // reconciled by the next run.
                    for later in std::mem::take(&mut self.moves) {
                        if let Some(Ok(mapping)) = p.take_finished(&later.tag) {
                            let o = settle_move(
                                imap,
                                self.a,
                                self.journal_path,
                                &later.batch,
                                &later.intents,
                                Ok(mapping),
                            )
                            .await?;
                            self.settled(o);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Count a settled move ([`settle_move`]).
    fn settled(&mut self, o: MoveOutcome) {
        self.summary.quarantined += o.moved.len();
        self.summary.already_moved += o.elsewhere.len();
        self.summary.gone += o.gone.len();
        self.moved.extend(o.moved);
        self.elsewhere.extend(o.elsewhere);
    }
}

/// Below this many messages a round is classified on the calling thread.
const PARALLEL_FROM: usize = 64;

/// [`classify_at`] each `(uid, prefix)` (at its arrival) on all available cores (scoped
/// threads, at most [`std::thread::available_parallelism`]); the rows in
/// any order, and the identity ([`plan::identity`]) of each backscatter
/// message that its bytes give. The same verdicts as one thread.
fn judge_parallel(
    items: &[(u32, pipeline::Prefix)],
    ctx: &Context<'_>,
) -> (Vec<Row>, HashMap<u32, Identity>) {
    let judge = |part: &[(u32, pipeline::Prefix)]| {
        let mut rows = Vec::with_capacity(part.len());
        let mut ids = HashMap::new();
        for (uid, pre) in part {
            let r = row(
                *uid,
                &pre.bytes,
                classify_at(&pre.bytes, ctx, pre.arrived),
                pre.arrived,
            );
            if r.verdict.verdict == Decision::Backscatter {
                if let Some(id) = pre
                    .size
                    .and_then(|size| plan::identity(*uid, &pre.bytes, size, pre.flags.clone()))
                {
                    ids.insert(*uid, id);
                }
            }
            rows.push(r);
        }
        (rows, ids)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < PARALLEL_FROM {
        return judge(items);
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per)
            .skip(1)
            .map(|part| scope.spawn(move || judge(part)))
            .collect();
        let (mut rows, mut ids) = judge(&items[..per.min(items.len())]);
        for w in workers {
            // A panic in the classifier is a bug; it is passed on as one.
            let (r, i) = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            rows.extend(r);
            ids.extend(i);
        }
        (rows, ids)
    })
}

/// Classify one round of a pipelined sweep: its prefixes are in `p`
/// (their FETCH has completed); the structures and rests the plan asks
/// for are fetched here, the rests in groups of at most [`REST_BYTES`].
/// Returns the rows, sorted by UID, and the identity of each backscatter
/// message that its bytes could give ([`plan::identity`]); `None` once
/// `stop` is set (no further FETCH is sent, and with `abandon` the one in
/// flight is not waited for: [`fetched`]).
async fn classify_round(
    imap: &mut Imap,
    p: &mut Pipeline,
    chunk: &[u32],
    ctx: &Context<'_>,
    stop: &AtomicBool,
    abandon: bool,
) -> Result<Option<(Vec<Row>, HashMap<u32, Identity>)>, CleanError> {
    let mut later: BTreeMap<u32, (plan::Next, pipeline::Prefix)> = BTreeMap::new();
    let mut now: Vec<(u32, pipeline::Prefix)> = Vec::new();
    for uid in chunk {
        let Some(pre) = p.prefixes.remove(uid) else {
            continue;
        };
        match plan::after_prefix(&pre.bytes, pre.size) {
            plan::Next::Classify | plan::Next::Settled => now.push((*uid, pre)),
            n => {
                later.insert(*uid, (n, pre));
            }
        }
    }
    // Most of a round is settled by its prefix: those are classified on
    // every core at once (classification is pure), while the next round's
    // FETCH, already sent, streams in.
    let (mut rows, mut ids) = judge_parallel(&now, ctx);
    rows.reserve(chunk.len() - rows.len());
    drop(now);
    let mut judge = |uid: u32, bytes: &[u8], pre: &pipeline::Prefix| {
        let r = row(
            uid,
            bytes,
            classify_at(bytes, ctx, pre.arrived),
            pre.arrived,
        );
        if r.verdict.verdict == Decision::Backscatter {
            if let Some(size) = pre.size {
                if let Some(id) = plan::identity(uid, bytes, size, pre.flags.clone()) {
                    ids.insert(uid, id);
                }
            }
        }
        rows.push(r);
    };
    // Headers longer than the prefix: the whole header decides; a message
    // it settles is classified on its header alone (one more FETCH, only
    // when a round has such messages).
    let long: Vec<u32> = later
        .iter()
        .filter(|(_, (n, _))| *n == plan::Next::Header)
        .map(|(u, _)| *u)
        .collect();
    let mut headers: HashMap<u32, Vec<u8>> = HashMap::new();
    if !long.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let tag = p.fetch(imap, &long, plan::HEADER_ITEM).await?;
        if !fetched(imap, p, &tag, stop, abandon).await? {
            return Ok(None);
        }
        for uid in long {
            let header = p.headers.remove(&uid);
            let Some((n, pre)) = later.get_mut(&uid) else {
                continue;
            };
            *n = match &header {
                Some(h) => plan::after_header(h),
                // Not returned: read on, rather than guess.
                None => plan::Next::Rest,
            };
            if let Some(h) = header {
                if *n == plan::Next::Settled {
                    judge(uid, &h, pre);
                } else {
                    headers.insert(uid, h);
                }
            }
        }
        later.retain(|_, (n, _)| *n != plan::Next::Settled);
    }
    let structure: Vec<u32> = later
        .iter()
        .filter(|(_, (n, _))| *n == plan::Next::Structure)
        .map(|(u, _)| *u)
        .collect();
    if !structure.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let tag = p.fetch(imap, &structure, "BODYSTRUCTURE").await?;
        if !fetched(imap, p, &tag, stop, abandon).await? {
            return Ok(None);
        }
        for uid in structure {
            let root = p.structures.remove(&uid);
            if let Some((n, pre)) = later.get_mut(&uid) {
                let head = headers.get(&uid).unwrap_or(&pre.bytes);
                *n = plan::after_structure(head, root.as_ref());
                if *n == plan::Next::Settled {
                    judge(uid, head, pre);
                }
            }
        }
        later.retain(|_, (n, _)| *n != plan::Next::Settled);
    }
    // The rest of what the classifier reads, for the long candidates, in
    // groups each classified and dropped before the next is fetched.
    let item = plan::rest_item();
    let rest: Vec<u32> = later.keys().copied().collect();
    let mut group: Vec<u32> = Vec::new();
    let mut budget = 0u64;
    for (i, &uid) in rest.iter().enumerate() {
        group.push(uid);
        let size = later.get(&uid).and_then(|(_, pre)| pre.size);
        budget += u64::from(size.unwrap_or(plan::WHOLE).min(plan::WHOLE));
        if budget < REST_BYTES && i + 1 < rest.len() {
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        // Where the whole header is in hand (longer than the prefix), the
        // text after it; else the bytes after the prefix. Both in one
        // flight.
        let (texts, plain): (Vec<u32>, Vec<u32>) =
            group.iter().partition(|u| headers.contains_key(u));
        let mut tags = Vec::new();
        if !plain.is_empty() {
            tags.push(p.fetch(imap, &plain, &item).await?);
        }
        if !texts.is_empty() {
            tags.push(p.fetch(imap, &texts, plan::TEXT_ITEM).await?);
        }
        for tag in &tags {
            if !fetched(imap, p, tag, stop, abandon).await? {
                return Ok(None);
            }
        }
        for uid in group.drain(..) {
            if let Some((_, mut pre)) = later.remove(&uid) {
                let bytes = match headers.remove(&uid) {
                    Some(mut whole) => {
                        whole.extend_from_slice(&p.texts.remove(&uid).unwrap_or_default());
                        whole.truncate(plan::WHOLE as usize);
                        whole
                    }
                    None => {
                        if let Some(more) = p.rests.remove(&uid) {
                            pre.bytes.extend_from_slice(&more);
                        }
                        std::mem::take(&mut pre.bytes)
                    }
                };
                judge(uid, &bytes, &pre);
            }
        }
        budget = 0;
    }
    rows.sort_by_key(|r| r.uid);
    Ok(Some((rows, ids)))
}

/// Wait for the FETCH `tag` of a sweep; with `abandon` (no MOVE in
/// flight), `false` as soon as `stop` is set, its answer left unread.
async fn fetched(
    imap: &mut Imap,
    p: &mut Pipeline,
    tag: &pipeline::Tag,
    stop: &AtomicBool,
    abandon: bool,
) -> Result<bool, CleanError> {
    if abandon {
        match p.wait_unless(imap, tag, stop).await? {
            Some(done) => done?,
            None => return Ok(false),
        };
    } else {
        p.wait(imap, tag).await??;
    }
    Ok(true)
}

/// The journal intents for moving these backscatter rows of `mailbox`
/// (batch `batch`), from each message's identity (`found`; a UID without
/// one is gone and not moved), and the UIDs left in place because the
/// user restored them before (keyword [`quarantine::NOT_BACKSCATTER`] or
/// the local list `kept`) or the account's `keep` list matches them.
pub(crate) fn intents(
    a: &Account,
    mailbox: &str,
    uidvalidity: u32,
    rows: &[&Row],
    found: &HashMap<u32, Identity>,
    kept: &HashSet<String>,
    batch: &str,
) -> (Vec<Entry>, Vec<u32>) {
    let ts = now();
    let mut out: Vec<Entry> = Vec::new();
    let mut kept_by_user: Vec<u32> = Vec::new();
    let keep = crate::config::keep_now(a);
    for r in rows {
        let Some(id) = found.get(&r.uid) else {
            continue;
        };
        if user_keeps_one(a, &keep, r, id, kept) {
            kept_by_user.push(r.uid);
            continue;
        }
        out.push(intent(a, mailbox, uidvalidity, r, id, batch, ts));
    }
    (out, kept_by_user)
}

/// The journal's intent to move row `r` (identified as `id`) of
/// `mailbox` to the account's quarantine, in batch `batch` at `ts`
/// (Unix seconds).
fn intent(
    a: &Account,
    mailbox: &str,
    uidvalidity: u32,
    r: &Row,
    id: &Identity,
    batch: &str,
    ts: i64,
) -> Entry {
    let mut e = Entry::marker(Op::Quarantine, batch, ts, Vec::new());
    e.account = a.name.clone();
    e.mailbox = mailbox.to_string();
    e.uidvalidity = uidvalidity;
    e.uid = r.uid;
    e.message_id = r.message_id.clone().or_else(|| id.message_id.clone());
    e.kind = r.verdict.kind;
    e.reasons = r.verdict.reasons.clone();
    e.to = a.quarantine.clone();
    e.fingerprint = id.fingerprint.clone();
    e.deleted_before = quarantine::is_deleted(&id.flags);
    e
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
    /// UIDs another client moved to quarantine first
    /// ([`MoveOutcome::elsewhere`]).
    pub elsewhere: Vec<u32>,
    /// UIDs gone from the mailbox, not to quarantine
    /// ([`MoveOutcome::gone`]).
    pub gone: Vec<u32>,
}

/// Read the identities of these rows of the selected mailbox (fingerprint,
/// flags, From, List-Id), and say which the user keeps: restored before
/// (keyword [`quarantine::NOT_BACKSCATTER`] or the local list next to
/// the journal) or matched by the account's `keep` list. Shared by a real
/// run ([`move_batch`]) and a dry run, which must predict it.
async fn user_keeps(
    imap: &mut Imap,
    a: &Account,
    journal_path: &std::path::Path,
    rows: &[&Row],
) -> Result<(HashMap<u32, Identity>, HashSet<u32>), CleanError> {
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
    // As the config file says now (a `backscatter keep` while `watch` runs).
    let list = crate::config::keep_now(a);
    let keep = rows
        .iter()
        .filter(|r| {
            found
                .get(&r.uid)
                .is_some_and(|id| user_keeps_one(a, &list, r, id, &kept))
        })
        .map(|r| r.uid)
        .collect();
    Ok((found, keep))
}

/// Does the user keep this message out of quarantine: marked
/// [`quarantine::NOT_BACKSCATTER`], restored before (its fingerprint in
/// `restored`), or on the account's keep list (`keep`, as
/// [`crate::config::keep_now`] read it)? One check for the sweep, its dry
/// run and `watch`.
fn user_keeps_one(
    a: &Account,
    keep: &[String],
    r: &Row,
    id: &Identity,
    restored: &HashSet<String>,
) -> bool {
    if id.has_flag(quarantine::NOT_BACKSCATTER) || restored.contains(&id.fingerprint) {
        return true;
    }
    match keep_entry(keep, r, id) {
        Some(rule) => {
            tracing::info!(account = %a.name, uid = r.uid, "kept: matches keep entry \"{rule}\"");
            true
        }
        None => false,
    }
}

/// The first entry of `keep` that matches row `r` (identified as `id`):
/// its sender, List-Id or reporting MTA ([`crate::keep::matches`]).
fn keep_entry<'k>(keep: &'k [String], r: &Row, id: &Identity) -> Option<&'k str> {
    let seen = crate::keep::Seen {
        from: id.from.as_deref(),
        list_id: id.list_id.as_deref(),
        reporting_mta: r.verdict.original.reporting_mta.as_deref(),
    };
    crate::keep::matches(keep, &seen)
}

/// Move these rows of the selected `mailbox` to quarantine, journaled:
/// refuse first if the server cannot move safely; read each message's
/// fingerprint and flags; leave the ones the user restored before; write
/// the intents; move; settle the answer ([`settle_move`]: messages another
/// client moved first are counted, not an error). A move the server
/// refuses otherwise is reconciled at once (it may have moved part of the
/// set); a lost connection leaves the batch for the next run.
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
    let (found, keep) = user_keeps(imap, a, journal_path, rows).await?;
    let batch = journal::batch_id(now(), n);
    let ts = now();
    let mut intents: Vec<Entry> = Vec::new();
    for r in rows {
        // A message gone since it was classified is not moved.
        let Some(id) = found.get(&r.uid) else {
            continue;
        };
        if keep.contains(&r.uid) {
            out.kept_by_user.push(r.uid);
            continue;
        }
        intents.push(intent(a, mailbox, uidvalidity, r, id, &batch, ts));
    }
    if intents.is_empty() {
        return Ok(out);
    }
    let _moving = match journal_path.parent() {
        Some(dir) => Some(hold_moves(dir, &a.name).await?),
        None => None,
    };
    let _busy = journal::in_flight(journal_path, &batch);
    note_copy_floor(imap, &mut intents, &a.quarantine).await?;
    journal::append(journal_path, &intents).map_err(io_err("write the journal"))?;
    let uids: Vec<u32> = intents.iter().map(|e| e.uid).collect();
    let answer = imap.uid_move_mapped(&uids, &a.quarantine).await;
    let o = settle_move(imap, a, journal_path, &batch, &intents, answer).await?;
    out.moved = o.moved;
    out.elsewhere = o.elsewhere;
    out.gone = o.gone;
    Ok(out)
}

/// The sent index alone (for `account check`).
pub async fn sent_index(
    imap: &mut Imap,
    a: &Account,
    dirs: &Dirs,
) -> Result<(SentIndex, sentsync::SyncStats), CleanError> {
    Ok(sentsync::refresh(imap, a, &dirs.state, now()).await?)
}
