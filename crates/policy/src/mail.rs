//! The mail vocabulary every other module speaks: the parser's set-up,
//! dates, bounded input, Message-IDs ([`MessageId`]), addresses and
//! subjects, normalised once, here.
//!
//! A leaf: it depends on mail-parser only. Pure.

use mail_parser::{HeaderName, Message, MessageParser};
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

/// A parser configured with the headers the base vocabulary reads: MIME,
/// addresses, Message-IDs, `Subject`, and `Date` / `Return-Path` kept raw.
/// Every other header is skipped without decoding. `Date:` is parsed on its
/// own with [`header_date`]: mail-parser 0.11's date parser swallows the next
/// header line after an unknown zone such as `UT` (a real bounce in the
/// corpus lost its `From:` that way). The classifier adds its lexicon's
/// headers to this (`recognise::PARSER`).
pub fn base_parser() -> MessageParser {
    MessageParser::new()
        .default_header_ignore()
        .with_mime_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .header_raw(HeaderName::Date)
        .header_raw(HeaderName::ReturnPath)
}

/// One [`base_parser`] for the process (building one allocates its header
/// table); the sent index reads sent messages with it.
pub static PARSER: LazyLock<MessageParser> = LazyLock::new(base_parser);

/// At most this many bytes of a message are read. Everything that matters
/// (headers, the report, the start of the text, the original's headers)
/// sits well inside this in every real sample; a 50 MB attachment does not
/// make classification slower.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;
/// Cap the input and repair CR-only line endings (old Mac mail), which the
/// parser would otherwise read as one endless header line.
pub fn bounded(raw: &[u8]) -> Cow<'_, [u8]> {
    // Saved files sometimes start with blank lines or an mbox `From ` line.
    let skip = raw
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let mut raw = &raw[skip..];
    if raw.starts_with(b"From ") {
        let end = memchr::memchr(b'\n', raw).map_or(raw.len(), |i| i + 1);
        raw = &raw[end..];
    }
    let raw = &raw[..raw.len().min(MAX_MESSAGE_BYTES)];
    let probe = &raw[..raw.len().min(8192)];
    if memchr::memchr(b'\n', probe).is_none() && memchr::memchr(b'\r', probe).is_some() {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'\r' { b'\n' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    }
}

/// The message's `Date:`, parsed on its own (see [`base_parser`]).
pub fn header_date(m: &Message<'_>) -> Option<mail_parser::DateTime> {
    m.header_raw(HeaderName::Date)
        .and_then(|v| mail_parser::DateTime::parse_rfc822(v.trim()))
}

/// Normalise an address for comparison: trimmed, no brackets, lowercase.
pub fn normalize_address(a: &str) -> String {
    a.trim()
        .trim_matches(['<', '>', '"', '\''])
        .trim()
        .to_lowercase()
}

/// Normalise a Message-ID for comparison (IDs are compared case-insensitively:
/// a collision between two real IDs differing only in case is negligible,
/// while MTAs that change case are not).
pub fn id_key(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).trim().to_lowercase()
}

/// A Message-ID (RFC 5322 §3.6.4), normalised on construction: compared and
/// hashed by its key ([`id_key`]: without angle brackets, trimmed, case
/// folded), displayed and serialised as `<id>` with its original case.
#[derive(Debug, Clone, Eq)]
pub struct MessageId {
    /// The ID as written, without angle brackets.
    text: String,
    key: String,
}

impl MessageId {
    /// `None` when nothing is left after trimming white space and brackets.
    pub fn new(s: &str) -> Option<MessageId> {
        let text = s.trim().trim_matches(['<', '>']).trim();
        (!text.is_empty()).then(|| MessageId {
            key: text.to_lowercase(),
            text: text.to_string(),
        })
    }

    /// The comparison key ([`id_key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The ID as written, without angle brackets.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for MessageId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

/// A string is compared by its key: `MessageId::new("<A@b>") == "a@b"`.
impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        self.key == id_key(other)
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        self.key == id_key(other)
    }
}

