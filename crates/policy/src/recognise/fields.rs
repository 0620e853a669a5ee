//! Small, bounded parsers for the machine-readable parts of reports:
//! `message/delivery-status` (RFC 3464), `message/feedback-report`
//! (RFC 5965), header blocks such as `text/rfc822-headers`, and the
//! extraction of Message-IDs and addresses from free text.
//!
//! Pure functions over bytes/strings; no allocation beyond the fields kept.
//! Each parser caps how much it reads, so hostile input costs bounded work.

use crate::mail::MessageId;
use regex::Regex;
use std::sync::LazyLock;

/// At most this many bytes of a report part are read.
const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// One `Name: value` field (unfolded, value trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Parse a block of RFC 822-style fields into groups separated by blank
/// lines. Continuation lines (leading white space) are unfolded. Lines that
/// are not fields are skipped. Bytes that are not UTF-8 are replaced.
pub fn field_groups(bytes: &[u8]) -> Vec<Vec<Field>> {
    let bytes = &bytes[..bytes.len().min(MAX_FIELDS_BYTES)];
    let text = String::from_utf8_lossy(bytes);
    let mut groups: Vec<Vec<Field>> = Vec::new();
    let mut current: Vec<Field> = Vec::new();
    for raw_line in text.split('\n') {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = current.last_mut() {
                if last.value.len() < 4096 {
                    last.value.push(' ');
                    last.value.push_str(line.trim());
                }
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                current.push(Field {
                    name: name.to_string(),
                    value: value.trim().to_string(),
                });
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// The value of the first field called `name` (case-insensitive).
pub fn get<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
}

/// What a delivery-status report says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub reporting_mta: Option<String>,
    pub original_envelope_id: Option<String>,
    /// Message-ID fields some MTAs add to the per-message block.
    pub original_message_id: Option<MessageId>,
    pub recipients: Vec<RecipientStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientStatus {
    pub final_recipient: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

/// Strip an RFC 3464 address type (`rfc822; user@host`) and angle brackets.
pub fn typed_value(v: &str) -> String {
    let v = match v.split_once(';') {
        Some((_, rest)) => rest,
        None => v,
    };
    v.trim().trim_matches(['<', '>']).trim().to_string()
}

/// Parse a `message/delivery-status` body.
pub fn delivery_status(bytes: &[u8]) -> DeliveryStatus {
    let groups = field_groups(bytes);
    let mut ds = DeliveryStatus::default();
    for (i, g) in groups.iter().enumerate() {
        let per_recipient =
            get(g, "Final-Recipient").is_some() || get(g, "Original-Recipient").is_some();
        if let Some(v) = get(g, "Reporting-MTA") {
            ds.reporting_mta.get_or_insert_with(|| typed_value(v));
        }
        if let Some(v) = get(g, "Original-Envelope-Id") {
            ds.original_envelope_id.get_or_insert_with(|| v.to_string());
        }
        for name in ["X-Original-Message-ID", "Original-Message-ID"] {
            if let Some(v) = get(g, name).and_then(first_message_id) {
                ds.original_message_id.get_or_insert(v);
            }
        }
        if per_recipient || (i > 0 && get(g, "Status").is_some()) {
            ds.recipients.push(RecipientStatus {
                final_recipient: get(g, "Final-Recipient")
                    .or_else(|| get(g, "Original-Recipient"))
                    .map(typed_value)
                    .filter(|s| !s.is_empty()),
                action: get(g, "Action").map(|s| s.to_ascii_lowercase()),
                status: get(g, "Status")
                    .map(|s| s.split_whitespace().next().unwrap_or_default().to_string()),
                diagnostic: get(g, "Diagnostic-Code").map(typed_value_keep),
                remote_mta: get(g, "Remote-MTA").map(typed_value),
            });
        }
    }
    ds
}

/// Like [`typed_value`] but keeps angle brackets (diagnostics quote addresses).
fn typed_value_keep(v: &str) -> String {
    match v.split_once(';') {
        Some((t, rest)) if t.len() < 16 && !t.contains(' ') => rest.trim().to_string(),
        _ => v.trim().to_string(),
    }
}

/// What an ARF feedback report (RFC 5965) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackReport {
    pub feedback_type: Option<String>,
    pub user_agent: Option<String>,
    pub original_mail_from: Option<String>,
    pub original_rcpt_to: Vec<String>,
    pub reported_domain: Option<String>,
    pub source_ip: Option<String>,
}

pub fn feedback_report(bytes: &[u8]) -> FeedbackReport {
    let mut fr = FeedbackReport::default();
    for g in field_groups(bytes) {
        for f in &g {
            let n = f.name.to_ascii_lowercase();
            match n.as_str() {
                "feedback-type" => {
                    fr.feedback_type.get_or_insert_with(|| f.value.clone());
                }
                "user-agent" => {
                    fr.user_agent.get_or_insert_with(|| f.value.clone());
                }
                "original-mail-from" => {
                    fr.original_mail_from
                        .get_or_insert_with(|| typed_value(&f.value));
                }
                "original-rcpt-to" => fr.original_rcpt_to.push(typed_value(&f.value)),
                "reported-domain" => {
                    fr.reported_domain.get_or_insert_with(|| f.value.clone());
                }
                "source-ip" => {
                    fr.source_ip.get_or_insert_with(|| f.value.clone());
                }
                _ => {}
            }
        }
    }
    fr
}

static MSGID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<([^<>\s@]{1,250}@[^<>\s@]{1,250})>").expect("regex"));

/// The first `<local@domain>` in a header value, normalised with brackets.
pub fn first_message_id(v: &str) -> Option<MessageId> {
    if let Some(c) = MSGID.captures(v) {
        return MessageId::new(&c[1]);
    }
    // Some MTAs write the ID without brackets.
    let t = v.trim();
    if !t.is_empty() && !t.contains(char::is_whitespace) && t.contains('@') && t.len() <= 500 {
        return MessageId::new(t);
    }
    None
}

/// Every `<local@domain>` in a header value (References), in order.
pub fn all_message_ids(v: &str) -> Vec<MessageId> {
    MSGID
        .captures_iter(v)
        .take(64)
        .filter_map(|c| MessageId::new(&c[1]))
        .collect()
}

/// `Message-ID:` lines quoted in text: a copy of the original's headers
/// pasted into a bounce body, possibly indented or `>`-quoted, with the ID
/// on the same or the next line (`X-`/`Original-` prefixes allowed).
/// Returned in order of appearance, without duplicates.
///
/// A hand-written line scanner rather than a regex: it runs over up to
/// 128 KiB of every automated response, and this is several times faster.
pub fn quoted_message_ids(text: &[u8]) -> Vec<MessageId> {
    let mut out: Vec<MessageId> = Vec::new();
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if out.len() >= 32 {
            break;
        }
        let Some(rest) = message_id_field(line) else {
            continue;
        };
        let rest = trim_bytes(rest);
        let value = if rest.is_empty() {
            // Folded: the ID is on the next, indented line.
            match lines.peek() {
                Some(next) if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') => {
                    trim_bytes(next)
                }
                _ => continue,
            }
        } else {
            rest
        };
        if let Some(id) = parse_bare_id(value) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn strip_prefix_ci<'a>(b: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &b[prefix.len()..])
}

/// If `line` is a (quoted) `Message-ID:` field, the text after the colon.
fn message_id_field(line: &[u8]) -> Option<&[u8]> {
    let i = line
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'>' | b'|'))?;
    let mut b = &line[i..];
    if !matches!(b[0], b'm' | b'M' | b'x' | b'X' | b'o' | b'O') {
        return None;
    }
    if let Some(r) = strip_prefix_ci(b, b"x-") {
        b = r;
    }
    if let Some(r) = strip_prefix_ci(b, b"original-") {
        b = r;
    }
    let b = strip_prefix_ci(b, b"message-id")?;
    let j = b.iter().position(|&c| c != b' ' && c != b'\t')?;
    (b[j] == b':').then(|| &b[j + 1..])
}

