//! Classifying a message without downloading it: from a message's selected
//! header fields and its MIME structure (IMAP `BODYSTRUCTURE`), decide which
//! few parts to fetch, and rebuild from those pieces a small MIME message
//! that the classifier reads exactly as it reads a whole one.
//!
//! Pure: the IMAP layer fetches; this module only plans and assembles.
//! A report part (delivery-status, feedback, read receipt) and attached
//! original headers are fetched whole (capped); of the text only the start;
//! an attached `message/rfc822` is represented by the envelope the server
//! already sent in BODYSTRUCTURE; attachments are never fetched.

use std::collections::HashMap;

/// How much of the first text part is fetched.
pub const TEXT_HEAD: u32 = 4096;
/// Cap for report parts and attached headers.
pub const PART_CAP: u32 = 16384;

/// The header fields the classifier reads (plus the vendor headers of the
/// lexicon, added by [`header_fields`]).
const BASE_FIELDS: &[&str] = &[
    "From",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Return-Path",
    "Auto-Submitted",
    "Precedence",
    "X-Failed-Recipients",
    "X-Auto-Response-Suppress",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "List-Id",
];

/// The `HEADER.FIELDS (...)` list: the base fields and every header name
/// the lexicon knows.
pub fn header_fields() -> Vec<String> {
    let mut v: Vec<String> = BASE_FIELDS.iter().map(|s| s.to_string()).collect();
    for n in crate::lexicon::LEXICON.header_names() {
        if !v.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
            v.push(n);
        }
    }
    v
}

/// Is the top-level Content-Type (in these header fields) a
/// multipart/mixed, where a report part could sit without any header
/// saying so?
pub fn may_hide_a_report(header: &[u8]) -> bool {
    let text = String::from_utf8_lossy(header).to_ascii_lowercase();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(v) = l.strip_prefix("content-type:") {
            let mut v = v.to_string();
            while let Some(n) = lines.peek() {
                if n.starts_with([' ', '\t']) {
                    v.push_str(n);
                    lines.next();
                } else {
                    break;
                }
            }
            return v.trim_start().starts_with("multipart/mixed");
        }
    }
    false
}

/// An envelope (RFC 3501 §7.4.2) of an attached message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// One node of a message's MIME structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// IMAP part number ("1", "2.1"); "" for the root of a multipart.
    pub path: String,
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub encoding: String,
    pub octets: u32,
    /// For `message/rfc822` and `message/global`.
    pub envelope: Option<Envelope>,
    pub children: Vec<Part>,
}

impl Part {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, t: &str, s: &str) -> bool {
        // A part without a usable type is text/plain (RFC 2045 §5.2).
        if self.ctype.is_empty() {
            return t == "text" && s == "plain";
        }
        self.ctype.eq_ignore_ascii_case(t) && self.subtype.eq_ignore_ascii_case(s)
    }

    fn is_multipart(&self) -> bool {
        self.ctype.eq_ignore_ascii_case("multipart")
    }

    /// Leaves in order (a multipart's children, depth first). A nested
    /// message's own parts are not descended into.
    pub fn leaves(&self) -> Vec<&Part> {
        let mut out = Vec::new();
        fn walk<'a>(p: &'a Part, out: &mut Vec<&'a Part>) {
            // A multipart without a boundary is one opaque part: servers
            // cannot split it either (Dovecot shows one empty child).
            if p.is_multipart() && !p.children.is_empty() && p.param("boundary").is_some() {
                for c in &p.children {
                    walk(c, out);
                }
            } else {
                out.push(p);
            }
        }
        walk(self, &mut out);
        out
    }
}

/// One fetch item: `BODY.PEEK[path]<0.max>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Section {
    pub path: String,
    pub max: u32,
}

impl Section {
    pub fn fetch_item(&self) -> String {
        format!("BODY.PEEK[{}]<0.{}>", self.path, self.max)
    }
}

