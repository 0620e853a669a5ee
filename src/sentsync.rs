//! Keeping the sent index from the account's Sent mailbox(es): which
//! mailboxes (configured, or those marked `\Sent`), the recent window, and
//! an incremental cache in the state dir (UIDVALIDITY + last UID per
//! mailbox), so a sweep does not re-read all of Sent each time.

use crate::config::Account;
use crate::imap::{imap_date, Imap, ImapError};
use crate::sent::{SentIndex, SentMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2: `date` is the Date header, `saved` the INTERNALDATE (1 kept the
/// INTERNALDATE in `date`).
const CACHE_VERSION: u32 = 2;
const FETCH_CHUNK: usize = 1000;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    pub version: u32,
    pub mailboxes: BTreeMap<String, MailboxCache>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MailboxCache {
    /// The start of the window this entry was read for (Unix seconds): a
    /// wider window reads the mailbox again (older mail lies below
    /// `last_uid`). Caches written before it: read again once.
    #[serde(default = "unknown_since")]
    pub since: i64,
    pub uidvalidity: u32,
    pub last_uid: u32,
    pub messages: Vec<SentMessage>,
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

/// Bring the cache up to date and build the index. `now` is Unix seconds.
pub async fn refresh(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
) -> Result<(SentIndex, SyncStats), SyncError> {
    refresh_covering(imap, a, state_dir, now, None)
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
    refresh_covering(imap, a, state_dir, now, None).await
}

/// [`refresh_marked`], with the window widened to cover responses
/// received since `since` (Unix seconds; `clean --since`): their
/// originals can have been sent up to
/// [`crate::sent::RESPONSE_WINDOW_SECS`] before.
pub async fn refresh_covering(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
    since: Option<i64>,
) -> Result<(SentIndex, SyncStats, Marks), SyncError> {
    let mailboxes = sent_mailboxes(imap, a).await?;
    let mut marks = Marks::default();
    let path = cache_path(state_dir, &a.name);
    let mut cache = load_cache(&path);
    cache.version = CACHE_VERSION;
    let days_cutoff = now - i64::from(a.sent_days) * 86_400;
    let cutoff = since.map_or(days_cutoff, |t| {
        days_cutoff.min(t - crate::sent::RESPONSE_WINDOW_SECS)
    });
    let window_days = u32::try_from(((now - cutoff).max(0) + 86_399) / 86_400).unwrap_or(u32::MAX);
    let mut stats = SyncStats::default();
    cache.mailboxes.retain(|k, _| mailboxes.contains(k));
    for mb in &mailboxes {
        let sel = imap.open_named(mb, true).await?;
        stats.sources.push((mb.clone(), sel.uid_validity));
        marks
            .mailboxes
            .insert(mb.clone(), (sel.uid_validity, sel.uid_next));
        let entry = cache.mailboxes.entry(mb.clone()).or_default();
        if entry.uidvalidity != sel.uid_validity || entry.since > cutoff {
            *entry = MailboxCache {
                uidvalidity: sel.uid_validity,
                ..MailboxCache::default()
            };
        }
        entry.since = cutoff;
        let query = if entry.last_uid == 0 {
            format!("SINCE {}", imap_date(cutoff))
        } else {
            format!("UID {}:* SINCE {}", entry.last_uid + 1, imap_date(cutoff))
        };
        let uids: Vec<u32> = imap
            .uid_search(&query)
            .await?
            .into_iter()
            .filter(|u| *u > entry.last_uid)
            .collect();
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
                        // When it was saved in Sent: what the window means
                        // (a Date header can be anything). Matching uses
                        // the Date header, as the file path does: a Sent
                        // folder imported last week holds older mail.
                        m.saved = f.internal_date;
                        entry.messages.push(m);
                    }
                    entry.last_uid = entry.last_uid.max(uid);
                    stats.fetched += 1;
                }
            }
        }
        // Forget what left the window (undated messages are kept).
        entry
            .messages
            .retain(|m| m.saved.or(m.date).is_none_or(|d| d >= cutoff));
    }
    if crate::paths::private_dir(state_dir).is_ok() {
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            // A cache that cannot be written only costs time next run.
            let _ = crate::paths::write_private_atomic(&path, &bytes);
        }
    }
    let mut index = SentIndex::new();
    index.set_window_days(window_days);
    for mc in cache.mailboxes.values() {
        for m in &mc.messages {
            index.insert(m);
        }
    }
    stats.messages = index.len();
    marks.expires = cache
        .mailboxes
        .values()
        .flat_map(|mc| mc.messages.iter())
        .filter_map(|m| m.saved.or(m.date))
        .min()
        .map(|d| d + (now - cutoff));
    Ok((index, stats, marks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_stays_fresh_until_sent_changes_or_a_message_ages_out() {
        let mut marks = Marks {
            mailboxes: BTreeMap::from([("Sent".to_string(), (7, 40))]),
            expires: Some(1_000),
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
}