/// `<local@domain>` or `local@domain` alone (trailing white space allowed).
fn parse_bare_id(v: &[u8]) -> Option<MessageId> {
    let v = v.strip_prefix(b"<").unwrap_or(v);
    let end = v
        .iter()
        .position(|&c| c == b'>' || c.is_ascii_whitespace() || c == b'<')
        .unwrap_or(v.len());
    let id = &v[..end];
    let tail = trim_bytes(&v[end..]);
    if !(tail.is_empty() || tail == b">") {
        return None;
    }
    let at = id.iter().position(|&c| c == b'@')?;
    let (local, domain) = (&id[..at], &id[at + 1..]);
    if local.is_empty() || domain.is_empty() || local.len() > 250 || domain.len() > 250 {
        return None;
    }
    if domain.contains(&b'@') {
        return None;
    }
    MessageId::new(&String::from_utf8_lossy(id))
}

/// IDs given in prose, as AOL's and SocketLabs' abuse reports do: "an
/// email message with the message-id of <id@host> received from ...".
pub fn message_id_of_phrase(text: &str) -> Vec<MessageId> {
    const NEEDLE: &[u8] = b"message-id of ";
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < 4 {
        let Some(i) = bytes[from..]
            .windows(NEEDLE.len())
            .position(|w| w.eq_ignore_ascii_case(NEEDLE))
        else {
            break;
        };
        let start = from + i + NEEDLE.len();
        let rest = &bytes[start..bytes.len().min(start + 520)];
        if rest.first() == Some(&b'<') {
            if let Some(end) = rest.iter().position(|&c| c == b'>') {
                if let Some(id) = parse_bare_id(&rest[..=end]) {
                    out.push(id);
                }
            }
        }
        from = start;
    }
    out
}