/// Parses like [`MessageId::new`]; the error is for an empty ID.
impl std::str::FromStr for MessageId {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageId::new(s).ok_or("an empty Message-ID")
    }
}

impl Hash for MessageId {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.text)
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MessageId::new(&s).ok_or_else(|| serde::de::Error::custom("an empty Message-ID"))
    }
}

/// Strip reply/forward/auto-reply prefixes and fold case and white space, so
/// "Undeliverable: Re: Budget 2027" and "Budget 2027" compare equal.
pub fn normalize_subject(s: &str) -> String {
    let mut s = s.trim();
    loop {
        let lower = s.to_lowercase();
        let mut stripped = false;
        // A prefix is a short run of letters (any script) and spaces before
        // a colon: "Re:", "AW:", "Automatic reply:", "Undeliverable:", "自動返信:".
        for sep in [':', '：'] {
            if let Some(pos) = lower.find(sep) {
                let head = &lower[..pos];
                if !head.is_empty()
                    && head.chars().count() <= 40
                    && head
                        .chars()
                        .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '[' || c == ']')
                {
                    s = s[pos + sep.len_utf8()..].trim_start();
                    stripped = true;
                    break;
                }
            }
        }
        if !stripped {
            break;
        }
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_compare_by_key_and_show_brackets() {
        let a = MessageId::new(" <AbC@Example.org> ").unwrap();
        let b = MessageId::new("abc@example.org").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "<AbC@Example.org>");
        assert_eq!(a.key(), "abc@example.org");
        assert_eq!(id_key("<AbC@Example.org>"), a.key());
        assert!(MessageId::new(" <> ").is_none());
        let set: std::collections::HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(
            serde_json::to_string(set.iter().next().unwrap()).unwrap(),
            "\"<AbC@Example.org>\""
        );
    }
}

/// The Subject as mail clients show it: mail-parser's reading (RFC 2047
/// encoded words, UTF-8 per RFC 6532), except that raw 8-bit bytes that
/// are not UTF-8 (a legacy charset nobody declared) are read as
/// Windows-1252, the superset of ISO-8859-1 that browsers and mail clients
/// assume for such text (WHATWG Encoding maps the "latin1" label to it),
/// instead of showing U+FFFD. Folded lines are unfolded. None without a
/// Subject header.
pub fn subject(msg: &mail_parser::Message<'_>) -> Option<String> {
    let parsed = msg.subject()?;
    if !parsed.contains('\u{FFFD}') {
        return Some(parsed.to_string());
    }
    let raw = msg
        .headers()
        .iter()
        .rev()
        .find(|h| h.name == mail_parser::HeaderName::Subject)
        .and_then(|h| {
            msg.raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
        })
        .filter(|b| std::str::from_utf8(b).is_err());
    let Some(raw) = raw else {
        return Some(parsed.to_string());
    };
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw);
    let unfolded: String = text.split(['\r', '\n']).collect();
    Some(unfolded.trim().to_string())
}

