//! The sent-mail index: what the user really sent (Message-IDs, recipients,
//! subjects, dates) and the matching of an automated response's original
//! against it. This is the evidence no server-side filter has.
//!
//! Pure: messages come in as bytes or as already-extracted facts; building
//! the index from an IMAP Sent folder or from files is the shell's job.
//! Judging a response against the index is [`provenance`].

pub mod provenance;
pub mod window;

pub use crate::mail::normalize_subject;
use crate::mail::{normalize_address, MessageId};
use mail_parser::Address;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
pub use window::Window;

/// Parse a list of sent Message-IDs (`classify --sent-ids`, `sieve
/// generate --sent-ids`, `rules test --sent-ids`): one Message-ID per line,
/// `<id@host>` or `id@host` (RFC 5322 section 3.6.4). Skipped: a UTF-8
/// byte order mark at the start (Notepad writes one), empty lines, lines
/// starting with `#`, and a `# comment` after the ID when whitespace
/// separates them (an ID may itself contain `#`, never whitespace). Lines
/// end with LF or CRLF. Returns the IDs as written (without the comment).
///
/// Errors: one sentence naming the first line that is not a Message-ID by
/// its number and its first 60 characters (control characters shown as
/// spaces).
pub fn parse_id_list(text: &str) -> Result<Vec<String>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut l = line.trim();
        if let Some(at) = l.find(|c: char| c.is_whitespace()) {
            if l[at..].trim_start().starts_with('#') {
                l = l[..at].trim_end();
            }
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let id = l
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or(l);
        let ok = id.split_once('@').is_some_and(|(left, right)| {
            !left.is_empty() && !right.is_empty() && !right.contains('@')
        }) && !id.contains(|c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | ',' | '[' | ']' | '{' | '}' | '\u{feff}')
        }) && MessageId::new(l).is_some();
        if !ok {
            let shown: String = line
                .trim()
                .chars()
                .take(60)
                .collect::<String>()
                .replace(|c: char| c.is_control() || c == '\u{feff}', " ");
            return Err(format!(
                "line {} (\"{shown}\") is not a Message-ID: give one per line, like <abc123@example.org> (a # comment may follow it)",
                n + 1
            ));
        }
        ids.push(l.to_string());
    }
    Ok(ids)
}

/// The facts kept about one sent message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub message_id: Option<MessageId>,
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    /// Unix seconds, when the message had a parseable Date.
    pub date: Option<i64>,
    /// Unix seconds, when it was saved in the Sent mailbox (IMAP
    /// INTERNALDATE), where known: what the index's retention window
    /// counts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<i64>,
}

impl SentMessage {
    /// Extract the facts from a raw sent message (headers only are read).
    /// `None` when the bytes have no headers at all.
    pub fn from_raw(raw: &[u8]) -> Option<SentMessage> {
        let head = &raw[..raw.len().min(64 * 1024)];
        let msg = crate::mail::PARSER.parse_headers(head)?;
        let mut recipients = Vec::new();
        for hv in [msg.to(), msg.cc(), msg.bcc()].into_iter().flatten() {
            push_addresses(hv, &mut recipients);
        }
        Some(SentMessage {
            message_id: msg.message_id().and_then(MessageId::new),
            recipients,
            subject: crate::mail::subject(&msg),
            date: crate::mail::header_date(&msg).map(|d| d.to_timestamp()),
            saved: None,
        })
    }
}

/// Whether bytes look like a mail message (RFC 5322): a header section
/// with a From, Date or Message-ID field in its first 64 KiB. A text
/// file, an image or an empty file does not.
pub fn is_message(raw: &[u8]) -> bool {
    let head = &raw[..raw.len().min(64 * 1024)];
    crate::recognise::PARSER
        .parse_headers(head)
        .is_some_and(|m| {
            m.headers().iter().any(|h| {
                matches!(
                    h.name,
                    mail_parser::HeaderName::From
                        | mail_parser::HeaderName::Date
                        | mail_parser::HeaderName::MessageId
                )
            })
        })
}

