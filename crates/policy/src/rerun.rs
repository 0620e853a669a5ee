//! What a rerun of `clean` must read: the mark an earlier sweep left for
//! a mailbox, and the plan that follows from it and from what the server
//! says now (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ).
//!
//! Pure: the shell stores the [`Mark`] (a file in the state dir), selects
//! the mailbox, sends the one `UID SEARCH` that [`Rerun::query`] gives, and
//! examines what [`Rerun::resolve`] returns.
//!
//! Why a rerun may skip what an earlier sweep judged:
//! - UIDs only grow within one UIDVALIDITY (RFC 3501 section 2.3.1.1):
//!   every message that arrived since (new mail, a restored message, one
//!   moved back by hand) has a UID above the mark.
//! - A message's bytes never change; its verdict depends on them and on
//!   inputs that are the same for every message: the classifier, the
//!   user's addresses, the keep list, the sent index's sources and
//!   window. Those are hashed into [`Inputs::fingerprint`]; any change
//!   means a full sweep.
//! - The sent index only grows between sweeps (the cache never forgets a
//!   message within its window, see `sentsync`): a growing index can only
//!   turn a response into one the user sent (`legitimate`), and a message
//!   that was moved is no longer in the mailbox. Time passing changes no
//!   verdict: a response is judged against the sent mail of the
//!   `sent-days` before it arrived ([`crate::sent::Window`]), not before
//!   the sweep, so a full sweep next year gives the verdicts this one
//!   gave (the sweep widens the index to reach back that far).
//!   A Sent mailbox renumbered, added or dropped changes the fingerprint.
//! - The one per-message input that can change is the keyword
//!   `$NotBackscatter` (the user's "keep this"): it only matters on a
//!   message the classifier calls backscatter and that stayed because of
//!   it. Those UIDs are listed in the mark ([`Mark::kept_by_keyword`]) and
//!   searched for with `UNKEYWORD` on the next run; one that lost the
//!   keyword is examined again. With CONDSTORE (RFC 7162) an unchanged
//!   HIGHESTMODSEQ proves no flag changed, and even that search is left
//!   out. Flag changes on any other message (`\Seen`, ...) change no
//!   verdict, so `CHANGEDSINCE` fetches of them would cost bytes for
//!   nothing.
//! - A message the server returned nothing usable for, or whose move's
//!   outcome is unknown, is listed in [`Mark::unjudged`] and examined
//!   again while it exists.
//!
//! A mark is only advanced over messages whose outcome is final (kept, or
//! moved and committed in the journal): a run killed anywhere leaves a
//! mark that is true, and the next run reads what is left.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The mark's format; a mark of another version is ignored (full sweep).
pub const VERSION: u32 = 1;

/// The largest UID (RFC 3501 `nz-number`): an upper bound that, unlike
/// `*`, never matches a message below the range.
const MAX_UID: u32 = u32::MAX;

/// What an earlier sweep of one mailbox established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mark {
    pub version: u32,
    /// The mailbox as the server names it (UTF-8).
    pub mailbox: String,
    pub uidvalidity: u32,
    /// Every message with a UID up to this one has a final outcome, bar
    /// those in [`Mark::unjudged`].
    pub examined_through: u32,
    /// HIGHESTMODSEQ when the sweep selected the mailbox (CONDSTORE,
    /// RFC 7162); `None` on a server without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_modseq: Option<u64>,
    /// [`Inputs::fingerprint`] of what the verdicts depended on.
    pub fingerprint: String,
    /// UIDs (at most `examined_through`) the classifier calls backscatter
    /// that stayed because they carry `$NotBackscatter`.
    #[serde(default)]
    pub kept_by_keyword: BTreeSet<u32>,
    /// UIDs (at most `examined_through`) without a final outcome: examined
    /// again by the next run while they exist.
    #[serde(default)]
    pub unjudged: BTreeSet<u32>,
    /// Unix seconds of the last update.
    pub ts: i64,
}

/// The selected mailbox, as SELECT reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Server {
    /// 0 when the server sent none.
    pub uidvalidity: u32,
    /// 0 when the server sent none.
    pub uid_next: u32,
    pub highest_modseq: Option<u64>,
}

