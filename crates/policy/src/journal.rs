//! The move journal: one JSON object per line in the data dir
//! (`journal-ACCOUNT.jsonl`, mode 0600), recording every message moved to
//! quarantine and back, so that `restore` can undo a sweep and an
//! interrupted sweep can be finished.
//!
//! Protocol (crash safety): before a batch is moved, one `intent` line per
//! message is written and synced; after the server confirms the move, one
//! `commit` line for the batch. An intent without a commit is a batch the
//! process may have been killed in; the next run reconciles it against the
//! server (see `clean`). This module is the records and their folding, pure;
//! reading and appending the file is `backscatter::journal`.
//!
//! Each move records what finds the message again in its destination: the
//! header fingerprint on the intent, the server's COPYUID mapping on the
//! commit. Past [`COMPACT_BYTES`] the journal is compacted ([`compact`]):
//! the last [`KEEP_DAYS`] days stay whole, older lines only while a
//! message is still in quarantine or a batch unfinished; the dropped lines
//! go to `journal-ACCOUNT.old.jsonl`. Appends and compaction take a lock
//! file (`journal-ACCOUNT.lock`), shared and exclusive.

use crate::recognise::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// About to move a message into quarantine.
    Quarantine,
    /// About to move a message back out of quarantine.
    Restore,
    /// The batch's moves were confirmed by the server.
    Commit,
    /// The batch was checked after an interruption: `moved` tells whether
    /// the messages had left the source mailbox.
    Reconciled,
    /// A quarantined message (`origin`) was found to be no longer in
    /// quarantine (deleted or moved by hand): `restore` stops looking for it.
    Gone,
    /// The server refused an action for one message (`uid`) of the batch
    /// (`reasons` say why): the message did not go where its intent says,
    /// and the next run tries it again (the batch's other messages are
    /// done as its commit says).
    Failed,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub ts: i64,
    pub op: Op,
    pub batch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// The mailbox the message is moved out of.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mailbox: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uidvalidity: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The mailbox the message is moved into.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// For `reconciled`: the UIDs found moved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<u32>,
    /// The message's [`crate::fingerprint`] (32 hex digits): how it is
    /// found again when its UID is unknown. Empty in journals written
    /// before fingerprints.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// For `restore` and `gone`: the [`Entry::key`] of the quarantine
    /// entry this undoes, or `"server"` for a message the server's Sieve
    /// script filed (never journaled).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// For `commit` and `reconciled`: UIDVALIDITY of the destination and
    /// (source UID, destination UID) pairs, from the server's COPYUID
    /// (RFC 4315) or read back. For a `quarantine` entry returned by
    /// [`quarantined`]: its own UID in quarantine, when known.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dest_uidvalidity: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapped: Vec<(u32, u32)>,
    /// For an intent of the user's rules (`filter`, `watch` with rules):
    /// the message's flags before the rules' UID STORE, as FETCH FLAGS
    /// gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_before: Vec<String>,
    /// For an intent of the user's rules: the flags its UID STOREs may add
    /// that the message did not have (its final flags and any copy's own),
    /// which `restore --rules` takes back (`-FLAGS`). For a `restore`
    /// entry: the flags it takes back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_added: Vec<String>,
    /// For an intent (`quarantine`, `restore`, a rules move): the message
    /// already carried `\Deleted` (the user's) before backscatter touched
    /// it. Without it, any `\Deleted` found on the message after an
    /// interrupted move is backscatter's own (the COPY fallback's, RFC
    /// 4315) and is taken off wherever the message stays. Absent (false)
    /// in journals written before this field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted_before: bool,
    /// For an intent moved by COPY + `\Deleted` + UID EXPUNGE (a server
    /// without MOVE): the destination's (UIDVALIDITY, UIDNEXT) read just
    /// before the COPY. A copy the COPY made has a UID at or above it; a
    /// look-alike below it (an identical bounce delivered twice) is not
    /// the copy. Absent for MOVE, which never leaves a message in both
    /// mailboxes (RFC 6851 section 3.3), and in journals written before
    /// this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_floor: Option<(u32, u32)>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Entry {
    /// A batch marker: `commit` (the server confirmed the moves) or
    /// `reconciled` (checked after an interruption; `moved` says which).
    pub fn marker(op: Op, batch: &str, ts: i64, moved: Vec<u32>) -> Entry {
        Entry {
            ts,
            op,
            batch: batch.to_string(),
            account: String::new(),
            mailbox: String::new(),
            uidvalidity: 0,
            uid: 0,
            message_id: None,
            kind: None,
            reasons: Vec::new(),
            to: String::new(),
            moved,
            fingerprint: String::new(),
            origin: String::new(),
            dest_uidvalidity: 0,
            mapped: Vec::new(),
            flags_before: Vec::new(),
            flags_added: Vec::new(),
            deleted_before: false,
            copy_floor: None,
        }
    }

    /// Identifies a quarantine or restore entry within the journal:
    /// `BATCH/UID`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.batch, self.uid)
    }

    /// For an entry returned by [`quarantined`]: its UID in quarantine, if
    /// the server reported it (COPYUID), with that mailbox's UIDVALIDITY.
    pub fn dest_uid(&self) -> Option<(u32, u32)> {
        self.mapped
            .first()
            .filter(|(src, _)| *src == self.uid && self.dest_uidvalidity != 0)
            .map(|(_, d)| (self.dest_uidvalidity, *d))
    }
}

