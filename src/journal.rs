//! The move journal's file (`journal-ACCOUNT.jsonl`, mode 0600): reading
//! it (a torn last line skipped), appending with a sync, and compaction
//! under a lock file. The records and their folding are
//! [`backscatter_policy::journal`], re-exported here.

pub use backscatter_policy::journal::*;
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The journal file of an account.
pub fn path_for(data_dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(data_dir, "journal", account, "jsonl")
}

/// The account's move lock, beside its journals in `data_dir`
/// (`moves-NAME.lock`).
pub fn move_lock_path(data_dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(data_dir, "moves", account, "lock")
}

/// The account's move lock, held: whoever moves messages of the account
/// holds it (a `clean`, `restore` or `filter` run for its whole length,
/// `watch` for each batch), so that no two processes move the same
/// message at once. Dovecot answers two concurrent `UID MOVE`s of one
/// message OK to both and leaves two copies (newcomer round 4, fault 1).
/// Within one process it is shared: taking it again while held (`watch`'s
/// rules run inside its own move) gives another handle on the same lock.
/// The OS releases it when the last handle is dropped or the process
/// ends, however it ends. The file holds the holder's process ID, for the
/// message of whoever waits.
#[derive(Debug, Clone)]
pub struct MoveLock(#[allow(dead_code)] std::sync::Arc<std::fs::File>);

/// Move locks this process holds, by path.
static MOVE_LOCKS: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<std::fs::File>)>> =
    std::sync::Mutex::new(Vec::new());

fn held_here(path: &Path) -> Option<MoveLock> {
    let mut held = MOVE_LOCKS.lock().ok()?;
    held.retain(|(_, w)| w.strong_count() > 0);
    held.iter()
        .find(|(p, _)| p == path)
        .and_then(|(_, w)| w.upgrade())
        .map(MoveLock)
}

/// Take the move lock at `path` ([`move_lock_path`]) if no other process
/// holds it; `Ok(None)` when one does (its process ID is in the file).
pub fn try_move_lock(path: &Path) -> io::Result<Option<MoveLock>> {
    if let Some(l) = held_here(path) {
        return Ok(Some(l));
    }
    let f = open_move_lock(path)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(held_by_us(path, f))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(named(path, e)),
    }
}

/// Take the move lock at `path`, waiting as long as another process holds
/// it (blocking: call from a blocking thread in async code).
pub fn move_lock(path: &Path) -> io::Result<MoveLock> {
    if let Some(l) = held_here(path) {
        return Ok(l);
    }
    let f = open_move_lock(path)?;
    f.lock().map_err(|e| named(path, e))?;
    Ok(held_by_us(path, f))
}

/// The process ID written in the move lock at `path` by its holder, if
/// any.
pub fn move_lock_holder(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn open_move_lock(path: &Path) -> io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir).map_err(|e| named(path, e))?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| named(path, e))
}

fn held_by_us(path: &Path, mut f: std::fs::File) -> MoveLock {
    // Best effort: the lock itself is what counts.
    let _ = f.set_len(0);
    let _ = write!(f, "{}", std::process::id());
    let f = std::sync::Arc::new(f);
    if let Ok(mut held) = MOVE_LOCKS.lock() {
        held.push((path.to_path_buf(), std::sync::Arc::downgrade(&f)));
    }
    MoveLock(f)
}

/// Read every entry; a torn last line (a crash mid-write, cut anywhere,
/// inside a multi-byte UTF-8 character too) is skipped, as is any line
/// that is not an entry. Errors name the file and say what to do
/// ([`named`]).
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(named(path, e)),
    };
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
        .collect())
}

/// `e` as one sentence about `path`: the file's name, what failed, and
/// for a permission problem what to do (the journal and the state files
/// are the user's own, mode 0600).
pub fn named(path: &Path, e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            " (the file and its folder must belong to the user running backscatter: check `ls -l {}`, then chown or chmod u+rw)",
            path.display()
        ),
        io::ErrorKind::StorageFull => " (free some disk space and run again)".to_string(),
        _ => String::new(),
    };
    io::Error::new(e.kind(), format!("{}: {e}{hint}", path.display()))
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
    append_unnamed(path, entries).map_err(|e| named(path, e))
}

