//! What is in the quarantine mailbox, and which journal entry each message
//! belongs to: read every message's identity (UID, fingerprint, Message-ID,
//! flags) and match the journal's quarantined entries to them, first by
//! the UID the server reported for the move (COPYUID, when UIDVALIDITY is
//! unchanged), then by fingerprint, then (journals written before
//! fingerprints) by Message-ID. Messages no entry claims were filed by the
//! server's Sieve script (or by hand).
//!
//! [`attribute`] is pure; [`inventory`] and [`identities`] read the server.

use crate::fingerprint::{id_key, Identity, FETCH_ITEMS};
use crate::imap::{ErrorKind, Imap, ImapError, Selected};
use crate::journal::Entry;
use std::collections::{HashMap, HashSet};

pub use backscatter_policy::keep::{FILED_BY_SCRIPT, NOT_BACKSCATTER};

/// Did backscatter move this message into quarantine: journaled (a
/// sweep's or the agent's move), or marked [`FILED_BY_SCRIPT`] by the
/// server-side script. Anything else there (a folder that held mail
/// before, a message dragged in by hand) is not backscatter's to restore
/// unless named.
pub fn moved_by_backscatter(p: &Placed) -> bool {
    p.entry.is_some() || filed_by_script(&p.item.flags)
}

/// Does this flag list carry [`FILED_BY_SCRIPT`] (keywords compare
/// case-insensitively, RFC 3501 section 2.3.2).
pub fn filed_by_script(flags: &[String]) -> bool {
    flags
        .iter()
        .any(|f| f.eq_ignore_ascii_case(FILED_BY_SCRIPT))
}

/// A message in quarantine and the journal entry that put it there
/// (`None`: filed by the server's Sieve script, or by hand).
#[derive(Debug, Clone)]
pub struct Placed {
    pub item: Identity,
    pub entry: Option<Entry>,
}

/// The quarantine matched to the journal.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// Every message in quarantine, in UID order.
    pub placed: Vec<Placed>,
    /// Journal entries whose message is certainly no longer in quarantine
    /// (its fingerprint, or for old entries its Message-ID, matches none).
    pub gone: Vec<Entry>,
    /// Journal entries that cannot be identified at all (written before
    /// fingerprints, without a Message-ID or UID mapping).
    pub unknown: Vec<Entry>,
}

/// Match the journal's quarantined entries (`held`, from
/// [`crate::journal::quarantined`]) to the quarantine's messages (`items`),
/// whose UIDVALIDITY is `uidvalidity`. Each message is claimed by at most
/// one entry, so duplicates (same Message-ID, even same fingerprint) are
/// counted right.
pub fn attribute(held: &[Entry], items: Vec<Identity>, uidvalidity: u32) -> Attribution {
    let mut by_uid: HashMap<u32, usize> = HashMap::new();
    let mut by_fp: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_uid.insert(it.uid, i);
        by_fp.entry(it.fingerprint.as_str()).or_default().push(i);
        if let Some(id) = &it.message_id {
            by_id.entry(id_key(id)).or_default().push(i);
        }
    }
    let mut claimed: HashMap<usize, usize> = HashMap::new(); // item -> entry
    let mut open: Vec<usize> = Vec::new();
    // 1. The UID the server reported, where the fingerprint agrees.
    for (k, e) in held.iter().enumerate() {
        let hit = e
            .dest_uid()
            .filter(|(v, _)| *v == uidvalidity)
            .and_then(|(_, u)| by_uid.get(&u).copied())
            .filter(|i| e.fingerprint.is_empty() || items[*i].fingerprint == e.fingerprint)
            .filter(|i| !claimed.contains_key(i));
        match hit {
            Some(i) => {
                claimed.insert(i, k);
            }
            None => open.push(k),
        }
    }
    // 2. The fingerprint, then 3. the Message-ID of old entries.
    let mut gone = Vec::new();
    let mut unknown = Vec::new();
    for k in open {
        let e = &held[k];
        let candidates: Option<&Vec<usize>> = if !e.fingerprint.is_empty() {
            by_fp.get(e.fingerprint.as_str())
        } else if let Some(id) = &e.message_id {
            by_id.get(&id_key(id))
        } else {
            unknown.push(e.clone());
            continue;
        };
        match candidates.and_then(|c| c.iter().find(|i| !claimed.contains_key(i))) {
            Some(&i) => {
                claimed.insert(i, k);
            }
            None => gone.push(e.clone()),
        }
    }
    let mut placed: Vec<Placed> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| Placed {
            entry: claimed.get(&i).map(|k| held[*k].clone()),
            item,
        })
        .collect();
    placed.sort_by_key(|p| p.item.uid);
    Attribution {
        placed,
        gone,
        unknown,
    }
}

