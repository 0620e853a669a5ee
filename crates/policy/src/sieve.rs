//! The same policy as a server-side Sieve script (RFC 5228): a pure
//! generator from the account's quarantine, its recent sent Message-IDs and
//! the server's Sieve extensions, and a validator (sieve-rs compile, the
//! `require`s checked against what the server offers, a dry run).
//!
//! The script only ever uses `fileinto` (and `stop`): never reject,
//! vacation, redirect, notify or discard — nothing that sends mail. Every
//! string that comes from mail or config is escaped ([`quote`]); the
//! `variables` and `encoded-character` extensions are never required, so
//! `${...}` in a string is literal text.

use crate::lexicon::LEXICON;
use std::fmt;

/// Extensions the generator can use. Others are never required.
const USABLE: [&str; 5] = ["fileinto", "envelope", "body", "mailbox", "imap4flags"];

/// The keyword of a message the user restored from quarantine
/// ([`crate::keep::NOT_BACKSCATTER`]): where the server has
/// `imap4flags` (RFC 5232), the script files nothing that carries it
/// (set by an earlier rule of the user's own, for example).
const KEEP_FLAG: &str = crate::keep::NOT_BACKSCATTER;

/// Dovecot's default Sieve extensions (Pigeonhole 0.5): what `generate`
/// assumes when it is not told.
pub const DOVECOT_DEFAULT: &str = "fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext";

/// What the script should do, and what the server allows.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub account: &'a str,
    pub quarantine: &'a str,
    /// The user's recent sent Message-IDs (without brackets), newest first.
    pub sent_ids: &'a [String],
    /// How many of the newest `sent_ids` are also looked for in the whole
    /// body (the others only in In-Reply-To/References): see
    /// [`BODY_SCAN_DAYS`].
    pub scan_ids: usize,
    /// Addresses the user recently wrote to, newest first: a bounce naming
    /// one, or an auto-reply from one, is the user's (as the agent's rule).
    pub recipients: &'a [String],
    /// The server's SIEVE capability, space-separated.
    pub extensions: &'a str,
    /// The server's script size limit in bytes.
    pub max_bytes: usize,
    /// Shown in the header comment.
    pub generated_at: &'a str,
    /// The account's allow-list ([`crate::keep`]): mail from these
    /// senders, domains or lists is never filed. Reporting hosts sit in
    /// the report's body, which only the agent reads.
    pub keep: &'a [String],
}

/// The allow-list as one Sieve test (`None`: no entries).
fn keep_clause(keep: &[String]) -> Option<Test> {
    use crate::keep::{parse, Rule};
    let (mut addrs, mut domains, mut subdomains, mut lists) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in keep {
        match parse(k) {
            Ok(Rule::Address(a)) => addrs.push(a),
            Ok(Rule::Domain(d)) => {
                subdomains.push(format!("*.{d}"));
                lists.push(d.clone());
                domains.push(d);
            }
            Ok(Rule::ListId(id)) => lists.push(format!("<{id}>")),
            Err(_) => {}
        }
    }
    let mut tests = Vec::new();
    if !addrs.is_empty() {
        tests.push(Test::Address(None, Match::Is, addrs));
    }
    if !domains.is_empty() {
        tests.push(Test::Address(Some(Part::Domain), Match::Is, domains));
        tests.push(Test::Address(
            Some(Part::Domain),
            Match::Matches,
            subdomains,
        ));
    }
    if !lists.is_empty() {
        tests.push(Test::header(Match::Contains, "list-id", lists));
    }
    (!tests.is_empty()).then(|| {
        Test::Commented(
            "not on your keep list".into(),
            Box::new(Test::Not(Box::new(Test::AnyOf(tests)))),
        )
    })
}

/// A bounce comes back within days of the mail it is about: Postfix gives
/// up after 5 days (`maximal_queue_lifetime`), sendmail after 5
/// (`Timeout.queuereturn`), Exim after 4 by default. So the body of an
/// automated response — where a bounce carries the original's Message-ID —
/// is searched only for the IDs of mail sent in the last 7 days; older IDs
/// are still matched in In-Reply-To and References (auto-replies). Each ID
/// costs Pigeonhole one scan of the body per automated message (about
/// 15 µs), so this keeps a heavy sender's script cheap at delivery.
pub const BODY_SCAN_DAYS: i64 = 7;

/// What the script needs from the sent index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentLists {
    /// Sent Message-IDs, newest first.
    pub ids: Vec<String>,
    /// How many of the newest were sent in the last [`BODY_SCAN_DAYS`].
    pub scan_ids: usize,
    /// Correspondents, newest first.
    pub recipients: Vec<String>,
}

impl SentLists {
    pub fn from_index(index: &crate::SentIndex, now: i64) -> SentLists {
        let dated = index.ids_newest_first();
        let cutoff = now - BODY_SCAN_DAYS * 86_400;
        // Undated IDs sort last; a bounce of one is too rare to scan for.
        let scan_ids = dated
            .iter()
            .take_while(|(_, d)| d.is_some_and(|d| d >= cutoff))
            .count();
        SentLists {
            ids: dated.into_iter().map(|(i, _)| i).collect(),
            scan_ids,
            recipients: index
                .recipients_newest_first()
                .into_iter()
                .map(|(r, _)| r)
                .collect(),
        }
    }

