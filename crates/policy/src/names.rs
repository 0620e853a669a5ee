//! Mailbox names as the user writes them, and as the server wants them.
//!
//! Users write `quarantine = "Rückläufer/Spam"` or `sent = ["Sent"]`. A
//! server may keep every personal folder under a prefix (Cyrus with
//! Debian's defaults and Courier use `INBOX.`, announced by NAMESPACE,
//! RFC 2342), separate levels with its own hierarchy delimiter (`.` or
//! `/`), and wants non-ASCII names in modified UTF-7 on the wire
//! (RFC 3501 §5.1.3). Sieve, on the other hand, takes the same name in
//! UTF-8 (RFC 5228 §2.7.2; Dovecot and Cyrus map it).
//!
//! This module is pure: [`resolve`] turns a configured name into the
//! server's name (UTF-8), [`encode`] / [`decode`] convert between UTF-8 and
//! modified UTF-7, [`parse_namespace`] reads a NAMESPACE response, and
//! [`guess_namespace`] learns the prefix from LIST where NAMESPACE is
//! missing or refused.
//! The codec is our own (about 60 lines, no dependency): the `utf7-imap`
//! crate panics on malformed names a server may list, and passes DEL
//! through unencoded.

/// The personal namespace a mailbox name is resolved against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// The personal prefix, delimiter included: `""` (Dovecot's default,
    /// UW imapd) or `"INBOX."` (Cyrus, Courier).
    pub prefix: String,
    /// The hierarchy delimiter, if the server has hierarchy.
    pub delimiter: Option<char>,
    /// The prefixes of the other users' and shared namespaces
    /// (`"#shared."`, `"Other Users/"`): a name under one of them is
    /// left alone.
    pub others: Vec<String>,
}

/// Is `name` INBOX (case-insensitive, RFC 3501 §5.1)?
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// The server's name (UTF-8) for a mailbox the user named `configured`.
///
/// - INBOX (any case) is `INBOX`;
/// - `/` in the configured name is a hierarchy level, written with the
///   server's delimiter;
/// - a name under the personal prefix (compared case-insensitively for its
///   INBOX part) or under another namespace is kept; any other name gets
///   the personal prefix: with prefix `INBOX.`, `Backscatter` becomes
///   `INBOX.Backscatter` and `Sent` becomes `INBOX.Sent`.
///
/// Examples: with `(("" "/"))`, `Rückläufer/Spam` stays; with
/// `(("INBOX." "."))`, it becomes `INBOX.Rückläufer.Spam`.
pub fn resolve(configured: &str, ns: &Namespace) -> String {
    if is_inbox(configured) {
        return "INBOX".into();
    }
    let mut name = match ns.delimiter {
        Some(d) if d != '/' => configured.replace('/', &d.to_string()),
        _ => configured.to_string(),
    };
    // INBOX's children keep INBOX's canonical spelling.
    if let Some(d) = ns.delimiter {
        let head = name
            .get(..5)
            .is_some_and(|h| h.eq_ignore_ascii_case("INBOX"));
        if head && name[5..].starts_with(d) {
            name.replace_range(..5, "INBOX");
        }
    }
    if ns.prefix.is_empty() || under(&name, &ns.prefix) {
        return name;
    }
    if ns.others.iter().any(|p| !p.is_empty() && under(&name, p)) {
        return name;
    }
    format!("{}{}", ns.prefix, name)
}