fn push_addresses(a: &Address<'_>, out: &mut Vec<String>) {
    for addr in a.iter() {
        if let Some(x) = addr.address.as_deref() {
            let n = normalize_address(x);
            if n.contains('@') && !out.contains(&n) {
                out.push(n);
            }
        }
    }
}

/// Where in the index a match was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentMatch {
    /// The original's Message-ID is one the user sent.
    MessageId { id: MessageId, date: Option<i64> },
    /// The user wrote to this address.
    Recipient { address: String, date: Option<i64> },
    /// The user sent a message with this subject (normalised).
    Subject { subject: String },
}

/// One sent message that agrees with a response's original on a recipient
/// *and* the subject (and the date, where both have one): the evidence that keeps the bounce of
/// mail whose Message-ID the provider rewrote on submission (Amazon SES and
/// others, see the README), where the original's own ID is foreign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corroboration {
    /// The recipient both share, normalised.
    pub address: String,
    /// The shared subject, normalised.
    pub subject: String,
    /// The sent message's date (Unix seconds), when it had one.
    pub date: Option<i64>,
}

/// What the index keeps of one sent message: for corroboration, and the
/// two times a [`Window`] looks at.
#[derive(Debug, Clone, Default)]
struct Record {
    /// Normalised subject, when not empty.
    subject: Option<String>,
    /// Its `Date:` header (Unix seconds).
    date: Option<i64>,
    /// When it was saved in Sent (INTERNALDATE, Unix seconds).
    saved: Option<i64>,
}

impl Record {
    /// In the window (every record is, without one).
    fn within(&self, w: Option<&Window>) -> bool {
        w.is_none_or(|w| w.holds(self.date, self.saved))
    }

    /// When it left: saved in Sent where known, else its `Date:`.
    fn when(&self) -> Option<i64> {
        self.saved.or(self.date)
    }
}

/// What the user sent, indexed for matching.
#[derive(Debug, Clone, Default)]
pub struct SentIndex {
    /// Message-ID -> indexes into `records`.
    ids: HashMap<MessageId, Vec<usize>>,
    /// Normalised subject (at least [`MIN_SUBJECT_CHARS`]) -> indexes
    /// into `records`.
    subjects: HashMap<String, Vec<usize>>,
    /// Per sent message (or bare Message-ID).
    records: Vec<Record>,
    /// Recipient -> indexes into `records`.
    by_recipient: HashMap<String, Vec<usize>>,
    messages: usize,
    /// The account's `sent-days` when the index was read from a Sent
    /// mailbox: a response with a known arrival is judged against the
    /// [`Window`] of its arrival. `None` for files and ID lists: the whole
    /// index counts.
    window_days: Option<u32>,
}

/// How long before an automated response its original can have been sent,
/// in seconds: 7 days. A bounce or delay warning comes back within the
/// sending MTA's queue lifetime (5 days in Postfix's and sendmail's
/// defaults, 4 in Exim's), an auto-reply or challenge within minutes of
/// delivery. Having written to the failed recipient earlier than that is no
/// evidence that this response is about your mail.
pub const RESPONSE_WINDOW_SECS: i64 = 7 * 86_400;

/// How far apart the original's `Date:` and a sent message's may be for the
/// two to count as the same message in [`SentIndex::corroborate`], in
/// seconds. Both are normally the same header, written once by the user's
/// mail client; a day allows for a relay or provider that rewrote it.
pub const CORROBORATION_WINDOW_SECS: i64 = 86_400;

/// Subjects shorter than this (after normalisation) are too common to be
/// evidence ("hi", "test").
const MIN_SUBJECT_CHARS: usize = 10;