/// Does this flag list (as FETCH FLAGS gave it) hold `\Deleted`
/// (RFC 3501 section 2.3.2; flag names are case-insensitive).
pub fn is_deleted(flags: &[String]) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"))
}

/// The identities of these UIDs of the selected mailbox (one UID FETCH of
/// [`FETCH_ITEMS`] per 1000). UIDs the server does not answer for are
/// absent; a response without a UID is ignored, never guessed.
pub async fn identities(imap: &mut Imap, uids: &[u32]) -> Result<Vec<Identity>, ImapError> {
    let wanted: HashSet<u32> = uids.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in uids.chunks(1000) {
        for f in imap.uid_fetch(chunk, FETCH_ITEMS).await? {
            let Some(uid) = f.uid.filter(|u| wanted.contains(u)) else {
                continue;
            };
            out.push(Identity::new(
                uid,
                f.header().unwrap_or_default(),
                f.size.unwrap_or(0),
                f.internal_date.unwrap_or(0),
                f.flags.clone(),
            ));
        }
    }
    out.sort_by_key(|i| i.uid);
    out.dedup_by_key(|i| i.uid);
    Ok(out)
}

/// Select `mailbox` (read-write) and read every message's identity.
/// Also says whether the mailbox keeps [`NOT_BACKSCATTER`].
pub async fn inventory(
    imap: &mut Imap,
    mailbox: &str,
) -> Result<(Selected, bool, Vec<Identity>), ImapError> {
    inventory_above(imap, mailbox, |_| 0).await
}

/// [`inventory`] of only the messages whose UID is above `floor(UIDVALIDITY)`
/// (the newest arrivals, e.g. what an interrupted move may have added).
///
/// A mailbox that does not exist (the server refuses to open it and LIST
/// does not show it) is [`ErrorKind::Missing`]; any other refusal (of the
/// SELECT, the SEARCH or a FETCH) is the server's error, never an empty
/// mailbox.
pub async fn inventory_above(
    imap: &mut Imap,
    mailbox: &str,
    floor: impl FnOnce(u32) -> u32,
) -> Result<(Selected, bool, Vec<Identity>), ImapError> {
    let (sel, keywords) = match imap.select_keywords(mailbox, NOT_BACKSCATTER).await {
        Ok(x) => x,
        Err(e) if e.kind == ErrorKind::No && !imap.mailbox_exists(mailbox).await? => {
            return Err(ImapError {
                kind: ErrorKind::Missing,
                message: format!("mailbox \"{}\" does not exist", crate::imap::shown(mailbox)),
            })
        }
        Err(e) => return Err(e),
    };
    if sel.exists == 0 {
        return Ok((sel, keywords, Vec::new()));
    }
    let floor = floor(sel.uid_validity);
    let query = if floor == 0 {
        "ALL".to_string()
    } else {
        format!("UID {}:*", floor.saturating_add(1))
    };
    // `UID n:*` also matches the last message when its UID is below n.
    let uids: Vec<u32> = imap
        .uid_search(&query)
        .await?
        .into_iter()
        .filter(|u| *u > floor)
        .collect();
    let items = identities(imap, &uids).await?;
    Ok((sel, keywords, items))
}