/// The parts worth fetching for a candidate: report parts, attached
/// headers, and the start of the first text part (plain preferred).
pub fn sections_to_fetch(root: &Part) -> Vec<Section> {
    let leaves = root.leaves();
    let mut out = Vec::new();
    for p in &leaves {
        let path = if p.path.is_empty() {
            "1".to_string()
        } else {
            p.path.clone()
        };
        let report = p.is("message", "delivery-status")
            || p.is("message", "global-delivery-status")
            || p.is("message", "feedback-report")
            || p.is("message", "disposition-notification")
            || p.is("text", "rfc822-headers")
            || p.is("text", "rfc822-header")
            // An original returned as message/partial (bigfoot's NDRs):
            // the server gives no envelope for it, so its bytes are fetched.
            || p.is("message", "partial");
        // Fixed caps, not the part's size, so that messages of the same
        // shape share one FETCH command.
        if report {
            out.push(Section {
                path,
                max: PART_CAP,
            });
        }
    }
    let text = leaves
        .iter()
        .find(|p| p.is("text", "plain"))
        .or_else(|| leaves.iter().find(|p| p.is("text", "html")))
        .or_else(|| {
            // A multipart whose boundary the server could not read either:
            // its raw bytes are the text.
            leaves
                .iter()
                .find(|p| p.is_multipart() && !p.path.is_empty())
        })
        .or_else(|| {
            // A single-part message of an unknown type: its body is text.
            (leaves.len() == 1 && !leaves[0].ctype.eq_ignore_ascii_case("message"))
                .then(|| &leaves[0])
        });
    // No structured copy of the original (message/rfc822, rfc822-headers):
    // old MTAs paste the original's headers as a part without MIME headers,
    // which the server then reads as that part's MIME header. Fetch those.
    let structured_original = leaves.iter().any(|p| {
        p.envelope.is_some() || p.is("text", "rfc822-headers") || p.is("text", "rfc822-header")
    });
    if !structured_original && root.is_multipart() {
        for p in leaves.iter().filter(|p| p.is("text", "plain")) {
            if !p.path.is_empty() {
                out.push(Section {
                    path: format!("{}.MIME", p.path),
                    max: TEXT_HEAD,
                });
            }
        }
    }
    if let Some(p) = text {
        let path = if p.path.is_empty() {
            "1".to_string()
        } else {
            p.path.clone()
        };
        if !out.iter().any(|s: &Section| s.path == path) {
            out.push(Section {
                path,
                max: TEXT_HEAD,
            });
        }
    }
    out
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    // Values from the server never carry line breaks into our headers.
    let v: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn content_type_line(p: &Part) -> String {
    let mut s = if p.ctype.is_empty() {
        "text/plain".to_string()
    } else {
        format!("{}/{}", p.ctype, p.subtype)
    };
    for (k, v) in &p.params {
        if k.eq_ignore_ascii_case("boundary") {
            continue;
        }
        s.push_str(&format!("; {}=\"{}\"", k, v.replace(['"', '\\'], "")));
    }
    s
}

/// Rebuild a message from its header fields, structure and fetched
/// sections (keyed by part path). The result is what the classifier reads.
pub fn build(header: &[u8], root: &Part, fetched: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 4096);
    // The header block, without its terminating blank line.
    let mut h = header;
    while h.ends_with(b"\r\n") || h.ends_with(b"\n") {
        h = &h[..h.len() - if h.ends_with(b"\r\n") { 2 } else { 1 }];
    }
    out.extend_from_slice(h);
    out.extend_from_slice(b"\r\n\r\n");
    if !root.is_multipart() || root.children.is_empty() {
        if let Some(b) = fetched.get("1").or_else(|| fetched.get(&root.path)) {
            out.extend_from_slice(b);
        }
        return out;
    }
    let boundary = root
        .param("boundary")
        .map(str::to_string)
        .unwrap_or_else(|| "=_backscatter_skeleton".into());
    for p in root.leaves() {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        push_header(&mut out, "Content-Type", &content_type_line(p));
        if !p.encoding.is_empty() && !p.ctype.eq_ignore_ascii_case("message") {
            push_header(&mut out, "Content-Transfer-Encoding", &p.encoding);
        }
        out.extend_from_slice(b"\r\n");
        if let Some(env) = &p.envelope {
            // An attached message: its envelope as headers.
            if let Some(v) = &env.message_id {
                push_header(&mut out, "Message-ID", v);
            }
            if !env.from.is_empty() {
                push_header(&mut out, "From", &env.from.join(", "));
            }
            if !env.to.is_empty() {
                push_header(&mut out, "To", &env.to.join(", "));
            }
            if !env.cc.is_empty() {
                push_header(&mut out, "Cc", &env.cc.join(", "));
            }
            if let Some(v) = &env.subject {
                push_header(&mut out, "Subject", v);
            }
            if let Some(v) = &env.date {
                push_header(&mut out, "Date", v);
            }
            if let Some(v) = &env.in_reply_to {
                push_header(&mut out, "In-Reply-To", v);
            }
            out.extend_from_slice(b"\r\n");
        } else {
            // A part's own MIME header (pasted original headers), as text.
            if let Some(h) = fetched.get(&format!("{}.MIME", p.path)) {
                out.extend_from_slice(h);
            }
            if let Some(b) = fetched.get(&p.path) {
                out.extend_from_slice(b);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

#[cfg(test)]
mod tests {
    // Hand-written structures; the Dovecot tests compare skeleton verdicts
    // with whole-message verdicts on the real corpus.
    use super::*;

    fn leaf(path: &str, t: &str, s: &str, octets: u32) -> Part {
        Part {
            path: path.into(),
            ctype: t.into(),
            subtype: s.into(),
            encoding: "7bit".into(),
            octets,
            ..Part::default()
        }
    }

    fn dsn() -> Part {
        let mut orig = leaf("3", "message", "rfc822", 900);
        orig.envelope = Some(Envelope {
            message_id: Some("<orig@example.org>".into()),
            to: vec!["bob@example.net".into()],
            subject: Some("Budget".into()),
            ..Envelope::default()
        });
        Part {
            path: String::new(),
            ctype: "multipart".into(),
            subtype: "report".into(),
            params: vec![
                ("report-type".into(), "delivery-status".into()),
                ("boundary".into(), "BB".into()),
            ],
            children: vec![
                leaf("1", "text", "plain", 20000),
                leaf("2", "message", "delivery-status", 300),
                orig,
            ],
            ..Part::default()
        }
    }

    #[test]
    fn plans_report_parts_and_text_head_only() {
        let s = sections_to_fetch(&dsn());
        assert_eq!(
            s,
            vec![
                Section {
                    path: "2".into(),
                    max: PART_CAP
                },
                Section {
                    path: "1".into(),
                    max: TEXT_HEAD
                }
            ]
        );
        assert_eq!(s[1].fetch_item(), "BODY.PEEK[1]<0.4096>");
    }

    #[test]
    fn rebuilt_message_classifies_like_a_bounce() {
        let header = b"From: MAILER-DAEMON@mx.example.net\r\nReturn-Path: <>\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n";
        let mut f = HashMap::new();
        f.insert(
            "1".to_string(),
            b"This is the mail system at host mx.example.net.".to_vec(),
        );
        f.insert(
            "2".to_string(),
            b"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n".to_vec(),
        );
        let m = build(header, &dsn(), &f);
        let sent = crate::SentIndex::new();
        let v = crate::classify(
            &m,
            &crate::Context {
                sent: &sent,
                own_addresses: &[],
            },
        );
        assert_eq!(v.kind, Some(crate::Kind::Bounce), "{:?}", v.reasons);
        assert_eq!(v.original.message_id.as_deref(), Some("<orig@example.org>"));
        assert_eq!(v.original.recipients, vec!["bob@example.net"]);
    }
}