    /// Changes when the script would change.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.ids.len(),
            self.ids.first().map_or("", |s| s),
            self.scan_ids,
            self.recipients.len()
        )
    }
}

/// A generated script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub requires: Vec<String>,
    /// How many sent IDs are in it, and how many did not fit.
    pub ids_included: usize,
    pub ids_dropped: usize,
    /// How many of the IDs searched in bodies are also searched in
    /// decoded parts (all of them unless the size limit is tight).
    pub ids_decoded: usize,
    /// What the script cannot see on this server, one sentence each
    /// (no `body` extension, decoded search cut short by the size limit).
    pub limits: Vec<String>,
}

/// A Sieve quoted string: `"` and `\` escaped; line breaks and other
/// control characters, which no header value or Message-ID legitimately
/// holds, become spaces.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A match type (RFC 5228 §2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Is,
    Contains,
    Matches,
}

/// An address part (RFC 5228 §2.7.4); `None` in a test is the whole
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Localpart,
    Domain,
}

/// A body transform (RFC 5173 §5): what of the body a `body` test sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// `:raw`: the body as transmitted, undecoded (one cheap pass).
    Raw,
    /// `:text`: every text part (text/*, text/rfc822-headers included, at
    /// any depth), its transfer encoding undone and its charset converted
    /// to UTF-8, HTML as text.
    Text,
    /// `:content "message"`: the message/* parts, decoded: the header of
    /// a nested message/rfc822, and the whole of a message/global,
    /// message/global-headers, message/delivery-status or
    /// message/disposition-notification part (Pigeonhole; sieve-rs does
    /// not see into an encoded message/global).
    Message,
}

/// The Sieve tests the generator writes (RFC 5228 §5, RFC 5173 `body`,
/// RFC 5232 `hasflag`), rendered by [`fmt::Display`] with every string
/// through [`quote`]. Addresses and envelope parts are always `"from"`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    AnyOf(Vec<Test>),
    AllOf(Vec<Test>),
    Not(Box<Test>),
    /// `header MATCH NAMES KEYS`
    Header(Match, Vec<String>, Vec<String>),
    /// `address [PART] MATCH "from" KEYS`
    Address(Option<Part>, Match, Vec<String>),
    /// `envelope MATCH "from" KEYS` (RFC 5228 §5.4)
    EnvelopeFrom(Match, Vec<String>),
    Exists(Vec<String>),
    /// `body TRANSFORM MATCH KEYS` (RFC 5173)
    Body(Transform, Match, Vec<String>),
    HasFlag(Vec<String>),
    /// The test, after a comment (its lines each get `# `).
    Commented(String, Box<Test>),
}

impl Test {
    fn header(m: Match, name: &str, keys: Vec<String>) -> Test {
        Test::Header(m, vec![name.to_string()], keys)
    }

    /// Written on one line when short and free of comments.
    fn inline(&self) -> Option<String> {
        let s = match self {
            Test::AnyOf(ts) | Test::AllOf(ts) => {
                let inner: Option<Vec<String>> = ts.iter().map(Test::inline).collect();
                let name = if matches!(self, Test::AnyOf(_)) {
                    "anyof"
                } else {
                    "allof"
                };
                format!("{name} ({})", inner?.join(", "))
            }
            Test::Not(t) => format!("not {}", t.inline()?),
            Test::Commented(..) => return None,
            leaf => return Some(leaf.leaf()),
        };
        (s.len() <= 100).then_some(s)
    }

    fn leaf(&self) -> String {
        let m = |m: &Match| match m {
            Match::Is => ":is",
            Match::Contains => ":contains",
            Match::Matches => ":matches",
        };
        match self {
            Test::Header(mt, names, keys) => {
                format!("header {} {} {}", m(mt), strings(names), strings(keys))
            }
            Test::Address(part, mt, keys) => {
                let part = match part {
                    None => "",
                    Some(Part::Localpart) => ":localpart ",
                    Some(Part::Domain) => ":domain ",
                };
                format!("address {part}{} \"from\" {}", m(mt), strings(keys))
            }
            Test::EnvelopeFrom(mt, keys) => {
                format!("envelope {} \"from\" {}", m(mt), strings(keys))
            }
            Test::Exists(names) => format!("exists {}", strings(names)),
            Test::Body(t, mt, keys) => {
                let t = match t {
                    Transform::Raw => ":raw",
                    Transform::Text => ":text",
                    Transform::Message => ":content \"message\"",
                };
                format!("body {t} {} {}", m(mt), strings(keys))
            }
            Test::HasFlag(flags) => format!("hasflag {}", strings(flags)),
            _ => unreachable!("not a leaf"),
        }
    }