/// A header field's raw value (as [`crate::fingerprint::field`] reads it)
/// as a mail client shows it, for listings: RFC 2047 encoded words decoded
/// (by mail-parser, any charset it knows), and for `From`, `Sender`,
/// `Reply-To`, `To` and `Cc` each address as `Name <addr>` (or the bare
/// address), joined by ", ". A value that does not parse comes back as
/// it is. Not yet fit for a terminal: see [`printable`].
pub fn display_value(name: &str, raw: &str) -> String {
    let block = format!("{name}: {raw}\r\n\r\n");
    let Some(m) = MessageParser::new().parse_headers(block.as_bytes()) else {
        return raw.to_string();
    };
    let shown = if name.eq_ignore_ascii_case("subject") {
        m.subject().map(str::to_string)
    } else if ["from", "sender", "reply-to", "to", "cc"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        let value = m.header(name.to_string()).and_then(|v| v.as_address());
        value
            .map(|a| {
                a.iter()
                    .filter_map(|a| match (a.name(), a.address()) {
                        (Some(n), Some(addr)) if !n.trim().is_empty() => {
                            Some(format!("{} <{addr}>", n.trim()))
                        }
                        (_, Some(addr)) => Some(addr.to_string()),
                        (Some(n), None) if !n.trim().is_empty() => Some(n.trim().to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
    } else {
        m.header(name.to_string())
            .and_then(|v| v.as_text())
            .map(str::to_string)
    };
    shown.unwrap_or_else(|| raw.to_string())
}

/// Text from a message made safe to print on a terminal or in a log line
/// (one line): control characters (C0 with line breaks, NUL and ESC, DEL,
/// C1) become spaces, so no escape sequence reaches the terminal, and the
/// invisible bidirectional controls (U+061C, U+200E, U+200F,
/// U+202A..U+202E, U+2066..U+2069), which reorder what is shown after them
/// (CVE-2021-42574), are dropped.
pub fn printable(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            !matches!(
                c,
                '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            )
        })
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod display_tests {
    use super::{display_value, printable};

    /// Hand-written values, in the forms RFC 2047 section 8 shows.
    #[test]
    fn encoded_words_are_decoded_for_listings() {
        assert_eq!(
            display_value("Subject", "=?UTF-8?B?VW56dXN0ZWxsYmFyOiBHcsO8w59l?="),
            "Unzustellbar: Grüße"
        );
        assert_eq!(
            display_value(
                "Subject",
                "=?ISO-8859-1?Q?Abwesenheitsnotiz:_R=FCckkehr?= am Montag"
            ),
            "Abwesenheitsnotiz: Rückkehr am Montag"
        );
        assert_eq!(
            display_value(
                "From",
                "=?UTF-8?B?TWFpbCBEZWxpdmVyeSBTeXN0ZW0=?= <MAILER-DAEMON@mx.example.org>"
            ),
            "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
        );
        assert_eq!(
            display_value(
                "From",
                "MAILER-DAEMON@mx.example.org (Mail Delivery System)"
            ),
            "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
        );
        assert_eq!(
            display_value("From", "postmaster@example.org"),
            "postmaster@example.org"
        );
        // Plain text stays as it is.
        assert_eq!(display_value("Subject", "Out of office"), "Out of office");
    }

    #[test]
    fn printable_blanks_controls_and_drops_bidi_overrides() {
        // An escape sequence hidden in an encoded word, decoded.
        let decoded = display_value("Subject", "=?UTF-8?Q?=1B[31mred=1B[0m?= x");
        assert!(decoded.contains('\u{1b}'), "{decoded:?}");
        assert_eq!(printable(&decoded), " [31mred [0m x");
        assert_eq!(printable("a\r\nb\u{0}c\u{7f}d\u{9b}e"), "a  b c d e");
        assert_eq!(printable("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(printable("Grüße 自動返信"), "Grüße 自動返信");
    }
}

#[cfg(test)]
mod subject_tests {
    /// Hand-written: a Latin-1 subject sent raw, without RFC 2047 encoding
    /// (as old mailers and some autoresponders do), folded over two lines.
    #[test]
    fn raw_latin1_subjects_read_as_windows_1252() {
        let raw = b"From: a@example.org\r\nSubject: Abwesenheitsnotiz: R\xfcckkehr am\r\n Montag \x96 Gr\xfc\xdfe\r\n\r\nbody\r\n";
        let m = crate::recognise::PARSER.parse(&raw[..]).unwrap();
        assert_eq!(
            super::subject(&m).as_deref(),
            Some("Abwesenheitsnotiz: Rückkehr am Montag – Grüße")
        );
        // UTF-8 and encoded words are left to mail-parser.
        let raw = "Subject: =?utf-8?q?R=C3=BCckkehr?= \u{e9}t\u{e9}\r\n\r\nx".as_bytes();
        let m = crate::recognise::PARSER.parse(raw).unwrap();
        assert_eq!(super::subject(&m).as_deref(), Some("Rückkehr été"));
        let m = crate::recognise::PARSER
            .parse(&b"From: a@b.c\r\n\r\nx"[..])
            .unwrap();
        assert_eq!(super::subject(&m), None);
    }
}
