//! How a message is recognised again after it moved, when neither its UID
//! (which changes with every move) nor its Message-ID (missing, malformed
//! or shared by several messages) can be trusted: a fingerprint of the raw
//! values of its `Date`, `From`, `Subject` and `Message-ID` header fields
//! and its size, read the same way on both sides of a move.
//!
//! Pure: the fetch items are named here, the bytes come from the IMAP
//! layer.

use sha2::{Digest, Sha256};

/// The header fields a fingerprint covers, in the order they are hashed.
pub const FIELDS: [&str; 4] = ["DATE", "FROM", "SUBJECT", "MESSAGE-ID"];

/// The UID FETCH items that give everything [`Identity::from_fetch`]
/// reads: size, flags, arrival time and the fingerprinted header fields
/// (`PEEK`, so `\Seen` is left alone).
/// `List-Id` comes along for the allow-list ([`crate::keep`]); it is not
/// part of the fingerprint.
pub const FETCH_ITEMS: &str =
    "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID LIST-ID)])";

/// The raw header fields of a header block: (lowercased name, value with
/// folding removed and surrounding white space trimmed), in order. Bytes
/// that are not UTF-8 are kept as they are (the value is bytes).
pub fn raw_fields(block: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = out.last_mut() {
                v.push(b' ');
                v.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        out.push((name, line[colon + 1..].trim_ascii().to_vec()));
    }
    out
}

/// The fingerprint of a message from its header block (at least the
/// [`FIELDS`]; other fields are ignored) and its size in octets
/// (RFC822.SIZE): 32 hex digits (the first 128 bits of a SHA-256). Two
/// copies of one message have the same fingerprint in any mailbox;
/// messages that differ in any of these values or in size do not.
pub fn fingerprint(block: &[u8], size: u32) -> String {
    let fields = raw_fields(block);
    let mut h = Sha256::new();
    for name in FIELDS {
        h.update(name.as_bytes());
        h.update(b":");
        for (n, v) in &fields {
            if n.eq_ignore_ascii_case(name) {
                h.update(v);
                h.update(b"\n");
            }
        }
        h.update(b"\x00");
    }
    h.update(size.to_string().as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first value of a header field, as text (lossy), if present and not
/// empty.
pub fn field(block: &[u8], name: &str) -> Option<String> {
    raw_fields(block)
        .into_iter()
        .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// A message as the fingerprint fetch shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub fingerprint: String,
    /// The raw value of the first Message-ID field (which may lack `@` or
    /// angle brackets), `None` when there is none.
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// The Date header field as written.
    pub date: Option<String>,
    /// The List-Id header field as written.
    pub list_id: Option<String>,
    /// INTERNALDATE as Unix seconds (0 when the server sent none).
    pub arrived: i64,
    /// Flags and keywords, as the server spells them.
    pub flags: Vec<String>,
    pub size: u32,
}

impl Identity {
    /// From the parts of one FETCH response to [`FETCH_ITEMS`].
    pub fn new(uid: u32, header: &[u8], size: u32, arrived: i64, flags: Vec<String>) -> Identity {
        Identity {
            uid,
            fingerprint: fingerprint(header, size),
            message_id: field(header, "message-id"),
            from: field(header, "from"),
            subject: field(header, "subject"),
            date: field(header, "date"),
            list_id: field(header, "list-id"),
            arrived,
            flags,
            size,
        }
    }

    /// The Subject as a mail client shows it (RFC 2047 encoded words
    /// decoded, see [`crate::mail::display_value`]), for listings.
    pub fn shown_subject(&self) -> Option<String> {
        self.subject
            .as_deref()
            .map(|v| crate::mail::display_value("Subject", v))
    }

    /// The From field as a mail client shows it (`Name <addr>`, encoded
    /// words decoded), for listings.
    pub fn shown_from(&self) -> Option<String> {
        self.from
            .as_deref()
            .map(|v| crate::mail::display_value("From", v))
    }

    /// Does it carry this keyword (case-insensitive, RFC 3501 section 2.3.2)?
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// A Message-ID as a comparison key: without angle brackets and white
/// space, lowercased; the same for `<a@b>`, `a@b` and `<A@B>`, and
/// defined for IDs without `@` too.
pub fn id_key(id: &str) -> String {
    crate::mail::id_key(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-written header blocks (not real messages).
    const A: &[u8] = b"Date: Mon, 30 Nov 2026 01:00:00 +0000\r\nFrom: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n Mail\r\n\r\n";

    #[test]
    fn same_message_same_fingerprint_any_field_order() {
        let reordered = b"Subject: Undelivered Mail\r\nFrom: MAILER-DAEMON@mx.example\r\nDate: Mon, 30 Nov 2026 01:00:00 +0000\r\n\r\n";
        assert_eq!(fingerprint(A, 100), fingerprint(reordered, 100));
        assert_eq!(fingerprint(A, 100).len(), 32);
    }

    #[test]
    fn size_and_values_tell_messages_apart() {
        assert_ne!(fingerprint(A, 100), fingerprint(A, 101));
        let other = b"Date: Mon, 30 Nov 2026 01:00:01 +0000\r\nFrom: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\n\r\n";
        assert_ne!(fingerprint(A, 100), fingerprint(other, 100));
        // Two Message-ID fields differ from one.
        let one = b"Message-ID: <a@b>\r\n";
        let two = b"Message-ID: <a@b>\r\nMessage-ID: <c@d>\r\n";
        assert_ne!(fingerprint(one, 5), fingerprint(two, 5));
    }

    #[test]
    fn identity_reads_raw_values() {
        let h = b"Message-ID: no-at-sign\r\nFrom: x\r\n\r\n";
        let i = Identity::new(3, h, 10, 0, vec!["$NotBackscatter".into()]);
        assert_eq!(i.message_id.as_deref(), Some("no-at-sign"));
        assert_eq!(i.subject, None);
        assert!(i.has_flag("$notbackscatter"));
        assert_eq!(id_key("<A@B>"), id_key("a@b"));
    }
}