/// Everything besides a message's bytes that its verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The classifier's identity: the program's version and build (the
    /// lexicon is hashed in by [`Inputs::fingerprint`]).
    pub classifier: &'a str,
    /// Whose mailbox: `username@host` (the port is not an input: a tunnel
    /// or proxy to the same server decides no verdict).
    pub server: &'a str,
    /// The user's own addresses.
    pub addresses: &'a [String],
    /// The account's keep list.
    pub keep: &'a [String],
    /// The sent index's window, in days.
    pub sent_days: u32,
    /// The Sent mailboxes indexed, with their UIDVALIDITY.
    pub sent: &'a [(String, u32)],
}

impl Inputs<'_> {
    /// 64 hex digits (SHA-256) over every input, lists sorted and
    /// lowercased where case does not matter, so that their order in the
    /// config changes nothing.
    pub fn fingerprint(&self) -> String {
        let sorted = |v: &[String], lower: bool| {
            let mut v: Vec<String> = v
                .iter()
                .map(|s| if lower { s.to_lowercase() } else { s.clone() })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let mut sent: Vec<(String, u32)> = self.sent.to_vec();
        sent.sort();
        let canonical = serde_json::json!({
            "format": VERSION,
            "classifier": self.classifier,
            "lexicon": hex(&Sha256::digest(crate::lexicon::LEXICON_TOML.as_bytes())),
            "server": self.server,
            "addresses": sorted(self.addresses, true),
            "keep": sorted(self.keep, true),
            "sent-days": self.sent_days,
            "sent": sent,
        });
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a sweep reads the whole mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Full {
    /// `--full`.
    Requested,
    /// No mark (never swept, or the mark is unreadable or of another
    /// format).
    First,
    /// The mailbox was renumbered (UIDVALIDITY changed): the old UIDs name
    /// other messages.
    Uidvalidity,
    /// The server reports no UIDVALIDITY: UIDs cannot be trusted across
    /// sessions.
    NoUidvalidity,
    /// Something the verdicts depend on changed (program, lexicon,
    /// addresses, keep list, Sent mailboxes or window).
    Inputs,
    /// UIDNEXT is at or below the mark with the same UIDVALIDITY: the
    /// server broke the UID rules, trust nothing.
    UidsWentBack,
}

impl Full {
    /// A short phrase for messages: "the mailbox was renumbered".
    pub fn describe(self) -> &'static str {
        match self {
            Full::Requested => "--full was given",
            Full::First => "no earlier sweep of this mailbox is recorded",
            Full::Uidvalidity => "the mailbox was renumbered (UIDVALIDITY changed)",
            Full::NoUidvalidity => "the server reports no UIDVALIDITY",
            Full::Inputs => {
                "what verdicts depend on changed (program, addresses, keep list or Sent mailboxes)"
            }
            Full::UidsWentBack => "the server's UIDNEXT went back below the recorded mark",
        }
    }
}

/// What this sweep reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every message (or every one `--since` names); progress is recorded
    /// on a fresh mark.
    Full(Full),
    /// Only what changed since the mark.
    Rerun(Rerun),
}

/// A rerun: what to search for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// The stored mark.
    pub mark: Mark,
    /// Messages above the mark may exist (UIDNEXT is past it, or unknown).
    pub new_mail: bool,
    /// [`Mark::kept_by_keyword`] to check for a lost keyword; empty when
    /// HIGHESTMODSEQ proves no flag changed.
    pub keyword_check: Vec<u32>,
}