fn append_unnamed(path: &Path, entries: &[Entry]) -> io::Result<()> {
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

/// Compact the journal when it is larger than `max_bytes` and holds
/// something old enough to drop: the dropped lines go to
/// `journal-ACCOUNT.old.jsonl` (replacing the previous one), the rest
/// replaces the journal atomically. Returns (lines before, lines after)
/// when it compacted; a journal with nothing to drop is left untouched
/// (not rewritten on every run).
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
    if kept.len() == entries.len() {
        // Nothing old enough to drop: the file stays as it is (rewriting
        // it unchanged on every run of a busy account cost a full copy).
        return Ok(None);
    }
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

/// A batch identifier: time, process ID and a counter, unique within a
/// process (`1764495140-4242-0`).
pub fn batch_id(now: i64, n: usize) -> String {
    format!("{now}-{}-{n}", std::process::id())
}

/// The process ID in a [`batch_id`].
fn batch_pid(batch: &str) -> Option<u32> {
    batch.split('-').nth(1)?.parse().ok()
}

/// Batches of this process whose move is in flight (see [`in_flight`]).
static IN_FLIGHT: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The live files this process holds, by journal.
static LIVE: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// `journal-ACCOUNT.PID.live` beside the journal: held locked (`flock`,
/// exclusive) by process PID from its first move until it ends, so that
/// another process can tell its unfinished batches are still moving.
fn live_path(path: &Path, pid: u32) -> PathBuf {
    path.with_extension(format!("{pid}.live"))
}

/// A batch whose move is being sent and settled by this process: while the
/// guard lives, [`busy`] says so to every reconciliation (another task's in
/// this process, or another process's, through the live file). Dropped
/// when the move is settled, or abandoned with its connection: then the
/// batch is any reconciliation's again.
#[derive(Debug)]
pub struct InFlight(String);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = IN_FLIGHT.lock() {
            set.remove(&self.0);
        }
    }
}

/// Mark batch `batch` of the journal at `path` as in flight (see
/// [`InFlight`]); the live file is taken on the first call for a journal.
/// A live file that cannot be written only means another process may
/// reconcile the batch early, as before such files: it is logged, never
/// fatal.
pub fn in_flight(path: &Path, batch: &str) -> InFlight {
    if let Ok(mut live) = LIVE.lock() {
        if !live.iter().any(|(p, _)| p == path) {
            let own = live_path(path, std::process::id());
            let taken = path
                .parent()
                .map_or(Ok(()), crate::paths::private_dir)
                .and_then(|()| crate::paths::append_private(&own))
                .and_then(|f| f.lock().map(|()| f));
            match taken {
                Ok(f) => {
                    forget_stale(path);
                    live.push((path.to_path_buf(), f));
                }
                Err(e) => tracing::warn!("cannot take {}: {e}", own.display()),
            }
        }
    }
    if let Ok(mut set) = IN_FLIGHT.lock() {
        set.insert(batch.to_string());
    }
    InFlight(batch.to_string())
}

/// Remove the live files of processes that ended (no one holds them).
fn forget_stale(path: &Path) {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) else {
        return;
    };
    let prefix = format!("{}.", stem.to_string_lossy());
    let Ok(list) = std::fs::read_dir(dir) else {
        return;
    };
    for f in list.flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".live"))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id()) && !held(&f.path()) {
            let _ = std::fs::remove_file(f.path());
        }
    }
}

