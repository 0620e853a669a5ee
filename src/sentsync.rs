//! Keeping the sent index from the account's Sent mailbox(es): which
//! mailboxes (configured, or those marked `\Sent`), how far back the index
//! reaches (far enough to judge each response against the `sent-days`
//! before it arrived, [`crate::sent::window`]), and an incremental cache
//! in the state dir (UIDVALIDITY, last UID and reach per mailbox), so that
//! a run reads only the Sent mail saved since the last, and a widening
//! only the days the cache did not reach yet.

use crate::config::Account;
use crate::imap::{imap_date, Imap, ImapError};
use crate::sent::{SentIndex, SentMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2: `date` is the Date header, `saved` the INTERNALDATE (1 kept the
/// INTERNALDATE in `date`). 3: each message with its UID, and `since` the
/// reach of everything read (the cache no longer forgets what ages out).
const CACHE_VERSION: u32 = 3;
const FETCH_CHUNK: usize = 1000;
const DAY: i64 = 86_400;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    pub version: u32,
    pub mailboxes: BTreeMap<String, MailboxCache>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MailboxCache {
    /// How far back this entry reaches (Unix seconds): it holds every
    /// message up to `last_uid` saved in Sent (INTERNALDATE) since then.
    /// It only moves back: a sweep of old mail widens it once
    /// ([`crate::sent::window::cover_from`]) and later runs read only what
    /// is new. `i64::MAX` for an entry that has read nothing yet.
    #[serde(default = "unknown_since")]
    pub since: i64,
    pub uidvalidity: u32,
    pub last_uid: u32,
    pub messages: Vec<Cached>,
}

/// One sent message of the cache, with its UID (so that a widening,
/// which searches the UIDs below `last_uid` again, adds each once).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cached {
    pub uid: u32,
    #[serde(flatten)]
    pub message: SentMessage,
}

pub fn cache_path(state_dir: &Path, account: &str) -> PathBuf {
    crate::paths::account_file(state_dir, "sent", account, "json")
}

fn load_cache(path: &Path) -> Cache {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cache>(&b).ok())
        .filter(|c| c.version == CACHE_VERSION)
        .unwrap_or_default()
}

/// Why the sent index could not be built.
#[derive(Debug)]
pub enum SyncError {
    /// No Sent mailbox found and none configured: a configuration problem.
    NoSentMailbox(String),
    Imap(ImapError),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::NoSentMailbox(m) => f.write_str(m),
            SyncError::Imap(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SyncError {}

impl From<ImapError> for SyncError {
    fn from(e: ImapError) -> Self {
        SyncError::Imap(e)
    }
}

/// The Sent mailboxes to read: the configured ones, else those marked
/// `\Sent` (SPECIAL-USE).
pub async fn sent_mailboxes(imap: &mut Imap, a: &Account) -> Result<Vec<String>, SyncError> {
    if let Some(s) = &a.sent {
        return Ok(s.clone());
    }
    let list = imap.list().await?;
    let found: Vec<String> = list
        .iter()
        .filter(|m| m.selectable && m.special_use.iter().any(|s| s == "\\Sent"))
        .map(|m| m.name.clone())
        .collect();
    if found.is_empty() {
        return Err(SyncError::NoSentMailbox(format!(
            "no mailbox of account \"{}\" is marked \\Sent, so backscatter cannot tell your own bounces from forged ones: set sent = [\"Sent\"] (your Sent folder's name) in [accounts.{}]",
            a.name, a.name
        )));
    }
    Ok(found)
}

/// What a refresh did.
#[derive(Debug, Default, Clone)]
pub struct SyncStats {
    pub fetched: usize,
    pub messages: usize,
    /// The Sent mailboxes indexed, with their UIDVALIDITY: what a sweep's
    /// rerun mark depends on (see `rerun`).
    pub sources: Vec<(String, u32)>,
    /// How far back the index built reaches (Unix seconds): every sent
    /// message saved since then is in it. A response that arrived at T
    /// is judged right when [`crate::sent::window::covers`] this and T.
    pub reach: i64,
    /// Commands sent and awaited by this refresh (`imap::ROUND_TRIPS`).
    pub round_trips: u64,
    /// Bytes this refresh received, as they came off the connection.
    pub bytes: u64,
}

/// How far back a refresh's index must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// To judge mail arriving now (`watch`, the Sieve script, `account
    /// check`).
    Now,
    /// To judge mail that arrived since this moment (Unix seconds), and
    /// as far back as the cache already reaches (`clean`: a second sweep
    /// of old mail reads nothing old again).
    Since(i64),
}

fn unknown_since() -> i64 {
    i64::MAX
}

/// What a refresh saw, to tell later whether the index it built is still
/// the one a refresh would build: each Sent mailbox's (UIDVALIDITY,
/// UIDNEXT) when it was read, and when the oldest dated message leaves the
/// window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// (UIDVALIDITY, UIDNEXT) by Sent mailbox (resolved name, UTF-8).
    pub mailboxes: BTreeMap<String, (u32, u32)>,
    /// Unix seconds after which a message leaves the `sent_days` window
    /// (the earliest such moment); `None` when no message is dated.
    pub expires: Option<i64>,
    /// How far back the index reaches ([`SyncStats::reach`]).
    pub reach: i64,
}