    /// Write the test at `indent` spaces, continuation lines included.
    fn write(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        if let Test::Commented(c, t) = self {
            for line in c.lines() {
                out.push_str(&format!("# {line}\n{pad}"));
            }
            return t.write(out, indent);
        }
        if let Some(s) = self.inline() {
            out.push_str(&s);
            return;
        }
        match self {
            Test::AnyOf(ts) | Test::AllOf(ts) => {
                out.push_str(if matches!(self, Test::AnyOf(_)) {
                    "anyof (\n"
                } else {
                    "allof (\n"
                });
                for (i, t) in ts.iter().enumerate() {
                    out.push_str(&" ".repeat(indent + 2));
                    t.write(out, indent + 2);
                    out.push_str(if i + 1 < ts.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad);
                out.push(')');
            }
            Test::Not(t) => {
                out.push_str("not ");
                t.write(out, indent);
            }
            leaf => out.push_str(&leaf.leaf()),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s, 0);
        f.write_str(&s)
    }
}

/// A string list: one string alone, several in brackets.
fn strings(items: &[String]) -> String {
    match items {
        [one] => quote(one),
        _ => list(items),
    }
}

/// Why a script cannot be generated for this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateError(pub String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenerateError {}

/// Why a mailbox name cannot be the quarantine, if it cannot: a
/// backslash, `${` or a control character. RFC 5228 allows a backslash
/// escaped, but implementations disagree on it (sieve-rs, our validator,
/// reads `\\` differently from Pigeonhole: FUZZING.md); sieve-rs expands
/// `${...}` even without the `variables` extension; a control character
/// cannot be in a string of the script ([`quote`] makes it a space). A
/// double quote is fine: [`quote`] escapes it as `\"`, which Pigeonhole
/// and sieve-rs both read back as `"`.
pub fn unsafe_mailbox_name(name: &str) -> Option<&'static str> {
    if name.contains('\\') || name.contains("${") || name.chars().any(char::is_control) {
        Some("must not contain a backslash, \"${\" or control characters (the server's Sieve script could not file into it reliably)")
    } else {
        None
    }
}

/// Does a server's SIEVE capability (space-separated) offer `extension`?
pub fn offers(extensions: &str, extension: &str) -> bool {
    extensions
        .split_whitespace()
        .any(|x| x.eq_ignore_ascii_case(extension))
}