/// The local list of messages the user restored, for servers whose
/// quarantine does not keep keywords (no `\*` in PERMANENTFLAGS): one JSON
/// object a line (`ts`, `fingerprint`, `message_id`) in the data dir,
/// `kept-ACCOUNT.jsonl`, mode 0600.
pub fn kept_path(data_dir: &std::path::Path, account: &str) -> std::path::PathBuf {
    crate::paths::account_file(data_dir, "kept", account, "jsonl")
}

/// One line of the local list.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeptLine {
    /// Unix seconds.
    pub ts: i64,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// The fingerprints on the local list (empty when there is none; torn or
/// foreign lines are skipped).
pub fn load_kept(path: &std::path::Path) -> std::io::Result<HashSet<String>> {
    // Bytes, not text: a torn last line may end inside a UTF-8 character.
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(crate::journal::named(path, e)),
    };
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<KeptLine>(l).ok())
        .map(|k| k.fingerprint)
        .collect())
}

/// Add messages to the local list (synced before returning, so that it
/// holds before the messages leave quarantine).
pub fn remember_kept(path: &std::path::Path, items: &[&Identity], ts: i64) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir)?;
    }
    let mut buf = Vec::new();
    for i in items {
        let line = KeptLine {
            ts,
            fingerprint: i.fingerprint.clone(),
            message_id: i.message_id.clone(),
        };
        serde_json::to_writer(&mut buf, &line).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    (|| {
        let mut f = crate::paths::append_private(path)?;
        f.write_all(&buf)?;
        f.sync_data()
    })()
    .map_err(|e| crate::journal::named(path, e))
}

/// One message in quarantine, for `backscatter quarantine list` and
/// `show`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// Its UID in the quarantine mailbox.
    pub uid: u32,
    /// The quarantine mailbox's UIDVALIDITY when listed (RFC 3501
    /// section 2.3.1.1): what `restore --uid N --uidvalidity V` checks.
    pub uidvalidity: u32,
    /// The Date header field as written (`None` when missing).
    pub date: Option<String>,
    /// When it arrived in quarantine (INTERNALDATE), Unix seconds.
    pub arrived: i64,
    pub kind: Option<crate::Kind>,
    /// The From header field as a mail client shows it: RFC 2047 encoded
    /// words decoded, `Name <addr>` ([`crate::mail::display_value`]); not
    /// sanitised for a terminal.
    pub sender: Option<String>,
    /// The Subject, decoded the same way.
    pub subject: Option<String>,
    /// The Message-ID field as written; `None` when there is none.
    pub message_id: Option<String>,
    /// Why it was moved: the journal's reasons for backscatter's moves;
    /// for messages the server's script filed, the classifier's now.
    pub reasons: Vec<String>,
    /// `"journal"` (moved by `clean` or `watch`), `"server"` (filed by
    /// the server's Sieve script: marked [`FILED_BY_SCRIPT`]; classified
    /// now) or `"other"` (neither: put there by hand or by something
    /// else; classified now, restored only when named).
    pub source: &'static str,
    /// The mailbox it was moved out of (journaled moves).
    pub mailbox: Option<String>,
    /// When it was moved (journaled moves), Unix seconds.
    pub moved: Option<i64>,
}

