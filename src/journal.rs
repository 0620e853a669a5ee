//! The move journal: one JSON object per line in the data dir
//! (`journal-ACCOUNT.jsonl`, mode 0600), recording every message moved to
//! quarantine and back, so that `restore` can undo a sweep and an
//! interrupted sweep can be finished.
//!
//! Protocol (crash safety): before a batch is moved, one `intent` line per
//! message is written and synced; after the server confirms the move, one
//! `commit` line for the batch. An intent without a commit is a batch the
//! process may have been killed in; the next run reconciles it against the
//! server (see `clean`). Reading and folding the journal is pure.
//!
//! Each move records what finds the message again in its destination: the
//! header fingerprint on the intent, the server's COPYUID mapping on the
//! commit. Past [`COMPACT_BYTES`] the journal is compacted ([`compact`]):
//! the last [`KEEP_DAYS`] days stay whole, older lines only while a
//! message is still in quarantine or a batch unfinished; the dropped lines
//! go to `journal-ACCOUNT.old.jsonl`. Appends and compaction take a lock
//! file (`journal-ACCOUNT.lock`), shared and exclusive.

use crate::classify::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

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

/// The journal file of an account.
pub fn path_for(data_dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(data_dir, "journal", account, "jsonl")
}

/// Read every entry; a torn last line (a crash mid-write) is skipped.
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Does the file end without a line break (a torn write)?
fn ends_torn(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The lock file beside a journal: appends hold it shared, compaction
/// exclusively, so that no append lands in a file being replaced.
fn lock_path(path: &Path) -> PathBuf {
    path.with_extension("lock")
}

fn lock(path: &Path, exclusive: bool) -> io::Result<std::fs::File> {
    let f = crate::paths::append_private(&lock_path(path))?;
    if exclusive {
        f.lock()?;
    } else {
        f.lock_shared()?;
    }
    Ok(f)
}

/// Append entries and sync them to disk.
pub fn append(path: &Path, entries: &[Entry]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir)?;
    }
    let _lock = lock(path, false)?;
    let mut f = crate::paths::append_private(path)?;
    let mut buf = Vec::new();
    // A run killed mid-write leaves a torn last line: start a fresh one,
    // or this batch would be glued to it and lost with it.
    if ends_torn(path)? {
        buf.push(b'\n');
    }
    for e in entries {
        serde_json::to_writer(&mut buf, e).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.sync_data()
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
/// Oldest first.
pub fn quarantined(entries: &[Entry]) -> Vec<Entry> {
    // batch -> (destination UIDVALIDITY, source UID -> destination UID)
    let mut maps: HashMap<&str, (u32, HashMap<u32, u32>)> = HashMap::new();
    let mut moved_uids: HashMap<&str, HashSet<u32>> = HashMap::new();
    let mut committed: HashSet<&str> = HashSet::new();
    for e in entries {
        match e.op {
            Op::Commit => {
                committed.insert(&e.batch);
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
    let done = |e: &Entry| {
        committed.contains(e.batch.as_str())
            || moved_uids
                .get(e.batch.as_str())
                .is_some_and(|s| s.contains(&e.uid))
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    for e in entries {
        match e.op {
            Op::Quarantine if done(e) => {
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
    out.into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
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
/// quarantine or part of an unfinished batch; batch markers stay with the
/// entries they close (their UID mappings trimmed to them). Folding the
/// result gives the same [`quarantined`] and [`unfinished`] as the input.
pub fn compact(entries: &[Entry], now: i64, keep_days: i64) -> Vec<Entry> {
    let cutoff = now - keep_days * 86_400;
    let held: HashSet<String> = quarantined(entries).iter().map(Entry::key).collect();
    let open: HashSet<String> = unfinished(entries)
        .iter()
        .filter_map(|b| b.first().map(|e| e.batch.clone()))
        .collect();
    let keep = |e: &Entry| match e.op {
        Op::Quarantine => e.ts >= cutoff || held.contains(&e.key()) || open.contains(&e.batch),
        Op::Restore => e.ts >= cutoff || open.contains(&e.batch),
        Op::Gone => e.ts >= cutoff,
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

/// Compact the journal when it is larger than `max_bytes`: the dropped
/// lines go to `journal-ACCOUNT.old.jsonl` (replacing the previous one),
/// the rest replaces the journal atomically. Returns (lines before,
/// lines after) when it compacted.
pub fn maybe_compact(path: &Path, now: i64, max_bytes: u64) -> io::Result<Option<(usize, usize)>> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > max_bytes => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let _lock = lock(path, true)?;
    let entries = read(path)?;
    let kept = compact(&entries, now, KEEP_DAYS);
    let kept_set: HashSet<String> = kept
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    let mut old = Vec::new();
    for e in &entries {
        let line = serde_json::to_string(e).map_err(io::Error::other)?;
        if !kept_set.contains(&line) {
            old.extend_from_slice(line.as_bytes());
            old.push(b'\n');
        }
    }
    let mut new = Vec::new();
    for e in &kept {
        serde_json::to_writer(&mut new, e).map_err(io::Error::other)?;
        new.push(b'\n');
    }
    crate::paths::write_private_atomic(&path.with_extension("old.jsonl"), &old)?;
    crate::paths::write_private_atomic(path, &new)?;
    Ok(Some((entries.len(), kept.len())))
}

/// A batch identifier: time and a counter, unique within a process.
pub fn batch_id(now: i64, n: usize) -> String {
    format!("{now}-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(batch: &str, uid: u32, id: &str) -> Entry {
        Entry {
            ts: 1,
            op: Op::Quarantine,
            batch: batch.into(),
            account: "a".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid,
            message_id: Some(id.into()),
            kind: Some(Kind::Bounce),
            reasons: vec![],
            to: "Backscatter".into(),
            moved: vec![],
            fingerprint: format!("fp{uid}"),
            origin: String::new(),
            dest_uidvalidity: 0,
            mapped: vec![],
            flags_before: vec![],
            flags_added: vec![],
        }
    }

    fn commit(batch: &str) -> Entry {
        Entry::marker(Op::Commit, batch, 2, vec![])
    }

    #[test]
    fn fold_commits_restores_and_unfinished() {
        let mut r = q("b3", 0, "<x@y>");
        r.op = Op::Restore;
        let mut rec = commit("b2");
        rec.op = Op::Reconciled;
        rec.moved = vec![11];
        let entries = vec![
            q("b1", 10, "<x@y>"),
            commit("b1"),
            q("b2", 11, "<z@y>"),
            q("b2", 12, "<w@y>"),
            rec,
            r,
            commit("b3"),
            q("b4", 13, "<v@y>"),
        ];
        let qd = quarantined(&entries);
        assert_eq!(qd.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![11]);
        let un = unfinished(&entries);
        assert_eq!(un.len(), 1);
        assert_eq!(un[0][0].uid, 13);
    }

    #[test]
    fn compaction_keeps_what_restore_needs() {
        let day = 86_400;
        let mut entries = Vec::new();
        // 200 old batches: moved, half restored again.
        for b in 0..200u32 {
            let batch = format!("old{b}");
            let mut e = q(&batch, b + 1, &format!("<{b}@x>"));
            e.ts = 1000;
            entries.push(e.clone());
            let mut c = commit(&batch);
            c.ts = 1000;
            c.dest_uidvalidity = 9;
            c.mapped = vec![(b + 1, b + 500)];
            entries.push(c);
            if b % 2 == 0 {
                let rb = format!("r{b}");
                let mut r = e.clone();
                r.op = Op::Restore;
                r.batch = rb.clone();
                r.origin = e.key();
                entries.push(r);
                entries.push(commit(&rb));
            }
        }
        // A recent batch and an unfinished old one.
        let mut recent = q("new", 900, "<new@x>");
        recent.ts = 100 * day;
        entries.push(recent);
        let mut c = commit("new");
        c.ts = 100 * day;
        entries.push(c);
        let mut open = q("open", 901, "<open@x>");
        open.ts = 1000;
        entries.push(open);
        let small = compact(&entries, 100 * day, 30);
        assert!(
            small.len() < entries.len() / 2,
            "{} of {}",
            small.len(),
            entries.len()
        );
        assert_eq!(quarantined(&small), quarantined(&entries));
        assert_eq!(unfinished(&small), unfinished(&entries));
        // The UID mapping survives for what is still held.
        assert!(quarantined(&small)
            .iter()
            .any(|e| e.dest_uid() == Some((9, 501))));

        // On disk: compacted past the size limit, the rest kept aside.
        let dir = std::env::temp_dir().join(format!("bs-compact-{}", std::process::id()));
        let p = path_for(&dir, "a");
        let _ = std::fs::remove_file(&p);
        append(&p, &entries).unwrap();
        assert_eq!(maybe_compact(&p, 100 * day, u64::MAX).unwrap(), None);
        let (before, after) = maybe_compact(&p, 100 * day, 1).unwrap().unwrap();
        assert_eq!((before, after), (entries.len(), small.len()));
        assert_eq!(read(&p).unwrap(), small);
        let old = read(&p.with_extension("old.jsonl")).unwrap();
        assert_eq!(old.len() + small.len(), entries.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("bs-journal-{}", std::process::id()));
        let p = path_for(&dir, "work/x");
        let _ = std::fs::remove_file(&p);
        append(&p, &[q("b1", 1, "<a@b>"), commit("b1")]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"ts\":1,\"op\":\"quar")
            .unwrap();
        let e = read(&p).unwrap();
        assert_eq!(e.len(), 2);
        // The next run's entries are not glued to the torn line.
        append(&p, &[q("b2", 2, "<c@d>")]).unwrap();
        let e = read(&p).unwrap();
        assert_eq!(e.len(), 3, "{e:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