/// Generate the script.
pub fn generate(p: &Policy<'_>) -> Result<Script, GenerateError> {
    if let Some(why) = unsafe_mailbox_name(p.quarantine) {
        return Err(GenerateError(format!("the quarantine mailbox name {why}")));
    }
    let has = |e: &str| offers(p.extensions, e);
    if !has("fileinto") {
        return Err(GenerateError(
            "the server's Sieve has no \"fileinto\": a script cannot move mail to quarantine there (the agent alone filters)".into(),
        ));
    }
    let requires: Vec<String> = USABLE
        .iter()
        .filter(|e| has(e))
        .map(|e| e.to_string())
        .collect();
    let lex = &*LEXICON;
    // The local parts only mail software uses (the lexicon's strong ones).
    let strong_daemons: Vec<String> = lex.strong_daemon_localparts();
    let mut daemons: Vec<String> = lex.daemon_localparts().into_iter().collect();
    daemons.sort();
    // Vendor auto-reply and challenge-response headers: present at all, or
    // with a telling value (`X-Mailer: vacation`). Weak ones (which bulk
    // mail carries too) are left out, as the classifier leaves them.
    let vendor = {
        let mut any: Vec<Test> = Vec::new();
        let mut valued: std::collections::BTreeMap<String, (String, Vec<String>)> =
            Default::default();
        for (name, value) in lex.header_marks() {
            if value.is_empty() {
                any.push(Test::Exists(vec![name]));
            } else {
                valued
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| (name.clone(), Vec::new()))
                    .1
                    .push(value);
            }
        }
        Test::AnyOf(
            any.into_iter()
                .chain(
                    valued
                        .into_values()
                        .map(|(name, values)| Test::header(Match::Contains, &name, values)),
                )
                .collect(),
        )
    };
    let mut subjects: Vec<String> = lex
        .bounce_subject
        .entries()
        .iter()
        .chain(lex.autoreply_subject.entries())
        .chain(lex.subject_prefixes())
        .map(|e| e.text.trim().to_string())
        .filter(|t| t.chars().count() >= 5)
        .collect();
    subjects.sort();
    subjects.dedup();

    let sender_null = if has("envelope") {
        Test::EnvelopeFrom(Match::Is, vec![String::new()])
    } else {
        // Without envelope: the delivering server writes Return-Path.
        Test::header(Match::Is, "return-path", vec!["<>".into(), String::new()])
    };
    let from_daemon = Test::Address(Some(Part::Localpart), Match::Is, daemons);
    let report_type = Test::header(
        Match::Contains,
        "content-type",
        vec![
            "delivery-status".into(),
            "feedback-report".into(),
            "disposition-notification".into(),
        ],
    );
    let failed_recipients = Test::Exists(vec!["x-failed-recipients".into()]);
    let in_reply = || vec!["in-reply-to".to_string(), "references".to_string()];
    let head = format!(
        "# backscatter: server-side filter for account {account}, generated {at}.\n\
         # Files into {q} the automated responses (bounces, auto-replies,\n\
         # challenges, virus notices, abuse reports) that carry none of your\n\
         # recent sent Message-IDs. It never rejects, replies, redirects or\n\
         # discards: nothing here sends mail. Regenerate it; do not edit it.\n\
         require {req};\n\n",
        account = p.account.replace(['\n', '\r'], " "),
        at = p.generated_at.replace(['\n', '\r'], " "),
        q = quote(p.quarantine),
        req = list(&requires),
    );
    // The mark by which `restore --all` tells what the script filed.
    let mark = if has("imap4flags") {
        format!(":flags {} ", quote(crate::keep::FILED_BY_SCRIPT))
    } else {
        String::new()
    };
    let fileinto = if has("mailbox") {
        format!("fileinto {mark}:create {}", quote(p.quarantine))
    } else {
        format!("fileinto {mark}{}", quote(p.quarantine))
    };

    // The conditions, all of which must hold.
    let mut rules: Vec<Test> = Vec::new();
    if has("imap4flags") {
        rules.push(Test::Commented(
            "not marked as kept by the user".into(),
            Box::new(Test::Not(Box::new(Test::HasFlag(vec![KEEP_FLAG.into()])))),
        ));
    }
    rules.extend(keep_clause(p.keep));
    rules.push(Test::Commented(
        "a sign from the sending side that a person's mail client does not give".into(),
        Box::new(Test::AnyOf(vec![
            sender_null.clone(),
            from_daemon.clone(),
            Test::header(Match::Contains, "auto-submitted", vec!["auto-".into()]),
            vendor.clone(),
            failed_recipients.clone(),
            report_type.clone(),
            Test::header(Match::Contains, "precedence", vec!["junk".into()]),
        ])),
    ));
    rules.push(Test::Commented(
        "and evidence of an automated response".into(),
        Box::new(Test::AnyOf(vec![
            report_type,
            failed_recipients,
            Test::header(
                Match::Contains,
                "auto-submitted",
                vec!["auto-replied".into()],
            ),
            vendor,
            Test::Address(Some(Part::Localpart), Match::Is, strong_daemons),
            Test::Commented(
                "a bounce or auto-reply subject counts only from the mail system itself".into(),
                Box::new(Test::AllOf(vec![
                    Test::header(Match::Contains, "subject", subjects),
                    Test::AnyOf(vec![sender_null, from_daemon]),
                ])),
            ),
        ])),
    ));
    // Without `body` the script cannot see the original a bounce carries:
    // it judges only responses that name their original in a header, and
    // leaves the rest to the agent rather than quarantine a bounce of the
    // user's own mail.
    if !has("body") {
        rules.push(Test::Commented(
            "(no \"body\" here: only responses naming their original in a header are judged)"
                .into(),
            Box::new(Test::Exists(in_reply())),
        ));
    }

    // The IDs, then the recipients: as many of the newest as fit.
    // An ID longer than a header line (RFC 5322: 998) cannot be a real
    // one, and an address has at most 320 characters; longer strings are
    // left out (they would also exceed sieve-rs's 4 KB string limit).
    let ids: Vec<String> = p
        .sent_ids
        .iter()
        .map(|i| id_pattern(i))
        .filter(|i| i.len() <= 998)
        .collect();
    let recips: Vec<String> = p
        .recipients
        .iter()
        .map(|r| r.trim().to_lowercase())
        .filter(|r| {
            r.contains('@') && r.len() <= 320 && !r.contains(['"', '\\']) && !r.contains("${")
        })
        .collect();
    // A whole-body scan, behind a cheap necessary condition when the
    // strings share few domains: see [`prefilter`].
    let scan = |t: Transform, items: &[String]| -> Test {
        let all = Test::Body(t, Match::Contains, items.to_vec());
        match prefilter(items) {
            Some(pre) => Test::AllOf(vec![Test::Body(t, Match::Contains, pre), all]),
            None => all,
        }
    };
    // The same strings in the decoded body: text parts (quoted-printable
    // soft breaks and `=3D`, base64, charsets) and message/* parts.
    // Decoding is the dear part, so it is asked only after the raw scan
    // failed (`anyof` stops at the first true test) and only of a message
    // that has an encoded part at all: the top-level header or a part's
    // header in the raw body names the encoding.
    let decoded = |items: &[String]| -> Test {
        Test::AllOf(vec![
            Test::AnyOf(vec![
                Test::header(Match::Contains, "content-transfer-encoding", encodings()),
                Test::Body(Transform::Raw, Match::Contains, encodings()),
            ]),
            Test::AnyOf(vec![
                scan(Transform::Text, items),
                scan(Transform::Message, items),
            ]),
        ])
    };
    let ids_blocks = |n: usize, d: usize, m: usize| -> Vec<Test> {
        let mut blocks = Vec::new();
        if n > 0 {
            // Its own Message-ID too: a response carrying one of yours
            // there is your mail (and a malformed report whose blank lines
            // hold white space is all header, the original's ID included).
            let mut names = in_reply();
            names.push("message-id".into());
            let mut tests = vec![Test::Header(Match::Contains, names, ids[..n].to_vec())];
            let scanned = n.min(p.scan_ids);
            if has("body") && scanned > 0 {
                tests.push(scan(Transform::Raw, &ids[..scanned]));
                let d = d.min(scanned);
                if d > 0 {
                    let which = if d < scanned {
                        format!(" (the newest {d})")
                    } else {
                        String::new()
                    };
                    tests.push(Test::Commented(
                        format!(
                            "nor{which} in the decoded base64 or quoted-printable parts, if any:\n\
                             text parts (RFC 5173 :text) and message/* parts (:content \"message\")"
                        ),
                        Box::new(decoded(&ids[..d])),
                    ));
                }
            }
            blocks.push(Test::Commented(
                format!("and none of your {n} most recent sent Message-IDs in it"),
                Box::new(Test::Not(Box::new(Test::AnyOf(tests)))),
            ));
        }
        // Correspondents rescue only a response that names no original
        // Message-ID: a foreign original ID decides, as in the agent,
        // whoever the forged original was addressed to. Without `body`
        // every judged response names its original in a header, so the
        // rescue could never apply and is left out. Both are looked for
        // decoded too, as the agent reads them.
        if m > 0 && has("body") {
            let message_id = vec!["message-id:".to_string()];
            blocks.push(Test::Commented(
                format!(
                    "and either it names an original Message-ID (not one of yours: that decides),\n\
                     or it names none and nothing in it is from or about your {m} correspondents"
                ),
                Box::new(Test::AnyOf(vec![
                    Test::Exists(in_reply()),
                    Test::Body(Transform::Raw, Match::Contains, message_id.clone()),
                    decoded(&message_id),
                    Test::Not(Box::new(Test::AnyOf(vec![
                        Test::Address(None, Match::Is, recips[..m].to_vec()),
                        scan(Transform::Raw, &recips[..m]),
                        decoded(&recips[..m]),
                    ]))),
                ])),
            ));
        }
        blocks
    };
    let render = |n: usize, d: usize, m: usize| -> String {
        let mut all = rules.clone();
        all.extend(ids_blocks(n, d, m));
        format!(
            "{head}if {} {{\n  {fileinto};\n  stop;\n}}\n",
            Test::AllOf(all)
        )
    };
    let fixed = render(0, 0, 0).len();
    if fixed > p.max_bytes {
        return Err(GenerateError(format!(
            "a script may take at most {} bytes (the server's limit or max-size), and backscatter's rules alone take {fixed}, before any sent Message-ID",
            p.max_bytes
        )));
    }
    // The largest prefix `0..=hi` for which `fits` holds (it holds for 0).
    let largest = |hi: usize, fits: &dyn Fn(usize) -> bool| -> usize {
        let (mut lo, mut hi) = (0usize, hi);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    let fits = |n: usize, d: usize, m: usize| render(n, d, m).len() <= p.max_bytes;
    // As many of the newest as fit: the IDs in headers and the raw body
    // first, then the same IDs decoded, then the correspondents.
    let n = largest(ids.len(), &|n| fits(n, 0, 0));
    let scanned = if has("body") { n.min(p.scan_ids) } else { 0 };
    let d = largest(scanned, &|d| fits(n, d, 0));
    let m = largest(recips.len(), &|m| fits(n, d, m));
    let mut limits = Vec::new();
    if !has("body") {
        limits.push(
            "the server has no \"body\" extension (RFC 5173): only responses naming their original in In-Reply-To or References are judged, bounces are left to the agent".to_string(),
        );
    } else if d < scanned {
        let which = if d == 0 {
            format!("the {scanned} Message-IDs searched in bodies are not")
        } else {
            format!(
                "{} of the {scanned} Message-IDs searched in bodies are not also",
                scanned - d
            )
        };
        limits.push(format!(
            "{which} searched in decoded (base64, quoted-printable) parts, to fit {} bytes",
            p.max_bytes
        ));
    }
    let text = render(n, d, m);
    Ok(Script {
        text,
        requires,
        ids_included: n,
        ids_dropped: ids.len() - n,
        ids_decoded: d,
        limits,
    })
}