impl Listed {
    /// The listing row of a placed message; `now` is the classifier's
    /// verdict for messages without a journal entry.
    pub fn new(p: &Placed, now: Option<&crate::Verdict>) -> Listed {
        let (kind, reasons) = match (&p.entry, now) {
            (Some(e), _) => (e.kind, e.reasons.clone()),
            (None, Some(v)) => {
                let mut r = vec![format!(
                    "{}; classified now as {}",
                    if filed_by_script(&p.item.flags) {
                        "filed by the server's script"
                    } else {
                        "not moved by backscatter"
                    },
                    match v.verdict {
                        crate::Decision::Backscatter => "backscatter",
                        crate::Decision::Legitimate => "legitimate (a response to your own mail)",
                        crate::Decision::Normal => "not an automated response",
                    }
                )];
                r.extend(v.reasons.iter().cloned());
                (v.kind, r)
            }
            (None, None) => (
                None,
                vec![if filed_by_script(&p.item.flags) {
                    "filed by the server's script".into()
                } else {
                    "not moved by backscatter".into()
                }],
            ),
        };
        Listed {
            uid: p.item.uid,
            uidvalidity: 0,
            date: p.item.date.clone(),
            arrived: p.item.arrived,
            kind,
            sender: p.item.shown_from(),
            subject: p.item.shown_subject(),
            message_id: p.item.message_id.clone(),
            reasons,
            source: if p.entry.is_some() {
                "journal"
            } else if filed_by_script(&p.item.flags) {
                "server"
            } else {
                "other"
            },
            mailbox: p.entry.as_ref().map(|e| e.mailbox.clone()),
            moved: p.entry.as_ref().map(|e| e.ts),
        }
    }

    /// When it entered quarantine: the journal's time, else INTERNALDATE.
    pub fn since_key(&self) -> i64 {
        self.moved.unwrap_or(self.arrived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Op;

    fn item(uid: u32, fp: &str, id: Option<&str>) -> Identity {
        Identity {
            uid,
            fingerprint: fp.into(),
            message_id: id.map(str::to_string),
            from: None,
            subject: None,
            date: None,
            list_id: None,
            arrived: 0,
            flags: vec![],
            size: 1,
        }
    }

    fn held(uid: u32, fp: &str, id: Option<&str>, dest: Option<(u32, u32)>) -> Entry {
        let mut e = Entry::marker(Op::Quarantine, "b", 1, vec![]);
        e.uid = uid;
        e.fingerprint = fp.into();
        e.message_id = id.map(str::to_string);
        if let Some((v, d)) = dest {
            e.dest_uidvalidity = v;
            e.mapped = vec![(uid, d)];
        }
        e
    }

    #[test]
    fn uid_mapping_then_fingerprint_then_id() {
        let items = vec![
            item(1, "f1", None),
            item(2, "dup", Some("<same@x>")),
            item(3, "dup", Some("<same@x>")),
            item(4, "f4", Some("<old@x>")),
            item(5, "f5", Some("filed-by-sieve")),
        ];
        let entries = vec![
            held(10, "f1", None, Some((7, 1))),
            held(11, "dup", Some("<same@x>"), None),
            held(12, "dup", Some("<same@x>"), None),
            held(13, "", Some("<OLD@x>"), None),
            held(14, "gone", None, Some((7, 99))),
            held(15, "", None, None),
        ];
        let a = attribute(&entries, items, 7);
        let by: Vec<(u32, Option<u32>)> = a
            .placed
            .iter()
            .map(|p| (p.item.uid, p.entry.as_ref().map(|e| e.uid)))
            .collect();
        assert_eq!(
            by,
            vec![
                (1, Some(10)),
                (2, Some(11)),
                (3, Some(12)),
                (4, Some(13)),
                (5, None)
            ]
        );
        assert_eq!(a.gone.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![14]);
        assert_eq!(
            a.unknown.iter().map(|e| e.uid).collect::<Vec<_>>(),
            vec![15]
        );
    }

    #[test]
    fn a_mapping_from_another_uidvalidity_is_not_trusted() {
        // The quarantine was recreated: UID 1 is now another message.
        let items = vec![item(1, "other", None), item(2, "mine", None)];
        let entries = vec![held(10, "mine", None, Some((7, 1)))];
        let a = attribute(&entries, items, 8);
        assert!(a.placed[0].entry.is_none());
        assert_eq!(a.placed[1].entry.as_ref().map(|e| e.uid), Some(10));
    }
}