impl Marks {
    /// Would a refresh at `now` build the same index, given each Sent
    /// mailbox's (UIDVALIDITY, UIDNEXT) now (`status`, from STATUS, RFC
    /// 3501 section 6.3.10)? Yes when no mailbox got a message (UIDNEXT
    /// unchanged), none was renumbered, none was added or removed, and no
    /// message left the window. A message removed from Sent does not
    /// change UIDNEXT; a refresh does not forget those either (the cache
    /// only grows, then ages out).
    pub fn still_fresh(&self, status: &BTreeMap<String, (u32, u32)>, now: i64) -> bool {
        !self.mailboxes.is_empty()
            && self.mailboxes == *status
            && self.expires.is_none_or(|t| now <= t)
    }
}

/// Bring the cache up to date and build the index, reaching back far
/// enough to judge mail arriving now. `now` is Unix seconds.
pub async fn refresh(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
) -> Result<(SentIndex, SyncStats), SyncError> {
    refresh_covering(imap, a, state_dir, now, Reach::Now)
        .await
        .map(|(index, stats, _)| (index, stats))
}

/// [`refresh`], also returning what it saw ([`Marks`]).
pub async fn refresh_marked(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
) -> Result<(SentIndex, SyncStats, Marks), SyncError> {
    refresh_covering(imap, a, state_dir, now, Reach::Now).await
}

