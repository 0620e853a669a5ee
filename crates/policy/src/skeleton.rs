//! A message's MIME structure (IMAP `BODYSTRUCTURE`, RFC 3501 §7.4.2) as
//! the fetch plan ([`crate::plan`]) uses it: for a long message with no
//! sign from the sending side in its headers, the structure tells whether a
//! report part hides inside. [`build`] renders header and structure as a
//! bodiless MIME message, which [`crate::classify::may_be_automated`] reads
//! as it reads a whole one.
//!
//! Pure: the IMAP layer fetches and converts (`backscatter::imap::structure`).

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

/// Render a message from its header and its structure, without bodies: each
/// leaf part as its MIME header, an attached message as the envelope the
/// server sent. The result is input for
/// [`crate::classify::may_be_automated`].
pub fn build(header: &[u8], root: &Part) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 4096);
    // The header block, without its terminating blank line.
    let mut h = header;
    while h.ends_with(b"\r\n") || h.ends_with(b"\n") {
        h = &h[..h.len() - if h.ends_with(b"\r\n") { 2 } else { 1 }];
    }
    out.extend_from_slice(h);
    out.extend_from_slice(b"\r\n\r\n");
    if !root.is_multipart() || root.children.is_empty() {
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
    // Hand-written structures; the Dovecot equivalence test compares the
    // sweep's verdicts with whole-message verdicts on the real corpus.
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
    fn a_report_inside_mixed_is_seen_from_the_structure() {
        let header = b"From: Kim <kim@example.net>\r\nSubject: FW: photos\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n";
        let mut root = dsn();
        root.subtype = "mixed".into();
        assert!(crate::classify::may_be_automated(&build(header, &root)));
        root.children.truncate(1);
        assert!(!crate::classify::may_be_automated(&build(header, &root)));
    }
}