/// The transfer encodings whose parts the script decodes (RFC 2045 §6).
fn encodings() -> Vec<String> {
    vec!["base64".into(), "quoted-printable".into()]
}

/// A short list of strings at least one of which every message matching
/// any of `items` contains: their distinct domain parts (`@example.org>`
/// for `<x@example.org>`, `@example.org` for an address). Pigeonhole's
/// `:contains` scans the body once per string, so testing these few first
/// spares every automated response that is not about the user's mail the
/// scan for each of thousands of IDs (the user's IDs mostly share one or
/// two domains). `None` when the domains are not much fewer than the items.
pub fn prefilter(items: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in items {
        let key = match i.rfind('@') {
            Some(at) => &i[at..],
            None => i.as_str(),
        };
        if seen.insert(key.to_ascii_lowercase()) {
            out.push(key.to_string());
        }
    }
    (out.len() * 4 <= items.len()).then_some(out)
}

/// First line of our block inside a copy of the user's script (servers
/// without `include`).
pub const BLOCK_BEGIN: &str =
    "# ---- backscatter: BEGIN (generated; `backscatter sieve uninstall` removes it) ----";
/// Last line of that block.
pub const BLOCK_END: &str = "# ---- backscatter: END ----";

/// For a server without `include`: the user's script with ours inserted
/// after its `require` commands (RFC 5228 wants every `require` first),
/// between [`BLOCK_BEGIN`] and [`BLOCK_END`], so it runs first and `stop`s
/// after filing a response into quarantine; the user's commands follow
/// unchanged. A block already there is replaced. [`unmerge`] gives the
/// user's script back byte for byte.
pub fn merge(theirs: &str, ours: &Script) -> Result<String, String> {
    let theirs = unmerge(theirs);
    let at = prologue_end(&theirs)?;
    let body: String = ours
        .text
        .lines()
        .filter(|l| !l.trim_start().starts_with("require "))
        .map(|l| format!("{l}\n"))
        .collect();
    // Their requires, however laid out over lines.
    let prologue = theirs[..at].to_ascii_lowercase();
    if body.contains("${")
        && (prologue.contains("\"variables\"") || prologue.contains("\"encoded-character\""))
    {
        // Their `variables` would expand it inside our strings.
        return Err("your script uses \"variables\" and backscatter's rules hold \"${\"; they cannot share one script".into());
    }
    let req = format!("require {};\n", list(&ours.requires));
    Ok(format!(
        "{}\n{BLOCK_BEGIN}\n{req}{body}{BLOCK_END}\n{}",
        &theirs[..at],
        &theirs[at..]
    ))
}