/// [`refresh_marked`], with the index reaching back as `reach` says: a
/// response that arrived at T is judged against the sent mail of the
/// `sent-days` before T ([`crate::sent::Window`]), so a sweep of mail
/// that arrived since T needs the sent mail from
/// [`crate::sent::window::cover_from`] T on.
///
/// Incremental: each Sent mailbox is read once per UIDVALIDITY. Per
/// mailbox one `UID SEARCH` finds the messages above the cache's last UID
/// and, when the reach is wider than the cache's, those below it saved in
/// the days it did not cover; only those are fetched (headers only). The
/// cache then reaches as far as the widest refresh asked for, and keeps
/// it (its size grows with the Sent mail it covers, never re-read).
pub async fn refresh_covering(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
    reach: Reach,
) -> Result<(SentIndex, SyncStats, Marks), SyncError> {
    let counters0 = crate::imap::counters();
    let mailboxes = sent_mailboxes(imap, a).await?;
    let mut marks = Marks::default();
    let path = cache_path(state_dir, &a.name);
    let mut cache = load_cache(&path);
    cache.version = CACHE_VERSION;
    let arrived = match reach {
        Reach::Now => now,
        Reach::Since(t) => t.min(now),
    };
    let want = crate::sent::window::cover_from(arrived, a.sent_days);
    let mut stats = SyncStats::default();
    cache.mailboxes.retain(|k, _| mailboxes.contains(k));
    for mb in &mailboxes {
        let sel = imap.open_named(mb, true).await?;
        stats.sources.push((mb.clone(), sel.uid_validity));
        marks
            .mailboxes
            .insert(mb.clone(), (sel.uid_validity, sel.uid_next));
        let entry = cache.mailboxes.entry(mb.clone()).or_default();
        if entry.uidvalidity != sel.uid_validity || entry.last_uid == 0 {
            *entry = MailboxCache {
                since: unknown_since(),
                uidvalidity: sel.uid_validity,
                ..MailboxCache::default()
            };
        }
        let query = search_query(entry, want, sel.uid_next);
        let known: std::collections::HashSet<u32> = entry.messages.iter().map(|c| c.uid).collect();
        let uids: Vec<u32> = match query {
            Some(q) => imap
                .uid_search(&q)
                .await?
                .into_iter()
                .filter(|u| !known.contains(u))
                .collect(),
            None => Vec::new(),
        };
        for chunk in uids.chunks(FETCH_CHUNK) {
            let fetches = imap
                .uid_fetch(
                    chunk,
                    "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID TO CC BCC SUBJECT DATE)])",
                )
                .await?;
            for f in &fetches {
                if let (Some(uid), Some(h)) = (f.uid, f.header()) {
                    if let Some(mut m) = SentMessage::from_raw(h) {
                        // When it was saved in Sent: what the cache's
                        // reach means (a Date header can be anything).
                        // Windows look at both.
                        m.saved = f.internal_date;
                        entry.messages.push(Cached { uid, message: m });
                    }
                    stats.fetched += 1;
                }
            }
        }
        // Every UID below UIDNEXT was in the search.
        entry.last_uid = entry
            .last_uid
            .max(sel.uid_next.saturating_sub(1))
            .max(uids.iter().copied().max().unwrap_or(0));
        entry.since = entry.since.min(want);
    }
    if crate::paths::private_dir(state_dir).is_ok() {
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            // A cache that cannot be written only costs time next run.
            let _ = crate::paths::write_private_atomic(&path, &bytes);
        }
    }
    // The index: from `want` on, or all the cache holds for a sweep.
    let cutoff = match reach {
        Reach::Now => want,
        Reach::Since(_) => cache
            .mailboxes
            .values()
            .map(|mc| mc.since)
            .max()
            .unwrap_or(want)
            .min(want),
    };
    let mut index = SentIndex::new();
    index.set_window_days(a.sent_days);
    let held = |m: &SentMessage| m.saved.or(m.date).is_none_or(|d| d >= cutoff);
    for mc in cache.mailboxes.values() {
        for c in mc.messages.iter().filter(|c| held(&c.message)) {
            index.insert(&c.message);
        }
    }
    stats.messages = index.len();
    stats.reach = cutoff;
    marks.reach = cutoff;
    // When the oldest message of an index reaching back from now leaves
    // it (a refresh then builds a smaller one).
    marks.expires = cache
        .mailboxes
        .values()
        .flat_map(|mc| mc.messages.iter())
        .filter(|c| held(&c.message))
        .filter_map(|c| c.message.saved.or(c.message.date))
        .min()
        .map(|d| d + (now - cutoff));
    let counters = crate::imap::counters();
    stats.round_trips = counters.2 - counters0.2;
    stats.bytes = counters.0 - counters0.0;
    Ok((index, stats, marks))
}