/// Addresses that NDR texts list as failed recipients: lines such as
/// `<user@host>: host mx said: ...` (Postfix, qmail), an address alone on
/// an indented line (Exim, Sendmail transcripts), or an address alone at
/// the start of a line followed by a colon, the SMTP error on the next line
/// (1&1/IONOS "Mail delivery failed": `user@host:` then `SMTP error from
/// remote server ...`; Sisimai's lhost-einsundeins-03, rhost-franceptt-04).
static TEXT_RECIPIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?m)^(?:<([^<>\s@"]{1,128}@[^<>\s@]{1,200})>:|[ \t]+<?([^<>\s@"():]{1,128}@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,24})>?[ \t]*\r?$|([^<>\s@"():]{1,128}@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,24}):[ \t]*\r?$)"#,
    )
    .expect("regex")
});

pub fn text_recipients(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in TEXT_RECIPIENT.captures_iter(text).take(16) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)) {
            let a = m.as_str().to_ascii_lowercase();
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// Is `address` a TMDA confirmation address, the one a TMDA challenge asks
/// the sender to reply to? TMDA (`Cookie.make_confirm_address`) builds it
/// as `<local><d>confirm<d>[<keyword>.]<time>.<pid>.<hmac>@<domain>`, with
/// `<d>` its recipient delimiter (`-` or `+`), `<time>` Unix seconds,
/// `<pid>` a process number and `<hmac>` a hex (newer: base32) digest;
/// releases up to 1.0 put a keyword (`accept`) before the cookie. Only
/// challenges come from or ask for a reply to such an address; TMDA's
/// `-dated-` and `-keyword-` addresses sit on its users' ordinary mail.
/// `address` is a bare address, any case.
pub fn is_tmda_confirm_address(address: &str) -> bool {
    static TMDA_CONFIRM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)^[^@\s]+[-+]confirm[-+](?:[a-z]+\.)?[0-9]{9,11}\.[0-9]+\.[0-9a-z]{6,}@[^@\s]+$",
        )
        .expect("valid regex")
    });
    address.len() <= 320 && TMDA_CONFIRM.is_match(address.trim())
}