/// The personal namespace of a server that does not answer NAMESPACE
/// (RFC 2342): its hierarchy `delimiter` (from `LIST "" ""`), and the
/// selectable top-level mailboxes (from `LIST "" "%"`, names in UTF-8)
/// with `inbox_children`, whether `LIST "" "INBOX<delimiter>%"` showed
/// any.
///
/// A server whose only selectable top-level mailbox is INBOX while INBOX
/// has children keeps personal folders under `INBOX<delimiter>` (Cyrus
/// without `altnamespace`, Courier): that is the prefix. Anything else
/// (folders beside INBOX, or an INBOX without children, where nothing
/// can be told) is taken as no prefix, as before NAMESPACE existed.
/// Other users' and shared roots (`user`, `#shared`) are `\Noselect` and
/// are not passed here.
pub fn guess_namespace(
    delimiter: Option<char>,
    top_level: &[String],
    inbox_children: bool,
) -> Namespace {
    let only_inbox = !top_level.is_empty() && top_level.iter().all(|n| is_inbox(n));
    let prefix = match delimiter {
        Some(d) if only_inbox && inbox_children => format!("INBOX{d}"),
        _ => String::new(),
    };
    Namespace {
        prefix,
        delimiter,
        others: Vec::new(),
    }
}

/// Does `name` start with namespace `prefix` (an `INBOX` head compared
/// case-insensitively)? A prefix without its delimiter (`INBOX`) also
/// covers the name itself.
fn under(name: &str, prefix: &str) -> bool {
    if name.starts_with(prefix) || name == prefix.trim_end_matches(['.', '/']) {
        return true;
    }
    prefix
        .get(..5)
        .is_some_and(|h| h.eq_ignore_ascii_case("INBOX"))
        && name
            .get(..prefix.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// Modified UTF-7 (RFC 3501 §5.1.3) of a UTF-8 name: printable ASCII
/// stays (with `&` as `&-`), every other run becomes `&` + base64 of its
/// UTF-16BE with `,` for `/` and no padding + `-`.
/// `Éléments envoyés` → `&AMk-l&AOk-ments envoy&AOk-s`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn flush(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digits = chunk.len() + 1;
        for i in 0..digits {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.push('-');
    run.clear();
}

/// UTF-8 of a modified UTF-7 name, or `None` if it is not valid modified
/// UTF-7 (a stray `&`, a bad base64 digit, an unpaired surrogate, raw
/// non-ASCII). Callers show such a name as the server sent it.
pub fn decode(wire: &str) -> Option<String> {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(i) = rest.find('&') {
        let head = &rest[..i];
        if !head.is_ascii() {
            return None;
        }
        out.push_str(head);
        let after = &rest[i + 1..];
        let end = after.find('-')?;
        let b64 = &after[..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut bytes = Vec::new();
            for c in b64.bytes() {
                let v = B64.iter().position(|&x| x == c)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            if bytes.len() % 2 != 0 || bits != 0 || nbits >= 6 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    if !rest.is_ascii() {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

/// A name from the server (a LIST reply) in UTF-8; one that is not valid
/// modified UTF-7 is kept as sent.
pub fn decode_lossless(wire: &str) -> String {
    decode(wire).unwrap_or_else(|| wire.to_string())
}

/// The personal namespace from a `* NAMESPACE` response line (RFC 2342):
/// `* NAMESPACE (("INBOX." ".")) NIL (("#shared." "."))`. The first
/// personal namespace is used; `None` if the line is not a NAMESPACE
/// response or cannot be read (a literal, a missing parenthesis).
pub fn parse_namespace(line: &str) -> Option<Namespace> {
    let rest = line.trim_end_matches(['\r', '\n']);
    let rest = rest.strip_prefix("* ")?;
    let (word, rest) = rest.split_once(' ')?;
    if !word.eq_ignore_ascii_case("NAMESPACE") {
        return None;
    }
    let mut p = Parser {
        s: rest.as_bytes(),
        i: 0,
    };
    let personal = p.namespace_list()?;
    let mut others = Vec::new();
    for _ in 0..2 {
        p.skip_space();
        if let Some(list) = p.namespace_list() {
            others.extend(list.into_iter().map(|(prefix, _)| prefix));
        }
    }
    let (prefix, delimiter) = personal.into_iter().next().unwrap_or_default();
    Some(Namespace {
        prefix,
        delimiter,
        others,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn nil(&mut self) -> bool {
        if self.s.len() >= self.i + 3 && self.s[self.i..self.i + 3].eq_ignore_ascii_case(b"NIL") {
            self.i += 3;
            true
        } else {
            false
        }
    }

    /// `NIL` (an empty list) or `((prefix delim ext*)...)`.
    fn namespace_list(&mut self) -> Option<Vec<(String, Option<char>)>> {
        if self.nil() {
            return Some(Vec::new());
        }
        self.eat(b'(')?;
        let mut v = Vec::new();
        while self.eat(b'(').is_some() {
            let prefix = decode_lossless(&self.quoted()?);
            self.skip_space();
            let delim = if self.nil() {
                None
            } else {
                self.quoted()?.chars().next()
            };
            // Extensions (RFC 2342 §5): skip to the closing parenthesis.
            let mut depth = 1;
            while depth > 0 {
                match self.s.get(self.i)? {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    b'"' => {
                        self.quoted()?;
                        continue;
                    }
                    _ => {}
                }
                self.i += 1;
            }
            v.push((prefix, delim));
            self.skip_space();
        }
        self.eat(b')')?;
        Some(v)
    }

    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    out.push(*self.s.get(self.i + 1)?);
                    self.i += 2;
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(prefix: &str, d: char) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter: Some(d),
            others: vec!["#shared.".into(), "Other Users/".into()],
        }
    }

    #[test]
    fn cyrus_and_courier_prefix_everything_with_inbox_dot() {
        let c = ns("INBOX.", '.');
        assert_eq!(resolve("Backscatter", &c), "INBOX.Backscatter");
        assert_eq!(resolve("Sent", &c), "INBOX.Sent");
        assert_eq!(resolve("INBOX", &c), "INBOX");
        assert_eq!(resolve("inbox", &c), "INBOX");
        assert_eq!(resolve("INBOX.Sent", &c), "INBOX.Sent");
        assert_eq!(resolve("inbox.Sent", &c), "INBOX.Sent");
        assert_eq!(resolve("INBOX/Sent", &c), "INBOX.Sent");
        assert_eq!(resolve("Rückläufer/Spam", &c), "INBOX.Rückläufer.Spam");
        assert_eq!(resolve("#shared.team", &c), "#shared.team");
        // A folder merely starting with the letters INBOX is not under it.
        assert_eq!(resolve("Inboxes", &c), "INBOX.Inboxes");
        // Multi-byte characters where INBOX's letters would be.
        assert_eq!(resolve("a日本x", &c), "INBOX.a日本x");
    }

    #[test]
    fn dovecot_and_uw_keep_names_and_map_the_delimiter() {
        assert_eq!(resolve("Backscatter", &ns("", '/')), "Backscatter");
        assert_eq!(resolve("Rückläufer/Spam", &ns("", '/')), "Rückläufer/Spam");
        assert_eq!(resolve("Rückläufer/Spam", &ns("", '.')), "Rückläufer.Spam");
        assert_eq!(resolve("Sent", &Namespace::default()), "Sent");
        assert_eq!(resolve("Inbox", &Namespace::default()), "INBOX");
        // Other Users/ is another namespace: left alone.
        assert_eq!(
            resolve("Other Users/bob/x", &ns("", '/')),
            "Other Users/bob/x"
        );
    }

    #[test]
    fn without_namespace_the_inbox_prefix_is_learnt_from_the_folders() {
        let top = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Cyrus / Courier: INBOX alone at the top, with children.
        let n = guess_namespace(Some('.'), &top(&["INBOX"]), true);
        assert_eq!(n.prefix, "INBOX.");
        assert_eq!(resolve("Backscatter", &n), "INBOX.Backscatter");
        assert_eq!(
            guess_namespace(Some('/'), &top(&["inbox"]), true).prefix,
            "INBOX/"
        );
        // Dovecot, UW: folders beside INBOX.
        let n = guess_namespace(Some('.'), &top(&["INBOX", "Sent"]), true);
        assert_eq!(n.prefix, "");
        // Nothing to tell from: no prefix.
        assert_eq!(
            guess_namespace(Some('.'), &top(&["INBOX"]), false).prefix,
            ""
        );
        assert_eq!(guess_namespace(None, &top(&["INBOX"]), true).prefix, "");
        assert_eq!(guess_namespace(Some('.'), &[], true).prefix, "");
        assert_eq!(guess_namespace(Some('.'), &[], true).delimiter, Some('.'));
    }

    #[test]
    fn a_prefix_without_its_delimiter_covers_the_name_itself() {
        let n = Namespace {
            prefix: "Mail/".into(),
            delimiter: Some('/'),
            others: vec![],
        };
        assert_eq!(resolve("Mail", &n), "Mail");
        assert_eq!(resolve("Mail/Sent", &n), "Mail/Sent");
        assert_eq!(resolve("Sent", &n), "Mail/Sent");
    }

    #[test]
    fn modified_utf7_matches_rfc_3501_examples() {
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("Éléments envoyés"), "&AMk-l&AOk-ments envoy&AOk-s");
        assert_eq!(encode("Rückläufer/Spam"), "R&APw-ckl&AOQ-ufer/Spam");
        assert_eq!(encode("Отправленные"), "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        // Outside the BMP: a surrogate pair in one run.
        assert_eq!(decode(&encode("Mail 📬")).as_deref(), Some("Mail 📬"));
        // DEL and controls are not printable ASCII: encoded.
        assert_eq!(encode("a\u{7f}"), "a&AH8-");
    }

    #[test]
    fn malformed_names_from_a_server_are_refused_not_a_panic() {
        for bad in ["&", "&AMk", "&A-", "&AM!-", "&2D0-", "Rück", "&AMkA-"] {
            assert_eq!(decode(bad), None, "{bad}");
            assert_eq!(decode_lossless(bad), bad);
        }
    }

    #[test]
    fn round_trip_any_string() {
        let samples = [
            "",
            "INBOX",
            "a&b",
            "&&",
            "日本語",
            "Ünïcödé/ß",
            "x😀y",
            "\u{7f}",
            "~",
            " ",
            "İstanbul",
            "\u{10ffff}",
            "a-b&-c",
        ];
        for s in samples {
            let e = encode(s);
            assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)), "{e}");
            assert_eq!(decode(&e).as_deref(), Some(s), "{s} -> {e}");
        }
    }

    #[test]
    fn namespace_responses_of_real_servers() {
        // Cyrus (Debian defaults), Courier.
        let n = parse_namespace(
            "* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))\r\n",
        )
        .unwrap();
        assert_eq!(n.prefix, "INBOX.");
        assert_eq!(n.delimiter, Some('.'));
        assert_eq!(n.others, vec!["#shared.", "shared."]);
        // Dovecot's default.
        let n = parse_namespace("* NAMESPACE ((\"\" \".\")) NIL NIL").unwrap();
        assert_eq!((n.prefix.as_str(), n.delimiter), ("", Some('.')));
        // UW imapd.
        let n = parse_namespace(
            "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))",
        )
        .unwrap();
        assert_eq!((n.prefix.as_str(), n.delimiter), ("", Some('/')));
        assert_eq!(n.others.len(), 5);
        // An extension (RFC 2342 §5) and a quoted backslash.
        let n = parse_namespace(
            "* NAMESPACE ((\"\" \"\\\\\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL NIL",
        )
        .unwrap();
        assert_eq!(n.delimiter, Some('\\'));
        // Flat server: NIL delimiter.
        let n = parse_namespace("* NAMESPACE ((\"\" NIL)) NIL NIL").unwrap();
        assert_eq!(n.delimiter, None);
        assert_eq!(parse_namespace("* OK hello"), None);
        assert_eq!(parse_namespace("* NAMESPACE ((\"INBOX.\""), None);
        assert_eq!(parse_namespace("* NAMESPACE {5}"), None);
    }
}