impl SentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one sent message.
    pub fn insert(&mut self, m: &SentMessage) {
        self.messages += 1;
        let subject = m
            .subject
            .as_deref()
            .map(normalize_subject)
            .filter(|n| !n.is_empty());
        let at = self.records.len();
        if let Some(id) = &m.message_id {
            self.ids.entry(id.clone()).or_default().push(at);
        }
        if let Some(n) = subject
            .as_ref()
            .filter(|n| n.chars().count() >= MIN_SUBJECT_CHARS)
        {
            self.subjects.entry(n.clone()).or_default().push(at);
        }
        self.records.push(Record {
            subject,
            date: m.date,
            saved: m.saved,
        });
        for r in &m.recipients {
            let list = self.by_recipient.entry(normalize_address(r)).or_default();
            if list.last() != Some(&at) {
                list.push(at);
            }
        }
    }

    /// Add a bare Message-ID (from a `--sent-ids` list): undated, so every
    /// window holds it.
    pub fn insert_id(&mut self, id: &str) {
        if let Some(id) = MessageId::new(id) {
            self.messages += 1;
            let at = self.records.len();
            self.records.push(Record::default());
            self.ids.entry(id).or_default().push(at);
        }
    }

    /// The newest time (saved, else `Date:`) of these records in `w`;
    /// `Some(None)` when the newest in it is undated; `None` when none is.
    fn newest(&self, list: &[usize], w: Option<&Window>) -> Option<Option<i64>> {
        let mut found: Option<Option<i64>> = None;
        for &i in list {
            let rec = &self.records[i];
            if rec.within(w) {
                found = Some(max_date(found.flatten(), rec.when()));
            }
        }
        found
    }

    /// Say that the index was read from a Sent mailbox for an account
    /// with this `sent-days`: a response is judged against the sent mail
    /// of [`Window::for_arrival`] its arrival.
    pub fn set_window_days(&mut self, days: u32) {
        self.window_days = Some(days);
    }

    /// The account's `sent-days`, when the index was read from a mailbox.
    pub fn window_days(&self) -> Option<u32> {
        self.window_days
    }

    /// Number of messages (or bare IDs) added.
    pub fn len(&self) -> usize {
        self.messages
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// The sent message with this Message-ID, if the user sent it.
    pub fn contains_id(&self, id: &MessageId) -> Option<SentMatch> {
        self.contains_id_in(id, None)
    }

    /// [`SentIndex::contains_id`], among the sent mail of `w` only (all of
    /// it with `None`).
    pub fn contains_id_in(&self, id: &MessageId, w: Option<&Window>) -> Option<SentMatch> {
        let date = self.newest(self.ids.get(id)?, w)?;
        Some(SentMatch::MessageId {
            id: id.clone(),
            date,
        })
    }

    pub fn wrote_to(&self, address: &str) -> Option<SentMatch> {
        self.wrote_to_in(address, None)
    }

    /// [`SentIndex::wrote_to`], among the sent mail of `w` only.
    pub fn wrote_to_in(&self, address: &str, w: Option<&Window>) -> Option<SentMatch> {
        let k = normalize_address(address);
        let date = self.newest(self.by_recipient.get(&k)?, w)?;
        Some(SentMatch::Recipient { address: k, date })
    }

    /// Like [`SentIndex::wrote_to`], for a response of time `at` (Unix
    /// seconds): only a message to `address` sent at most
    /// [`RESPONSE_WINDOW_SECS`] before it (or up to a day after, for clock
    /// skew) can be its original. `arrived`: `at` is when the response
    /// arrived (the server's INTERNALDATE), compared with when each sent
    /// message was saved in Sent (its INTERNALDATE, else its `Date:`);
    /// otherwise `at` is the response's `Date:`, compared with each sent
    /// message's `Date:`. A message without a date counts, as does any
    /// message when `at` is unknown. `Err` carries the newest time the
    /// user wrote to `address`, when that was outside the window. Only the
    /// sent mail of `w` is looked at.
    pub fn wrote_to_before(
        &self,
        address: &str,
        at: Option<i64>,
        arrived: bool,
        w: Option<&Window>,
    ) -> Result<Option<SentMatch>, i64> {
        let Some(at) = at else {
            return Ok(self.wrote_to_in(address, w));
        };
        let k = normalize_address(address);
        let Some(list) = self.by_recipient.get(&k) else {
            return Ok(None);
        };
        let mut newest: Option<i64> = None;
        for &i in list {
            if !self.records[i].within(w) {
                continue;
            }
            let r = &self.records[i];
            let when = if arrived { r.when() } else { r.date };
            match when {
                None => {
                    return Ok(Some(SentMatch::Recipient {
                        address: k,
                        date: None,
                    }))
                }
                Some(d) if d >= at - RESPONSE_WINDOW_SECS && d <= at + 86_400 => {
                    return Ok(Some(SentMatch::Recipient {
                        address: k,
                        date: Some(d),
                    }))
                }
                Some(d) => newest = Some(newest.map_or(d, |n| n.max(d))),
            }
        }
        match newest {
            Some(d) => Err(d),
            None => Ok(None),
        }
    }

    pub fn sent_subject(&self, subject: &str) -> Option<SentMatch> {
        self.sent_subject_in(subject, None)
    }

    /// [`SentIndex::sent_subject`], among the sent mail of `w` only.
    pub fn sent_subject_in(&self, subject: &str, w: Option<&Window>) -> Option<SentMatch> {
        let n = normalize_subject(subject);
        if n.chars().count() < MIN_SUBJECT_CHARS {
            return None;
        }
        self.newest(self.subjects.get(&n)?, w)?;
        Some(SentMatch::Subject { subject: n })
    }

    /// One sent message to one of `recipients` that also has the
    /// original's `subject` (normalised) and, where both have one, a date
    /// (Unix seconds) within [`CORROBORATION_WINDOW_SECS`]. A subject
    /// shorter than 10 characters counts only when both dates are known
    /// and agree. A date alone is no corroboration: the
    /// corpora hold dozens of distinct messages to one recipient with the
    /// same `Date:`. `None`
    /// when no single sent message agrees on both: a recipient the user
    /// wrote to at some other time is no evidence that this message is
    /// theirs.
    pub fn corroborate(
        &self,
        recipients: &[String],
        subject: Option<&str>,
        date: Option<i64>,
    ) -> Option<Corroboration> {
        self.corroborate_in(recipients, subject, date, None)
    }

    /// [`SentIndex::corroborate`], among the sent mail of `w` only.
    pub fn corroborate_in(
        &self,
        recipients: &[String],
        subject: Option<&str>,
        date: Option<i64>,
        w: Option<&Window>,
    ) -> Option<Corroboration> {
        let subject = subject.map(normalize_subject).filter(|n| !n.is_empty());
        let long = subject
            .as_ref()
            .is_some_and(|n| n.chars().count() >= MIN_SUBJECT_CHARS);
        for r in recipients {
            let address = normalize_address(r);
            for &i in self.by_recipient.get(&address).into_iter().flatten() {
                let rec = &self.records[i];
                if !rec.within(w) {
                    continue;
                }
                let same_subject = subject.is_some() && rec.subject == subject;
                // Known dates must agree: a subject reused to the same
                // person ("Weekly report") is not the same message. A short
                // subject ("Lunch?", "Invoice") is evidence only together
                // with agreeing dates.
                let dates_agree = match (rec.date, date) {
                    (Some(a), Some(b)) => Some((a - b).abs() <= CORROBORATION_WINDOW_SECS),
                    _ => None,
                };
                let dates_agree = if long {
                    dates_agree.unwrap_or(true)
                } else {
                    dates_agree.unwrap_or(false)
                };
                if same_subject && dates_agree {
                    return Some(Corroboration {
                        address,
                        subject: subject.clone().unwrap_or_default(),
                        date: rec.date,
                    });
                }
            }
        }
        None
    }

    /// Every Message-ID in the index as its key ([`MessageId::key`], for
    /// the Sieve generator), newest first where dates are known.
    pub fn ids_newest_first(&self) -> Vec<(String, Option<i64>)> {
        let mut v: Vec<(String, Option<i64>)> = self
            .ids
            .iter()
            .map(|(k, list)| (k.key().to_string(), self.newest(list, None).flatten()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Every address the user wrote to, newest first.
    pub fn recipients_newest_first(&self) -> Vec<(String, Option<i64>)> {
        let mut v: Vec<(String, Option<i64>)> = self
            .by_recipient
            .iter()
            .map(|(k, list)| (k.clone(), self.newest(list, None).flatten()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

fn max_date(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_mail_counts_as_a_message() {
        // Hand-written inputs.
        assert!(super::is_message(
            b"From: me@example.org\r\nSubject: hi\r\n\r\nbody"
        ));
        assert!(super::is_message(b"Message-ID: <a@b>\n\nbody"));
        assert!(!super::is_message(b"shopping list\neggs\nmilk: 2 litres\n"));
        assert!(!super::is_message(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!super::is_message(b""));
    }

    // Hand-written unit cases, marked as such; real messages are covered by
    // the golden and provenance tests.
    use super::*;

    #[test]
    fn an_id_list_is_one_message_id_a_line() {
        assert_eq!(
            parse_id_list("# mine\n<a@b.example>\n\n c@d.example \r\n").unwrap(),
            ["<a@b.example>", "c@d.example"]
        );
        // A JSON array: refused at its first line, in one sentence.
        let e = parse_id_list("[\"<a@b.example>\", \"<c@d.example>\"]\n").unwrap_err();
        assert!(e.starts_with("line 1 ("), "{e}");
        let e = parse_id_list("<a@b.example>\n[\n  \"<c@d.example>\"\n]\n").unwrap_err();
        assert!(e.starts_with("line 2 (\"[\")"), "{e}");
        assert!(parse_id_list("no-at-sign\n").is_err());
        assert!(parse_id_list("a@b@c\n").is_err());
    }

    /// Newcomer round 3 #17: a Notepad byte order mark and a trailing
    /// comment were indexed as part of the ID by one reader and refused by
    /// the other.
    #[test]
    fn a_byte_order_mark_and_a_trailing_comment_are_not_part_of_the_id() {
        let text = "\u{feff}<20140701000000.000000000000@e1.example.ne.jp>\n<abc@x.org>  # second\nmy#id@x.org\n";
        assert_eq!(
            parse_id_list(text).unwrap(),
            [
                "<20140701000000.000000000000@e1.example.ne.jp>",
                "<abc@x.org>",
                "my#id@x.org"
            ]
        );
        // Anything else after the ID is refused, with the line.
        let e = parse_id_list("<a@b.example>\n<c@d.example> mine\n").unwrap_err();
        assert!(e.starts_with("line 2 (\"<c@d.example> mine\")"), "{e}");
        // A BOM anywhere else is not skipped silently.
        assert!(parse_id_list("<a@b.example>\n\u{feff}<c@d.example>\n").is_err());
    }

    #[test]
    fn subjects_normalise_prefixes() {
        assert_eq!(
            normalize_subject("Undeliverable: RE: Budget  2027 draft"),
            "budget 2027 draft"
        );
        assert_eq!(
            normalize_subject("自動返信: 会議の件について"),
            "会議の件について"
        );
        assert_eq!(normalize_subject("Meeting at 10:30"), "meeting at 10:30");
    }

    #[test]
    fn index_matches_ids_recipients_subjects() {
        let raw = b"Message-ID: <Abc@Example.org>\r\nTo: Bob <BOB@example.net>\r\nCc: c@example.com\r\nSubject: Budget 2027 draft\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nbody";
        let m = SentMessage::from_raw(raw).unwrap();
        let mut idx = SentIndex::new();
        idx.insert(&m);
        assert!(idx
            .contains_id(&"<abc@example.org>".parse().unwrap())
            .is_some());
        assert!(idx
            .contains_id(&"<other@example.org>".parse().unwrap())
            .is_none());
        assert!(idx.wrote_to("bob@example.net").is_some());
        assert!(idx.wrote_to("c@example.com").is_some());
        assert!(idx
            .sent_subject("Automatic reply: Budget 2027 draft")
            .is_some());
        assert!(idx.sent_subject("hi").is_none());
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn corroboration_needs_one_message_agreeing_on_recipient_and_subject() {
        let mut idx = SentIndex::new();
        let day = 86_400;
        for (id, to, subject, date) in [
            (
                "<a@x>",
                "bob@example.net",
                "Quarterly report for April",
                Some(100 * day),
            ),
            ("<b@x>", "bob@example.net", "Lunch?", Some(100 * day)),
            (
                "<c@x>",
                "kim@example.net",
                "Weekly report number",
                Some(10 * day),
            ),
        ] {
            idx.insert(&SentMessage {
                message_id: id.parse().ok(),
                recipients: vec![to.into()],
                subject: Some(subject.into()),
                date,
                ..Default::default()
            });
        }
        let bob = ["bob@example.net".to_string()];
        let kim = ["kim@example.net".to_string()];
        // A long subject: dates agree or one is unknown.
        assert!(idx
            .corroborate(
                &bob,
                Some("Undeliverable: Quarterly report for April"),
                None
            )
            .is_some());
        // A short subject only with agreeing dates.
        assert!(idx
            .corroborate(&bob, Some("Re: Lunch?"), Some(100 * day + 60))
            .is_some());
        assert!(idx.corroborate(&bob, Some("Lunch?"), None).is_none());
        // The same subject to the same person weeks apart is another message.
        assert!(idx
            .corroborate(&kim, Some("Weekly report number"), Some(40 * day))
            .is_none());
        // Subject and date of one message, recipient of another: no.
        assert!(idx
            .corroborate(&kim, Some("Quarterly report for April"), Some(100 * day))
            .is_none());
    }

    #[test]
    fn a_window_limits_every_kind_of_match() {
        // Hand-written: one message sent (and saved) on day 100.
        let day = 86_400;
        let mut idx = SentIndex::new();
        idx.insert(&SentMessage {
            message_id: "<a@x>".parse().ok(),
            recipients: vec!["bob@example.net".into()],
            subject: Some("Quarterly report for April".into()),
            date: Some(100 * day),
            saved: Some(100 * day),
        });
        idx.insert_id("<listed@x>");
        let id: MessageId = "<a@x>".parse().unwrap();
        let bob = ["bob@example.net".to_string()];
        let subject = "Quarterly report for April";
        // A response that arrived the next day: its window holds it.
        let next = Window::for_arrival(101 * day, 30);
        assert!(idx.contains_id_in(&id, Some(&next)).is_some());
        assert!(idx.wrote_to_in("bob@example.net", Some(&next)).is_some());
        assert!(idx.sent_subject_in(subject, Some(&next)).is_some());
        assert!(idx
            .corroborate_in(&bob, Some(subject), None, Some(&next))
            .is_some());
        // One that arrived 60 days later: nothing of it counts.
        let late = Window::for_arrival(160 * day, 30);
        assert!(idx.contains_id_in(&id, Some(&late)).is_none());
        assert!(idx.wrote_to_in("bob@example.net", Some(&late)).is_none());
        assert!(idx.sent_subject_in(subject, Some(&late)).is_none());
        assert!(idx
            .corroborate_in(&bob, Some(subject), None, Some(&late))
            .is_none());
        assert_eq!(
            idx.wrote_to_before("bob@example.net", Some(160 * day), true, Some(&late)),
            Ok(None)
        );
        // Nor one that arrived before it was sent.
        let early = Window::for_arrival(90 * day, 30);
        assert!(idx.contains_id_in(&id, Some(&early)).is_none());
        // An undated (listed) ID counts in every window; without a window
        // everything does.
        let listed: MessageId = "<listed@x>".parse().unwrap();
        assert!(idx.contains_id_in(&listed, Some(&late)).is_some());
        assert!(idx.contains_id(&id).is_some());
    }
}