/// Batches with intents but neither a commit nor a reconciliation.
pub fn unfinished(entries: &[Entry]) -> Vec<Vec<Entry>> {
    let closed: HashSet<&str> = entries
        .iter()
        .filter(|e| matches!(e.op, Op::Commit | Op::Reconciled))
        .map(|e| e.batch.as_str())
        .collect();
    let mut order: Vec<&str> = Vec::new();
    let mut by: HashMap<&str, Vec<Entry>> = HashMap::new();
    for e in entries {
        if matches!(e.op, Op::Quarantine | Op::Restore) && !closed.contains(e.batch.as_str()) {
            if !by.contains_key(e.batch.as_str()) {
                order.push(&e.batch);
            }
            by.entry(&e.batch).or_default().push(e.clone());
        }
    }
    order.into_iter().filter_map(|b| by.remove(b)).collect()
}

/// Origin of restore entries for messages the server's Sieve script filed.
pub const SERVER_ORIGIN: &str = "server";

/// Messages now in quarantine according to the journal: quarantine moves
/// that happened (committed, or found moved by a reconciliation), not
/// undone by a restore or marked gone. Each returned entry carries its
/// UID in quarantine where the server reported one ([`Entry::dest_uid`]).
/// A message two batches both claim (the same source UID: two processes
/// moving it at once) is returned once. Oldest first.
pub fn quarantined(entries: &[Entry]) -> Vec<Entry> {
    // batch -> (destination UIDVALIDITY, source UID -> destination UID)
    let mut maps: HashMap<&str, (u32, HashMap<u32, u32>)> = HashMap::new();
    let mut moved_uids: HashMap<&str, HashSet<u32>> = HashMap::new();
    let mut committed: HashSet<&str> = HashSet::new();
    let mut commit_mapped: HashSet<&str> = HashSet::new();
    for e in entries {
        match e.op {
            Op::Commit => {
                committed.insert(&e.batch);
                if !e.mapped.is_empty() {
                    commit_mapped.insert(&e.batch);
                }
            }
            Op::Reconciled => {
                moved_uids.entry(&e.batch).or_default().extend(&e.moved);
            }
            _ => continue,
        }
        if !e.mapped.is_empty() {
            let m = maps.entry(&e.batch).or_default();
            m.0 = e.dest_uidvalidity;
            m.1.extend(e.mapped.iter().copied());
        }
    }
    let failed: HashSet<(&str, u32)> = entries
        .iter()
        .filter(|e| e.op == Op::Failed)
        .map(|e| (e.batch.as_str(), e.uid))
        .collect();
    // A commit with the server's COPYUID mapping names the UIDs that
    // moved: the others were gone before the move (another client, a
    // concurrent `watch`, moved them), and are not in quarantine by this
    // batch.
    let unmapped = |e: &Entry| {
        commit_mapped.contains(e.batch.as_str())
            && !maps
                .get(e.batch.as_str())
                .is_some_and(|(_, m)| m.contains_key(&e.uid))
    };
    let done = |e: &Entry| {
        !failed.contains(&(e.batch.as_str(), e.uid))
            && committed.contains(e.batch.as_str())
            && !unmapped(e)
            || moved_uids
                .get(e.batch.as_str())
                .is_some_and(|s| s.contains(&e.uid))
    };
    // How sure the journal is that this entry's batch moved the message:
    // the server's COPYUID named it (0), the server confirmed the batch
    // without naming UIDs (1), a reconciliation found it moved (2).
    let rank = |e: &Entry| {
        if committed.contains(e.batch.as_str()) && commit_mapped.contains(e.batch.as_str()) {
            0
        } else if committed.contains(e.batch.as_str()) {
            1
        } else {
            2
        }
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut ranks: Vec<u8> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    for e in entries {
        match e.op {
            Op::Quarantine if done(e) => {
                ranks.push(rank(e));
                let mut q = e.clone();
                q.mapped.clear();
                if let Some((validity, m)) = maps.get(e.batch.as_str()) {
                    if let Some(d) = m.get(&e.uid) {
                        q.dest_uidvalidity = *validity;
                        q.mapped = vec![(e.uid, *d)];
                    }
                }
                index.insert(e.key(), out.len());
                out.push(q);
            }
            Op::Restore if done(e) => {
                if e.origin.is_empty() {
                    // Written before restores named their origin: by ID.
                    if let Some(i) = (0..out.len()).rev().find(|i| {
                        !removed.contains(i)
                            && out[*i].message_id.is_some()
                            && out[*i].message_id == e.message_id
                    }) {
                        removed.insert(i);
                    }
                } else if let Some(i) = index.get(&e.origin) {
                    removed.insert(*i);
                }
            }
            Op::Gone => {
                if let Some(i) = index.get(&e.origin) {
                    removed.insert(*i);
                }
            }
            _ => {}
        }
    }
    // One message, one entry: two batches that both scheduled the same
    // message (the same UID of the same mailbox and UIDVALIDITY: `watch`
    // and `clean` at once, or a batch another process reconciled while its
    // move was in flight) moved it once. The entry the server's answer
    // vouches for stays (then the oldest); when any of them was restored
    // or found gone, so are the others.
    let mut groups: HashMap<(&str, u32, u32, &str), Vec<usize>> = HashMap::new();
    for (i, e) in out.iter().enumerate() {
        if e.uidvalidity != 0 && e.uid != 0 {
            groups
                .entry((e.mailbox.as_str(), e.uidvalidity, e.uid, e.to.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut twins: HashSet<usize> = HashSet::new();
    for group in groups.values().filter(|g| g.len() > 1) {
        if group.iter().any(|i| removed.contains(i)) {
            twins.extend(group.iter().copied());
        } else if let Some(&keep) = group.iter().min_by_key(|&&i| (ranks[i], i)) {
            twins.extend(group.iter().copied().filter(|&i| i != keep));
        }
    }
    out.into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i) && !twins.contains(i))
        .map(|(_, e)| e)
        .collect()
}

/// How many days of history compaction keeps whole (for reports); older
/// lines are kept only while `restore` needs them.
pub const KEEP_DAYS: i64 = 30;

/// A journal larger than this is compacted by [`maybe_compact`].
pub const COMPACT_BYTES: u64 = 8 << 20;

/// The journal without what neither `restore` nor a report can need: lines
/// older than `keep_days` are dropped unless they are a message still in
/// quarantine or part of an unfinished batch; the intents of a batch that
/// was checked and found not to have moved them (a refused move, retried
/// by `watch` after each reconnection) are dropped at once, whatever
/// their age; batch markers stay with the entries they close (their UID
/// mappings trimmed to them). Folding the result gives the same
/// [`quarantined`] and [`unfinished`] as the input.
pub fn compact(entries: &[Entry], now: i64, keep_days: i64) -> Vec<Entry> {
    let cutoff = now - keep_days * 86_400;
    let held: HashSet<String> = quarantined(entries).iter().map(Entry::key).collect();
    let open: HashSet<String> = unfinished(entries)
        .iter()
        .filter_map(|b| b.first().map(|e| e.batch.clone()))
        .collect();
    // Batches closed by a check (no commit) and the UIDs the check found
    // moved.
    let committed: HashSet<&str> = entries
        .iter()
        .filter(|e| e.op == Op::Commit)
        .map(|e| e.batch.as_str())
        .collect();
    let mut checked: HashMap<&str, HashSet<u32>> = HashMap::new();
    for e in entries.iter().filter(|e| e.op == Op::Reconciled) {
        if !committed.contains(e.batch.as_str()) {
            checked
                .entry(e.batch.as_str())
                .or_default()
                .extend(e.moved.iter().copied());
        }
    }
    let never_moved = |e: &Entry| {
        !open.contains(&e.batch)
            && checked
                .get(e.batch.as_str())
                .is_some_and(|moved| !moved.contains(&e.uid))
    };
    let keep = |e: &Entry| match e.op {
        Op::Quarantine | Op::Restore if never_moved(e) => false,
        Op::Quarantine => e.ts >= cutoff || held.contains(&e.key()) || open.contains(&e.batch),
        Op::Restore => e.ts >= cutoff || open.contains(&e.batch),
        Op::Gone | Op::Failed => e.ts >= cutoff,
        Op::Commit | Op::Reconciled => false,
    };
    let mut kept_uids: HashMap<&str, HashSet<u32>> = HashMap::new();
    for e in entries.iter().filter(|e| keep(e)) {
        kept_uids.entry(&e.batch).or_default().insert(e.uid);
    }
    entries
        .iter()
        .filter_map(|e| match e.op {
            Op::Commit | Op::Reconciled => {
                let uids = kept_uids.get(e.batch.as_str())?;
                let mut m = e.clone();
                m.mapped.retain(|(src, _)| uids.contains(src));
                m.moved.retain(|u| uids.contains(u));
                Some(m)
            }
            _ => keep(e).then(|| e.clone()),
        })
        .collect()
}