/// The user's script without our block (unchanged if it has none).
pub fn unmerge(script: &str) -> String {
    let begin = format!("\n{BLOCK_BEGIN}\n");
    let end = format!("\n{BLOCK_END}\n");
    if let Some(b) = script.find(&begin) {
        if let Some(e) = script[b..].find(&end) {
            return format!("{}{}", &script[..b], &script[b + e + end.len()..]);
        }
    }
    script.to_string()
}

/// Where a script's leading `require` commands (and the comments among
/// them) end: the place for commands that must run first.
fn prologue_end(s: &str) -> Result<usize, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut end = 0;
    let skip_blank = |i: &mut usize| -> Result<(), String> {
        loop {
            while *i < b.len() && b[*i].is_ascii_whitespace() {
                *i += 1;
            }
            if b[*i..].starts_with(b"#") {
                *i = b[*i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| *i + p + 1);
            } else if b[*i..].starts_with(b"/*") {
                let close = s[*i + 2..]
                    .find("*/")
                    .ok_or("your script has an unterminated /* comment")?;
                *i += 2 + close + 2;
            } else {
                return Ok(());
            }
        }
    };
    loop {
        skip_blank(&mut i)?;
        let is_require = b.len() - i > 7
            && b[i..i + 7].eq_ignore_ascii_case(b"require")
            && !(b[i + 7].is_ascii_alphanumeric() || b[i + 7] == b'_');
        if !is_require {
            return Ok(end);
        }
        i += 7;
        loop {
            skip_blank(&mut i)?;
            match b.get(i) {
                Some(b'"') => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= b.len() {
                        return Err("your script has an unterminated string".into());
                    }
                    i += 1;
                }
                Some(b'[' | b']' | b',') => i += 1,
                Some(b';') => {
                    i += 1;
                    break;
                }
                _ => return Err("your script's \"require\" is not one backscatter can read (a list of quoted strings)".into()),
            }
        }
        end = i;
    }
}

/// How many sent Message-IDs a generated script holds, from its comment
/// (`None` for a script this version did not write).
pub fn ids_in(script: &str) -> Option<usize> {
    if !script.starts_with("# backscatter:") {
        return None;
    }
    // Today's wording, then the one scripts installed before 0.2 carry.
    for marker in ["# and none of your ", "# and nothing of yours in it: your "] {
        if let Some((_, rest)) = script.split_once(marker) {
            return rest.split_whitespace().next()?.parse().ok();
        }
    }
    Some(0)
}

/// The string a script looks for to find a sent Message-ID: the ID
/// without its angle brackets (`id@host`). The agent accepts an ID with or
/// without brackets, in any case, with white space inside the brackets
/// (`crate::mail::id_key`; abuse reports and some MTAs quote
/// `Message-ID: id@host` bare): `:contains "id@host"` with the default
/// `i;ascii-casemap` comparator matches every one of those forms, where
/// `"<id@host>"` missed the bare ones and quarantined a response to the
/// user's own mail that the agent keeps. An ID
/// holding `${`, `"` or `\` (legal in a quoted local part, never seen in
/// practice) is cut to its longest piece without them: a `:contains` match
/// on a long piece of an ID is still specific, and implementations differ
/// on those characters (sieve-rs expands `${...}` without the `variables`
/// extension and does not match escaped quotes or backslashes; Pigeonhole
/// follows RFC 5228). The string is quoted by [`quote`] all the same.
pub fn id_pattern(id: &str) -> String {
    let id = id.trim().trim_matches(['<', '>']).trim();
    if !id.contains("${") && !id.contains(['"', '\\']) {
        return id.to_string();
    }
    let cleaned = id.replace("${", "\u{0}");
    let mut pieces: Vec<&str> = cleaned.split(['\u{0}', '"', '\\']).collect();
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    pieces[0].to_string()
}