/// The one `UID SEARCH` key that brings the cache `entry` of a Sent
/// mailbox (now at `uid_next`) to a reach of `want` (Unix seconds):
/// the messages above its last UID saved since the reach (a day earlier,
/// for the server's time zone), and, when `want` is earlier than the
/// entry reaches, those below it saved in the days between (up to two
/// days past its old reach: the UIDs already held are left out by the
/// caller). `None`: nothing to search for.
fn search_query(entry: &MailboxCache, want: i64, uid_next: u32) -> Option<String> {
    let since = want.min(entry.since);
    let from = imap_date(since - DAY);
    let new = (uid_next == 0 || uid_next > entry.last_uid + 1).then(|| {
        if entry.last_uid == 0 {
            format!("SINCE {from}")
        } else {
            format!("UID {}:* SINCE {from}", entry.last_uid + 1)
        }
    });
    let older = (entry.last_uid > 0 && want < entry.since).then(|| {
        format!(
            "UID 1:{} SINCE {} BEFORE {}",
            entry.last_uid,
            imap_date(want - DAY),
            imap_date(entry.since.saturating_add(2 * DAY))
        )
    });
    match (new, older) {
        (Some(n), Some(o)) => Some(format!("OR ({n}) ({o})")),
        (n, o) => n.or(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_stays_fresh_until_sent_changes_or_a_message_ages_out() {
        let mut marks = Marks {
            mailboxes: BTreeMap::from([("Sent".to_string(), (7, 40))]),
            expires: Some(1_000),
            reach: 0,
        };
        let same = marks.mailboxes.clone();
        assert!(marks.still_fresh(&same, 1_000));
        // The oldest message left the window.
        assert!(!marks.still_fresh(&same, 1_001));
        // A message saved in Sent (UIDNEXT moved), or Sent renumbered.
        let grown = BTreeMap::from([("Sent".to_string(), (7, 41))]);
        assert!(!marks.still_fresh(&grown, 10));
        let renumbered = BTreeMap::from([("Sent".to_string(), (8, 40))]);
        assert!(!marks.still_fresh(&renumbered, 10));
        // A Sent mailbox more, or one the STATUS did not answer for.
        let more = BTreeMap::from([
            ("Sent".to_string(), (7, 40)),
            ("Sent Items".to_string(), (1, 2)),
        ]);
        assert!(!marks.still_fresh(&more, 10));
        assert!(!marks.still_fresh(&BTreeMap::new(), 10));
        // Nothing dated: only the mailboxes matter.
        marks.expires = None;
        assert!(marks.still_fresh(&same, i64::MAX));
        // Nothing read yet: never fresh.
        assert!(!Marks::default().still_fresh(&BTreeMap::new(), 0));
    }

    #[test]
    fn the_cache_reads_what_is_new_and_only_the_days_it_did_not_reach() {
        let day = 86_400;
        // 2026-11-30 00:00 UTC.
        let now = 1_795_996_800;
        let empty = MailboxCache {
            since: unknown_since(),
            ..MailboxCache::default()
        };
        // First read: everything saved since the reach (a day earlier).
        assert_eq!(
            search_query(&empty, now - 36 * day, 10).as_deref(),
            Some("SINCE 24-Oct-2026")
        );
        let read = MailboxCache {
            since: now - 36 * day,
            uidvalidity: 7,
            last_uid: 9,
            messages: Vec::new(),
        };
        // Nothing new, the same reach: no command at all.
        assert_eq!(search_query(&read, now - 35 * day, 10), None);
        // New mail: only above the last UID.
        assert_eq!(
            search_query(&read, now - 35 * day, 12).as_deref(),
            Some("UID 10:* SINCE 24-Oct-2026")
        );
        // A wider reach: the days not reached yet below the last UID, and
        // the new mail since the new reach, in one search.
        assert_eq!(
            search_query(&read, now - 400 * day, 12).as_deref(),
            Some("OR (UID 10:* SINCE 25-Oct-2025) (UID 1:9 SINCE 25-Oct-2025 BEFORE 27-Oct-2026)")
        );
        assert_eq!(
            search_query(&read, now - 400 * day, 10).as_deref(),
            Some("UID 1:9 SINCE 25-Oct-2025 BEFORE 27-Oct-2026")
        );
    }
}
