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

/// Bring the cache up to date and build the index of the last
/// `sent-days` days. `now` is Unix seconds.
pub async fn refresh(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
) -> Result<(SentIndex, SyncStats), SyncError> {
    refresh_covering(imap, a, state_dir, now, None).await
}

/// [`refresh`], with the window widened to cover responses received since
/// `since` (Unix seconds; `clean --since`): their originals can have been
/// sent up to [`crate::sent::RESPONSE_WINDOW_SECS`] before.
pub async fn refresh_covering(
    imap: &mut Imap,
    a: &Account,
    state_dir: &Path,
    now: i64,
    since: Option<i64>,
) -> Result<(SentIndex, SyncStats), SyncError> {
    let mailboxes = sent_mailboxes(imap, a).await?;
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
                        m.saved = f.internal_date().map(|d| d.timestamp());
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
    Ok((index, stats))
}