/// Decide what to read. `stored`: the mark of this account and mailbox,
/// if any; `fingerprint`: [`Inputs::fingerprint`] now; `server`: what
/// SELECT said; `full`: `--full`.
pub fn decide(stored: Option<&Mark>, fingerprint: &str, server: &Server, full: bool) -> Plan {
    if full {
        return Plan::Full(Full::Requested);
    }
    let Some(m) = stored.filter(|m| m.version == VERSION) else {
        return Plan::Full(Full::First);
    };
    if server.uidvalidity == 0 {
        return Plan::Full(Full::NoUidvalidity);
    }
    if m.uidvalidity != server.uidvalidity {
        return Plan::Full(Full::Uidvalidity);
    }
    if m.fingerprint != fingerprint {
        return Plan::Full(Full::Inputs);
    }
    if server.uid_next != 0 && server.uid_next <= m.examined_through {
        return Plan::Full(Full::UidsWentBack);
    }
    let unchanged = matches!(
        (m.highest_modseq, server.highest_modseq),
        (Some(a), Some(b)) if a == b
    );
    Plan::Rerun(Rerun {
        new_mail: server.uid_next == 0 || server.uid_next > m.examined_through.saturating_add(1),
        keyword_check: if unchanged {
            Vec::new()
        } else {
            m.kept_by_keyword.iter().copied().collect()
        },
        mark: m.clone(),
    })
}

impl Rerun {
    /// The one `UID SEARCH` key that finds what to examine: the messages
    /// above the mark (those `since` names, an IMAP date, when given), the
    /// unjudged ones that still exist, and those of `keyword_check` that no
    /// longer carry `keyword`. `None`: nothing can need examining, no
    /// command at all.
    pub fn query(&self, since: Option<&str>, keyword: &str) -> Option<String> {
        let mut keys: Vec<String> = Vec::new();
        if self.new_mail && self.mark.examined_through < MAX_UID {
            let range = format!("UID {}:{MAX_UID}", self.mark.examined_through + 1);
            keys.push(match since {
                Some(d) => format!("({range} SINCE {d})"),
                None => range,
            });
        }
        if !self.mark.unjudged.is_empty() {
            let v: Vec<u32> = self.mark.unjudged.iter().copied().collect();
            keys.push(format!("UID {}", uid_set(&v)));
        }
        if !self.keyword_check.is_empty() {
            keys.push(format!(
                "(UID {} UNKEYWORD {keyword})",
                uid_set(&self.keyword_check)
            ));
        }
        let last = keys.pop()?;
        // OR takes two keys: OR a OR b c.
        Some(
            keys.into_iter()
                .rev()
                .fold(last, |acc, k| format!("OR {k} {acc}")),
        )
    }

    /// From the search's answer (`found`; empty when [`Rerun::query`] was
    /// `None`): the UIDs to examine, ascending, and the mark to record
    /// progress on. On that mark the messages that lost the keyword are
    /// unjudged (examined again even if this run is killed before them
    /// and HIGHESTMODSEQ is unchanged next time), unjudged messages that
    /// no longer exist are dropped, and HIGHESTMODSEQ is the server's now.
    pub fn resolve(&self, found: &[u32], server: &Server, ts: i64) -> (Vec<u32>, Mark) {
        let found: BTreeSet<u32> = found.iter().copied().collect();
        let checked: BTreeSet<u32> = self.keyword_check.iter().copied().collect();
        let mut mark = self.mark.clone();
        let lost: BTreeSet<u32> = checked.intersection(&found).copied().collect();
        mark.kept_by_keyword.retain(|u| !lost.contains(u));
        mark.unjudged = mark
            .unjudged
            .intersection(&found)
            .copied()
            .chain(lost.iter().copied())
            .collect();
        mark.highest_modseq = server.highest_modseq;
        mark.ts = ts;
        let through = self.mark.examined_through;
        let examine = found
            .iter()
            .copied()
            .filter(|u| (self.new_mail && *u > through) || mark.unjudged.contains(u))
            .collect();
        (examine, mark)
    }
}

impl Mark {
    /// The mark a full sweep records its progress on: nothing examined yet.
    pub fn fresh(mailbox: &str, server: &Server, fingerprint: &str, ts: i64) -> Mark {
        Mark {
            version: VERSION,
            mailbox: mailbox.to_string(),
            uidvalidity: server.uidvalidity,
            examined_through: 0,
            highest_modseq: server.highest_modseq,
            fingerprint: fingerprint.to_string(),
            kept_by_keyword: BTreeSet::new(),
            unjudged: BTreeSet::new(),
            ts,
        }
    }