/// Does some process hold this live file locked?
fn held(live: &Path) -> bool {
    match std::fs::File::open(live) {
        Ok(f) => matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Is batch `batch` of the journal at `path` being moved right now, by a
/// task of this process ([`in_flight`]) or by another process that is
/// still running (its live file is held)? Reconciling such a batch would
/// race its own move: it is left to the run that sent it, which settles
/// it (or, if it dies, to the next reconciliation).
pub fn busy(path: &Path, batch: &str) -> bool {
    match batch_pid(batch) {
        Some(pid) if pid == std::process::id() => {
            IN_FLIGHT.lock().is_ok_and(|set| set.contains(batch))
        }
        Some(pid) => held(&live_path(path, pid)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Kind;

    /// The move lock is shared within a process (watch's rules run inside
    /// its own move), written with the holder's process ID, and free again
    /// once the last handle is gone.
    #[test]
    fn the_move_lock_is_shared_within_a_process() {
        let dir = std::env::temp_dir().join(format!("bs-movelock-{}", std::process::id()));
        let path = move_lock_path(&dir, "a b");
        let first = try_move_lock(&path).unwrap().expect("free");
        let again = try_move_lock(&path)
            .unwrap()
            .expect("shared within the process");
        assert_eq!(move_lock_holder(&path), Some(std::process::id()));
        drop(first);
        drop(again);
        // A new handle in this process: the OS lock was released, so
        // another open file can take it.
        let f = open_move_lock(&path).unwrap();
        assert!(f.try_lock().is_ok(), "released after the last handle");
        let _ = std::fs::remove_dir_all(&dir);
    }

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
            deleted_before: false,
            copy_floor: None,
        }
    }

    fn commit(batch: &str) -> Entry {
        Entry::marker(Op::Commit, batch, 2, vec![])
    }

    /// A run killed mid-write can cut the last line anywhere, inside a
    /// multi-byte character too: that line is skipped, the rest read.
    #[test]
    fn a_torn_last_line_is_skipped_whatever_byte_it_ends_in() {
        let dir = std::env::temp_dir().join(format!("bs-journal-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal-a.jsonl");
        let mut e = q("b1", 10, "<x@y>");
        e.reasons = vec!["not in your sent mail — ünïcödé".into()];
        append(&path, &[e.clone(), commit("b1")]).unwrap();
        let whole = serde_json::to_vec(&e).unwrap();
        let cut = whole
            .iter()
            .rposition(|&b| b >= 0x80 && b & 0xC0 != 0x80)
            .unwrap()
            + 1; // just after the lead byte of the last multi-byte character
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&whole[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.len(), 2);
        assert_eq!(read_back[0].reasons, e.reasons);
        // The next append starts a fresh line.
        append(&path, &[commit("b2")]).unwrap();
        assert_eq!(read(&path).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A journal that cannot be read or written is named in the error
    /// (a folder where the file should be: the tests run as root, for
    /// whom permissions deny nothing).
    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("bs-journal-named-{}", std::process::id()));
        let path = dir.join("journal-a.jsonl");
        std::fs::create_dir_all(&path).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        let e = append(&path, &[commit("b2")]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        let denied = named(&path, io::Error::from(io::ErrorKind::PermissionDenied)).to_string();
        assert!(denied.contains("chown or chmod u+rw"), "{denied}");
        std::fs::remove_dir_all(&dir).unwrap();
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
    fn a_commit_with_copyuid_holds_only_the_uids_it_names() {
        // Another client moved UID 11 first: the server's COPYUID names
        // only 10, and only 10 is in quarantine by this batch.
        let mut c = commit("b1");
        c.dest_uidvalidity = 9;
        c.mapped = vec![(10, 500)];
        let entries = vec![q("b1", 10, "<a@y>"), q("b1", 11, "<b@y>"), c];
        let held = quarantined(&entries);
        assert_eq!(held.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![10]);
        assert_eq!(held[0].dest_uid(), Some((9, 500)));
        // Without a mapping (no UIDPLUS), the commit is taken at its word.
        let entries = vec![q("b2", 10, "<a@y>"), q("b2", 11, "<b@y>"), commit("b2")];
        assert_eq!(quarantined(&entries).len(), 2);
    }

    #[test]
    fn a_batch_in_flight_is_busy_until_settled_here_or_there() {
        let dir = std::env::temp_dir().join(format!("bs-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal-a.jsonl");
        // This process: busy while the guard lives.
        let mine = batch_id(5, 0);
        let guard = in_flight(&path, &mine);
        assert!(busy(&path, &mine));
        assert!(live_path(&path, std::process::id()).exists());
        drop(guard);
        assert!(!busy(&path, &mine));
        // Another process (pid 4242): busy while its live file is held.
        let theirs = "5-4242-0";
        assert!(!busy(&path, theirs));
        let live = live_path(&path, 4242);
        let f = crate::paths::append_private(&live).unwrap();
        f.lock().unwrap();
        assert!(busy(&path, theirs));
        drop(f);
        assert!(!busy(&path, theirs));
        // Its stale file goes when a live file is next taken.
        LIVE.lock().unwrap().retain(|(p, _)| p != &path);
        let _g = in_flight(&path, &batch_id(6, 1));
        assert!(!live.exists());
        assert!(!busy(&path, "x"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_message_two_batches_claim_is_in_quarantine_once() {
        // `clean` (batch c) reconciled its refused move and found UID 10 in
        // quarantine, where `watch` (batch w) had just moved it, before
        // watch's commit was written: both claim it.
        let mut rec = Entry::marker(Op::Reconciled, "c", 3, vec![10]);
        rec.dest_uidvalidity = 9;
        rec.mapped = vec![(10, 500)];
        let mut wc = commit("w");
        wc.dest_uidvalidity = 9;
        wc.mapped = vec![(10, 500)];
        let entries = vec![q("c", 10, "<a@y>"), q("w", 10, "<a@y>"), rec, wc];
        let held = quarantined(&entries);
        assert_eq!(held.len(), 1);
        // The batch the server's COPYUID vouches for keeps it.
        assert_eq!(held[0].batch, "w");
        assert_eq!(held[0].dest_uid(), Some((9, 500)));
        // Both committed without COPYUID (no UIDPLUS): the oldest keeps it.
        let entries = vec![
            q("c", 10, "<a@y>"),
            commit("c"),
            q("w", 10, "<a@y>"),
            commit("w"),
        ];
        let held = quarantined(&entries);
        assert_eq!(
            held.iter().map(|e| e.batch.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        // Restored once (by whichever entry restore matched): gone for both.
        let mut r = q("r", 500, "<a@y>");
        r.op = Op::Restore;
        r.origin = "w/10".into();
        let mut entries = entries;
        entries.extend([r, commit("r")]);
        assert!(quarantined(&entries).is_empty());
        // Another UID of the same mailbox is another message.
        let entries = vec![
            q("c", 10, "<a@y>"),
            commit("c"),
            q("w", 11, "<a@y>"),
            commit("w"),
        ];
        assert_eq!(quarantined(&entries).len(), 2);
    }

    /// Newcomer round 4, fault 5e: `watch` against a server that refuses
    /// UID MOVE journals the same moves again after every reconnection,
    /// each batch then checked and found not moved. Those intents carry
    /// nothing to undo: compaction drops them at once, recent or not; a
    /// checked batch that did move a message keeps that one.
    #[test]
    fn compaction_drops_intents_a_check_found_not_moved() {
        let mut entries = Vec::new();
        for b in 0..50u32 {
            let batch = format!("refused{b}");
            entries.push(q(&batch, 7, "<7@x>"));
            entries.push(q(&batch, 8, "<8@x>"));
            entries.push(Entry::marker(Op::Reconciled, &batch, 2, vec![]));
        }
        entries.push(q("partly", 9, "<9@x>"));
        entries.push(q("partly", 10, "<10@x>"));
        entries.push(Entry::marker(Op::Reconciled, "partly", 2, vec![10]));
        entries.push(q("open", 11, "<11@x>"));
        let kept = compact(&entries, 3, 30);
        let keys: Vec<String> = kept
            .iter()
            .filter(|e| e.op == Op::Quarantine)
            .map(Entry::key)
            .collect();
        assert_eq!(keys, ["partly/10", "open/11"]);
        assert_eq!(quarantined(&kept), quarantined(&entries));
        assert_eq!(unfinished(&kept), unfinished(&entries));
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
        // Too large, but nothing old enough to drop yet: left untouched.
        let untouched = std::fs::metadata(&p).unwrap().modified().unwrap();
        assert_eq!(maybe_compact(&p, 0, 1).unwrap(), None);
        assert_eq!(
            std::fs::metadata(&p).unwrap().modified().unwrap(),
            untouched
        );
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