#[cfg(test)]
mod tests {
    // Hand-written unit cases (not real messages): the golden tests cover
    // real reports.
    use super::*;

    #[test]
    fn tmda_confirm_addresses_and_no_others() {
        // Shapes from TMDA's Cookie.make_confirm_address (hand-written
        // addresses, not real ones).
        assert!(is_tmda_confirm_address(
            "jason-confirm-1018536046.12345.7b34c1@mastaler.example"
        ));
        assert!(is_tmda_confirm_address(
            "Kim+confirm+1700000000.4242.a1b2c3d4e5@example.org"
        ));
        assert!(is_tmda_confirm_address(
            "kim-confirm-accept.1018536046.12345.7b34c1@example.org"
        ));
        // TMDA's other tagged addresses are on its users' ordinary mail.
        assert!(!is_tmda_confirm_address(
            "mharrell-dated-1040239658.d63f06@charon.example"
        ));
        assert!(!is_tmda_confirm_address("lists-sender-14a37a@example.com"));
        // Order confirmations and the like are no cookie.
        assert!(!is_tmda_confirm_address("order-confirm-2024@shop.example"));
        assert!(!is_tmda_confirm_address("confirm@example.org"));
        assert!(!is_tmda_confirm_address(
            "kim-confirm-1018536046.12345.7b34c1"
        ));
    }

    #[test]
    fn delivery_status_blocks() {
        let ds = delivery_status(
            b"Reporting-MTA: dns; mx.example.org\r\nArrival-Date: x\r\n\r\n\
Final-Recipient: rfc822; <bob@example.net>\r\nAction: failed\r\nStatus: 5.1.1 (bad)\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>:\r\n  user unknown\r\n",
        );
        assert_eq!(ds.reporting_mta.as_deref(), Some("mx.example.org"));
        assert_eq!(ds.recipients.len(), 1);
        let r = &ds.recipients[0];
        assert_eq!(r.final_recipient.as_deref(), Some("bob@example.net"));
        assert_eq!(r.action.as_deref(), Some("failed"));
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("550 5.1.1 <bob@example.net>: user unknown")
        );
    }

    #[test]
    fn quoted_ids_same_or_next_line() {
        let t = "blah\n  Message-Id: <a@b.c>\n> Message-ID:\n   <x.y@z>\nReferences: <no@no>\n";
        assert_eq!(quoted_message_ids(t.as_bytes()), vec!["<a@b.c>", "<x.y@z>"]);
        let t = "X-Original-Message-ID: <q@r>\r\nMessage-ID: not an id here\r\n";
        assert_eq!(quoted_message_ids(t.as_bytes()), vec!["<q@r>"]);
        assert_eq!(first_message_id(" <a@b> junk"), "<a@b>".parse().ok());
        assert_eq!(first_message_id("a@b"), "<a@b>".parse().ok());
        assert_eq!(first_message_id("no id here"), None);
    }

    #[test]
    fn recipients_from_ndr_text() {
        let t = "<bob@example.net>: host mx said: 550\n    carol@example.org\n  not an address line x@y\n";
        assert_eq!(
            text_recipients(t),
            vec!["bob@example.net", "carol@example.org"]
        );
        // 1&1/IONOS: the address at the start of a line, a colon, the SMTP
        // error below; a header line or prose naming an address is not one.
        let t = "failed:\n\ndave@example.com:\nSMTP error from remote server for RCPT TO command\nTo: eve@example.com\nwrite to frank@example.com: soon\n";
        assert_eq!(text_recipients(t), vec!["dave@example.com"]);
    }
}