    /// Record progress: every message of this run's list up to `through`
    /// has a final outcome; `examined` are the UIDs that got one now (each
    /// replaces what the mark said of it), of which `kept_by_keyword`
    /// stayed because of `$NotBackscatter` and `unjudged` got none.
    pub fn advance(
        &mut self,
        through: u32,
        examined: &[u32],
        kept_by_keyword: &[u32],
        unjudged: &[u32],
        ts: i64,
    ) {
        for u in examined {
            self.kept_by_keyword.remove(u);
            self.unjudged.remove(u);
        }
        self.kept_by_keyword.extend(kept_by_keyword.iter().copied());
        self.unjudged.extend(unjudged.iter().copied());
        self.examined_through = self.examined_through.max(through);
        self.ts = ts;
    }
}

/// An IMAP sequence set of ascending UIDs, runs as ranges: `1:3,7`.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "fp";

    fn server(validity: u32, next: u32, modseq: Option<u64>) -> Server {
        Server {
            uidvalidity: validity,
            uid_next: next,
            highest_modseq: modseq,
        }
    }

    fn mark(through: u32, modseq: Option<u64>) -> Mark {
        let mut m = Mark::fresh("INBOX", &server(7, 0, modseq), FP, 0);
        m.examined_through = through;
        m
    }

    fn rerun(p: Plan) -> Rerun {
        match p {
            Plan::Rerun(r) => r,
            Plan::Full(f) => panic!("full sweep: {f:?}"),
        }
    }

    #[test]
    fn full_sweeps_and_why() {
        let m = mark(100, None);
        let s = server(7, 101, None);
        assert_eq!(decide(Some(&m), FP, &s, true), Plan::Full(Full::Requested));
        assert_eq!(decide(None, FP, &s, false), Plan::Full(Full::First));
        let mut old = m.clone();
        old.version = VERSION + 1;
        assert_eq!(decide(Some(&old), FP, &s, false), Plan::Full(Full::First));
        assert_eq!(
            decide(Some(&m), FP, &server(8, 101, None), false),
            Plan::Full(Full::Uidvalidity)
        );
        assert_eq!(
            decide(Some(&m), FP, &server(0, 101, None), false),
            Plan::Full(Full::NoUidvalidity)
        );
        assert_eq!(
            decide(Some(&m), "other", &s, false),
            Plan::Full(Full::Inputs)
        );
        assert_eq!(
            decide(Some(&m), FP, &server(7, 100, None), false),
            Plan::Full(Full::UidsWentBack)
        );
    }

    #[test]
    fn nothing_new_and_nothing_to_check_needs_no_command() {
        let m = mark(100, None);
        let r = rerun(decide(Some(&m), FP, &server(7, 101, None), false));
        assert!(!r.new_mail);
        assert_eq!(r.query(None, "$NotBackscatter"), None);
        let (examine, next) = r.resolve(&[], &server(7, 101, None), 5);
        assert!(examine.is_empty());
        assert_eq!(next.examined_through, 100);
    }

    #[test]
    fn new_mail_is_searched_above_the_mark_without_star() {
        let m = mark(100, None);
        let r = rerun(decide(Some(&m), FP, &server(7, 150, None), false));
        assert_eq!(
            r.query(None, "$NotBackscatter").as_deref(),
            Some("UID 101:4294967295")
        );
        assert_eq!(
            r.query(Some("1-Nov-2026"), "$NotBackscatter").as_deref(),
            Some("(UID 101:4294967295 SINCE 1-Nov-2026)")
        );
        // Unknown UIDNEXT: search anyway.
        let r = rerun(decide(Some(&m), FP, &server(7, 0, None), false));
        assert!(r.new_mail);
        let (examine, _) = r.resolve(&[101, 140], &server(7, 0, None), 0);
        assert_eq!(examine, vec![101, 140]);
    }

    #[test]
    fn keyword_losses_and_unjudged_messages_are_examined_again() {
        let mut m = mark(100, Some(50));
        m.kept_by_keyword.extend([10, 11, 12, 40]);
        m.unjudged.extend([20, 30]);
        // HIGHESTMODSEQ moved: the kept messages are checked.
        let s = server(7, 120, Some(60));
        let r = rerun(decide(Some(&m), FP, &s, false));
        assert_eq!(r.keyword_check, vec![10, 11, 12, 40]);
        assert_eq!(
            r.query(None, "$NotBackscatter").as_deref(),
            Some("OR UID 101:4294967295 OR UID 20,30 (UID 10:12,40 UNKEYWORD $NotBackscatter)")
        );
        // 11 lost its keyword, 30 was expunged, 20 is still there, 105 is new.
        let (examine, base) = r.resolve(&[11, 20, 105], &s, 9);
        assert_eq!(examine, vec![11, 20, 105]);
        assert_eq!(
            base.kept_by_keyword,
            BTreeSet::from([10, 12, 40]),
            "11 is no longer kept by its keyword"
        );
        assert_eq!(
            base.unjudged,
            BTreeSet::from([11, 20]),
            "11 is examined again even if this run dies first; 30 is gone"
        );
        assert_eq!(base.highest_modseq, Some(60));
        assert_eq!(base.examined_through, 100);
    }

    #[test]
    fn an_unchanged_highestmodseq_skips_the_keyword_check() {
        let mut m = mark(100, Some(50));
        m.kept_by_keyword.insert(10);
        let r = rerun(decide(Some(&m), FP, &server(7, 101, Some(50)), false));
        assert!(r.keyword_check.is_empty());
        assert_eq!(r.query(None, "$NotBackscatter"), None);
        // Without CONDSTORE the check is always made.
        let m = Mark {
            highest_modseq: None,
            ..m
        };
        let r = rerun(decide(Some(&m), FP, &server(7, 101, None), false));
        assert_eq!(
            r.query(None, "$NotBackscatter").as_deref(),
            Some("(UID 10 UNKEYWORD $NotBackscatter)")
        );
        // A UID that still has the keyword is not in the answer: not
        // examined, still kept.
        let (examine, base) = r.resolve(&[], &server(7, 101, None), 0);
        assert!(examine.is_empty());
        assert_eq!(base.kept_by_keyword, BTreeSet::from([10]));
    }

    #[test]
    fn progress_replaces_what_the_mark_said_of_a_message() {
        let mut m = mark(100, None);
        m.unjudged.insert(20);
        m.kept_by_keyword.insert(30);
        // 20 judged now; 30 re-examined and kept again; 150 unjudged.
        m.advance(150, &[20, 30, 101, 150], &[30], &[150], 3);
        assert_eq!(m.examined_through, 150);
        assert_eq!(m.unjudged, BTreeSet::from([150]));
        assert_eq!(m.kept_by_keyword, BTreeSet::from([30]));
        // Progress below the mark never lowers it.
        m.advance(40, &[20], &[], &[], 4);
        assert_eq!(m.examined_through, 150);
    }

    #[test]
    fn the_fingerprint_ignores_order_and_case_but_not_content() {
        let base = Inputs {
            classifier: "0.1.0 abc",
            server: "me@imap.example.org:993",
            addresses: &["Me@Example.org".into(), "alias@example.org".into()],
            keep: &["lists.example.org".into()],
            sent_days: 30,
            sent: &[("Sent".into(), 5), ("Sent Items".into(), 9)],
        };
        let fp = base.fingerprint();
        assert_eq!(fp.len(), 64);
        let reordered = Inputs {
            addresses: &["alias@example.org".into(), "me@example.org".into()],
            sent: &[("Sent Items".into(), 9), ("Sent".into(), 5)],
            ..base
        };
        assert_eq!(reordered.fingerprint(), fp);
        for changed in [
            Inputs {
                classifier: "0.1.1 def",
                ..base
            },
            Inputs { keep: &[], ..base },
            Inputs {
                sent: &[("Sent".into(), 6)],
                ..base
            },
            Inputs {
                sent_days: 7,
                ..base
            },
            Inputs {
                addresses: &["me@example.org".into()],
                ..base
            },
            Inputs {
                server: "me@other.example.org:993",
                ..base
            },
        ] {
            assert_ne!(changed.fingerprint(), fp, "{changed:?}");
        }
    }

    #[test]
    fn marks_round_trip_as_json() {
        let mut m = mark(100, Some(77));
        m.unjudged.insert(3);
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"examined-through\":100"), "{text}");
        assert_eq!(serde_json::from_str::<Mark>(&text).unwrap(), m);
    }
}