/// Compile with sieve-rs and check that every `require` is offered by the
/// server (sieve-rs accepts unknown `require`s at compile time).
pub fn validate(script: &str, server_extensions: &str) -> Result<(), String> {
    ::sieve::Compiler::new()
        .compile(script.as_bytes())
        .map_err(|e| format!("the script does not compile: {e}"))?;
    for req in requires_of(script) {
        if !offers(server_extensions, &req) {
            return Err(format!(
                "the script requires \"{req}\", which the server does not offer"
            ));
        }
    }
    Ok(())
}

/// The extensions a script's `require` lines name.
pub fn requires_of(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in script.lines() {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix("require") {
            for part in rest.split('"').skip(1).step_by(2) {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// What a script does with a message, as sieve-rs runs it: the mailbox it
/// files into, or `None` for keep. `envelope_from` is the SMTP sender
/// (`""` for a bounce).
pub fn run(script: &str, raw: &[u8], envelope_from: &str) -> Result<Option<String>, String> {
    use ::sieve::{Compiler, Envelope, Event, Input, Runtime};
    let compiled = Compiler::new()
        .compile(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let runtime = Runtime::new();
    let mut ctx = runtime
        .filter(raw)
        .with_envelope(Envelope::From, envelope_from)
        .with_envelope(Envelope::To, "user@example.test");
    let mut input = Input::script("backscatter", compiled);
    let mut filed = None;
    while let Some(r) = ctx.run(input) {
        input = true.into();
        match r {
            Ok(Event::FileInto { folder, .. }) => filed = Some(folder),
            Ok(Event::MailboxExists { .. }) => input = true.into(),
            Ok(Event::Keep { .. }) => {}
            Ok(Event::Reject { .. })
            | Ok(Event::SendMessage { .. })
            | Ok(Event::Discard)
            | Ok(Event::Notify { .. }) => {
                return Err("the script tried to reject, send, discard or notify".into())
            }
            Ok(_) => {}
            Err(e) => return Err(format!("the script failed to run: {e}")),
        }
    }
    Ok(filed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefilter_is_a_necessary_condition_and_only_when_it_pays() {
        let ids: Vec<String> = [
            "<a@x.org>",
            "<b@X.org>",
            "<c@y.org>",
            "<d@x.org>",
            "odd",
            "<e@x.org>",
            "<f@y.org>",
            "<g@x.org>",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(prefilter(&ids), None, "3 keys for 8 items: not worth it");
        let many: Vec<String> = (0..40).map(|i| format!("<{i}@{}.org>", i % 3)).collect();
        let pre = prefilter(&many).unwrap();
        assert_eq!(pre, vec!["@0.org>", "@1.org>", "@2.org>"]);
        for id in &many {
            assert!(pre
                .iter()
                .any(|p| id.to_lowercase().contains(&p.to_lowercase())));
        }
    }

    fn policy<'a>(ids: &'a [String], ext: &'a str, max: usize) -> Policy<'a> {
        Policy {
            account: "work",
            quarantine: "Backscatter",
            sent_ids: ids,
            scan_ids: ids.len(),
            recipients: &[],
            extensions: ext,
            max_bytes: max,
            generated_at: "2026-11-23",
            keep: &[],
        }
    }

    #[test]
    fn merged_copy_keeps_their_requires_first_and_unmerges_exactly() {
        let ids: Vec<String> = (0..3).map(|i| format!("{i}@example.org")).collect();
        let ours = generate(&policy(&ids, DOVECOT_DEFAULT, 1 << 20)).unwrap();
        // Hand-written user scripts: comments before, between and inside
        // requires, a bracket list, escapes, CRLF, no requires at all.
        for theirs in [
            "# my rules\r\nrequire [\"fileinto\", \"imap4flags\"];\r\n/* multi\r\nline */ require \"envelope\"; # tail\r\nif header :contains \"list-id\" \"x\" { fileinto \"Lists\"; }\r\n",
            "require [\"fileinto\" /* c */, \"variables\"];\nset \"a\" \"\\\"q\";\nif true { keep; }\n",
            "keep;\n",
            "",
            "REQUIRE \"fileinto\";fileinto \"x\";",
        ] {
            let merged = merge(theirs, &ours).unwrap();
            assert_eq!(unmerge(&merged), theirs);
            assert_eq!(merge(&merged, &ours).unwrap(), merged, "idempotent");
            let compiled = ::sieve::Compiler::new().compile(merged.as_bytes());
            assert!(compiled.is_ok(), "{compiled:?}\n{merged}");
            // Their requires, then ours, then any command.
            let first_cmd = merged.find(BLOCK_BEGIN).unwrap();
            assert!(!merged[..first_cmd].contains("keep;") && !merged[..first_cmd].contains("if "));
        }
        // What cannot be read is refused, not guessed at.
        assert!(merge("require text:\nfileinto\n.\n;", &ours).is_err());
        assert!(merge("require \"fileinto", &ours).is_err());
        assert!(merge("/* open", &ours).is_err());
    }

    #[test]
    fn decoded_scan_comes_after_the_raw_one_and_yields_to_the_size_limit() {
        let ids: Vec<String> = (0..400).map(|i| format!("{i}.q=x@example.org")).collect();
        let s = generate(&policy(&ids, DOVECOT_DEFAULT, 1 << 20)).unwrap();
        assert_eq!((s.ids_decoded, s.limits.len()), (400, 0));
        // Inside the ID test: header, then raw, then decoded, only where a
        // part is encoded.
        let block = &s.text[s.text.find("# and none of your").unwrap()..];
        let (h, r, t) = (
            block.find("header :contains [\"in-reply-to\", \"references\", \"message-id\"]"),
            block.find("body :raw :contains [\"0.q=x@"),
            block.find("body :text :contains [\"0.q=x@"),
        );
        assert!(h < r && r < t && t.is_some(), "{block}");
        assert!(block[r.unwrap()..t.unwrap()].contains(
            "header :contains \"content-transfer-encoding\" [\"base64\", \"quoted-printable\"]"
        ));
        assert!(block.contains("body :content \"message\" :contains [\"0.q=x@"));
        // Hand-written: the ID only behind a quoted-printable soft break
        // and `=3D`, and only in base64.
        let qp = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nMessage-ID: <7.q=3Dx@exam=\r\nple.org>\r\n";
        assert_eq!(run(&s.text, qp, "").unwrap(), None);
        let b64 = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nTWVzc2FnZS1JRDogPDcucT14QGV4YW1wbGUub3JnPg0K\r\n";
        assert_eq!(run(&s.text, b64, "").unwrap(), None);
        let other = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nTWVzc2FnZS1JRDogPDcucT15QGV4YW1wbGUub3JnPg0K\r\n";
        assert_eq!(
            run(&s.text, other, "").unwrap().as_deref(),
            Some("Backscatter")
        );
        // A tight limit: every ID in headers and the raw body first, the
        // decoded scan for as many of the newest as still fit, said so.
        let raw_only = generate(&policy(&ids, "fileinto body", 32 * 1024)).unwrap();
        assert!(raw_only.ids_included > raw_only.ids_decoded);
        assert!(raw_only.text.len() <= 32 * 1024);
        assert!(
            raw_only.limits[0].contains("searched in decoded (base64, quoted-printable) parts"),
            "{:?}",
            raw_only.limits
        );
        if raw_only.ids_decoded > 0 {
            assert!(raw_only
                .text
                .contains(&format!("nor (the newest {})", raw_only.ids_decoded)));
        }
        validate(&raw_only.text, "fileinto body").unwrap();
        // No body: nothing decoded, and the loss named.
        let none = generate(&policy(&ids, "fileinto", 1 << 20)).unwrap();
        assert_eq!(none.ids_decoded, 0);
        assert!(!none.text.contains("body "));
        assert!(none.limits[0].contains("no \"body\""));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c${x}\nd"), "\"a\\\"b\\\\c${x} d\"");
    }

    #[test]
    fn degrades_to_what_the_server_offers_and_fits_its_limit() {
        let ids: Vec<String> = (0..5000).map(|i| format!("{i}.x@example.org")).collect();
        let s = generate(&policy(&ids, DOVECOT_DEFAULT, 1 << 20)).unwrap();
        assert_eq!(
            s.requires,
            vec!["fileinto", "envelope", "body", "mailbox", "imap4flags"]
        );
        assert!(s.text.contains("not hasflag \"$NotBackscatter\""));
        assert_eq!(s.ids_included, 5000);
        validate(&s.text, DOVECOT_DEFAULT).unwrap();
        let small = generate(&policy(&ids, "fileinto", 32 * 1024)).unwrap();
        assert!(small.text.len() <= 32 * 1024);
        assert!(small.ids_dropped > 0 && small.ids_included > 0);
        assert!(
            small.text.contains("\"0.x@example.org\""),
            "the newest are kept"
        );
        assert!(!small.text.contains("envelope :is"));
        assert!(!small.text.contains("hasflag"));
        assert!(!small.text.contains("body :raw"));
        assert!(small
            .text
            .contains("exists [\"in-reply-to\", \"references\"],"));
        validate(&small.text, "fileinto").unwrap();
        // Without body, a bounce without In-Reply-To is left to the agent.
        let bounce = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <old.x@example.org>\r\n--b--\r\n";
        assert_eq!(run(&small.text, bounce, "").unwrap(), None);
        let none = generate(&policy(&[], "fileinto", 1 << 20)).unwrap();
        validate(&none.text, "fileinto").unwrap();
        assert!(generate(&policy(&ids, "envelope body", 1 << 20)).is_err());
        assert_eq!(ids_in(&s.text), Some(5000));
        assert_eq!(ids_in(&small.text), Some(small.ids_included));
        let pre = s
            .text
            .find("allof (\n")
            .and_then(|i| {
                s.text[i..]
                    .find("body :raw :contains \"@example.org\",\n")
                    .map(|j| i + j)
            })
            .expect("the one-domain prefilter");
        assert!(
            s.text[pre..].lines().nth(1).is_some_and(|l| l
                .trim_start()
                .starts_with("body :raw :contains [\"0.x@example.org\"")),
            "the ID scan sits behind the one-domain prefilter"
        );
        for bad in ["reject", "vacation", "redirect", "discard", "notify"] {
            // As a command (a line starting with it), not inside a string.
            assert!(
                !s.text.lines().any(|l| l.trim_start().starts_with(bad)),
                "{bad}"
            );
        }
    }
}
