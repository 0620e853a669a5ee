//! Origin analysis: where did the mail that the backscatter answers come
//! from? Two very different situations produce the same flood:
//!
//! - a **joe job**: a spammer forges the user's address on mail sent from
//!   elsewhere (botnets, rented servers). The quoted originals come from
//!   many unrelated networks, never pass through the user's own servers and
//!   carry no DKIM signature of the user's domain. It calls for SPF, DKIM,
//!   DMARC `p=reject`, and patience;
//! - **the user's own server sending spam**: a compromised account, a web
//!   form or a script. The originals passed through one of the user's own
//!   outbound hosts (or carry the user's DKIM signature). That needs action
//!   within minutes.
//!
//! Pure: raw response bytes in, [`Evidence`] out ([`evidence`]); a list of
//! evidence, the user's domains and outbound hosts in, an [`Assessment`] out
//! ([`assess`]). The evidence is read from the original as quoted in the
//! response: an attached `message/rfc822` / `message/global`, a
//! `text/rfc822-headers` part (RFC 6522), or a header block quoted in the
//! text (qmail, Exim and many others). `Received:` follows RFC 5321
//! section 4.4, `DKIM-Signature:` RFC 6376 section 3.5.

use crate::recognise::PARSER;
use mail_parser::{MimeHeaders, PartType};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

/// Quoted headers are looked for in this much of a text part.
const TEXT_SCAN_BYTES: usize = 128 * 1024;

/// One `Received:` line of the original, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The `from` clause's first word (the HELO name), lowercased.
    pub from: Option<String>,
    /// The reverse-DNS name in the `from` clause's comment, lowercased.
    pub from_rdns: Option<String>,
    /// The address of the connecting client.
    pub ip: Option<IpAddr>,
    /// The host that wrote the line (`by`), lowercased.
    pub by: Option<String>,
    /// The protocol (`with`), lowercased: `esmtpa`/`esmtpsa` (RFC 3848)
    /// mean an authenticated submission.
    pub with: Option<String>,
}

impl Hop {
    /// An authenticated submission (RFC 3848 protocol types end in `a`).
    pub fn authenticated(&self) -> bool {
        self.with
            .as_deref()
            .is_some_and(|w| w.ends_with("smtpa") || w.ends_with("smtpsa") || w.ends_with("lmtpa"))
    }
}

/// What the quoted original of one automated response says about its
/// origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The original's `Received:` lines in header order: newest (the last
    /// relay before the bouncing server) first, the submission last.
    pub hops: Vec<Hop>,
    /// `d=` of every `DKIM-Signature:`, lowercased.
    pub dkim_domains: Vec<String>,
    /// `X-PHP-Originating-Script` / `X-PHP-Script`: a web script sent it.
    pub script: Option<String>,
    pub subject: Option<String>,
}

impl Evidence {
    /// Nothing about the origin could be read.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty() && self.dkim_domains.is_empty() && self.script.is_none()
    }

    /// The first hop from outside: the earliest `Received:` whose client
    /// has a public address (the submitting machine or the first relay).
    pub fn first_external(&self) -> Option<&Hop> {
        self.hops.iter().rev().find(|h| h.ip.is_some_and(is_public))
    }

    /// The host names and addresses the original passed through.
    fn hosts(&self) -> impl Iterator<Item = String> + '_ {
        self.hops.iter().flat_map(|h| {
            [h.from.clone(), h.from_rdns.clone(), h.by.clone()]
                .into_iter()
                .flatten()
                .chain(h.ip.map(|i| i.to_string()))
        })
    }
}

/// Is this address on the public Internet (not private, loopback,
/// link-local, CGNAT or unique-local)? Documentation ranges count as
/// public: published samples use them for real hosts.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The network an address belongs to, as spam sources are usually counted:
/// the /24 of an IPv4 address, the /48 of an IPv6 one.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Read the origin evidence from the original quoted in a response.
/// `None` when the response quotes no header of its original. Malformed
/// input gives `None` or partial evidence, never a panic.
pub fn evidence(raw: &[u8]) -> Option<Evidence> {
    let raw = &raw[..raw.len().min(crate::mail::MAX_MESSAGE_BYTES)];
    let msg = PARSER.parse(raw)?;
    let mut blocks: Vec<String> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for (i, p) in msg.parts.iter().enumerate() {
        match &p.body {
            PartType::Message(inner) => {
                let r = inner.raw_message();
                let end = (inner
                    .parts
                    .first()
                    .map_or(r.len(), |p| p.raw_body_offset() as usize))
                .min(r.len());
                blocks.push(String::from_utf8_lossy(&r[..end]).into_owned());
            }
            PartType::Text(t) if i > 0 || msg.parts.len() == 1 => {
                let ct = p.content_type();
                let is_headers = ct.is_some_and(|c| {
                    c.ctype().eq_ignore_ascii_case("text")
                        && c.subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                });
                if is_headers {
                    blocks.push(t.to_string());
                } else {
                    texts.push(t.to_string());
                }
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                // Some servers label the headers application/octet-stream or
                // text/rfc822-headers with an unknown charset.
                let ct = p.content_type();
                if ct.is_some_and(|c| {
                    c.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                }) {
                    blocks.push(String::from_utf8_lossy(b).into_owned());
                }
            }
            _ => {}
        }
    }
    if blocks.is_empty() {
        for t in &texts {
            let t = &t[..floor_char(t, TEXT_SCAN_BYTES)];
            if let Some(b) = quoted_header_block(t) {
                blocks.push(b);
                break;
            }
        }
    }
    let mut best: Option<Evidence> = None;
    for b in &blocks {
        let e = from_header_block(b);
        if !e.is_empty() || e.subject.is_some() {
            // The first attached original is the one answered.
            best = Some(e);
            break;
        }
    }
    best
}

fn floor_char(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Header names that begin a quoted header block.
static HEADER_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(return-path|received|dkim-signature|message-id|from|to|subject|date|x-php-originating-script):").unwrap()
});

/// In an NDR's text, the header block quoted after a line such as "Below
/// this line is a copy of the message": the first run of header lines that
/// holds a `Received:` line. Lines may be quoted with `> ` or indented.
fn quoted_header_block(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let strip = |l: &str| -> String {
        let l = l
            .strip_prefix('>')
            .map(|r| r.strip_prefix(' ').unwrap_or(r))
            .unwrap_or(l);
        l.trim_end().to_string()
    };
    let mut i = 0;
    while i < lines.len() {
        let l = strip(lines[i]);
        let t = l.trim_start();
        if HEADER_START.is_match(t) {
            let indent = l.len() - t.len();
            let mut block = Vec::new();
            let mut j = i;
            while j < lines.len() {
                let lj = strip(lines[j]);
                if lj.trim().is_empty() {
                    break;
                }
                let body = if lj.len() >= indent {
                    &lj[floor_char(&lj, indent)..]
                } else {
                    lj.as_str()
                };
                let is_field = body
                    .split_once(':')
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_graphic()));
                let is_cont = body.starts_with([' ', '\t']);
                if !(is_field || is_cont) {
                    break;
                }
                block.push(body.to_string());
                j += 1;
            }
            let text = block.join("\n");
            if block.len() >= 2 && text.to_ascii_lowercase().contains("received:") {
                return Some(text);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Unfold a header block into (lowercase name, value) pairs.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

static FROM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*from\s+([^\s();]+)\s*(\(([^)]*)\))?").unwrap());
static BY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:^|[\s)])by\s+([A-Za-z0-9][A-Za-z0-9.\-]*)").unwrap());
static BRACKET_IP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(?i:ipv6:)?([0-9A-Fa-f:.]+)\]").unwrap());
static BARE_IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\b").unwrap());
static WITH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:^|[\s)])with\s+([A-Za-z0-9][A-Za-z0-9\-]*)").unwrap());
static DKIM_D: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:^|;)\s*d\s*=\s*([A-Za-z0-9.\-]+)").unwrap());

/// Parse one `Received:` value (RFC 5321 section 4.4; real lines vary).
pub fn parse_received(v: &str) -> Hop {
    let v = v.split(';').next().unwrap_or(v);
    let mut hop = Hop::default();
    let by_pos = BY.find(v).map(|m| m.start());
    let from_part = &v[..by_pos.unwrap_or(v.len())];
    if let Some(c) = FROM.captures(from_part) {
        hop.from = c
            .get(1)
            .map(|m| m.as_str().trim_matches(['[', ']']).to_ascii_lowercase());
        if let Some(comment) = c.get(3) {
            // Postfix/Sendmail `(rdns [ip])`; Exim's `([ip] helo=name)` has none.
            let word = comment.as_str().split_whitespace().next().unwrap_or("");
            if word.contains('.')
                && !word.starts_with('[')
                && !word.contains('=')
                && word.parse::<IpAddr>().is_err()
            {
                hop.from_rdns = Some(word.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        hop.ip = BRACKET_IP
            .captures_iter(from_part)
            .chain(BARE_IPV4.captures_iter(from_part))
            .find_map(|c| c[1].parse::<IpAddr>().ok());
    }
    hop.by = BY
        .captures(v)
        .map(|c| c[1].trim_end_matches('.').to_ascii_lowercase());
    hop.with = WITH.captures(v).map(|c| c[1].to_ascii_lowercase());
    hop
}

fn from_header_block(block: &str) -> Evidence {
    let mut e = Evidence::default();
    for (name, value) in fields(block) {
        match name.as_str() {
            "received" => e.hops.push(parse_received(&value)),
            "dkim-signature" => {
                if let Some(c) = DKIM_D.captures(&value) {
                    let d = c[1].to_ascii_lowercase();
                    if !e.dkim_domains.contains(&d) {
                        e.dkim_domains.push(d);
                    }
                }
            }
            "x-php-originating-script" | "x-php-script" => {
                e.script.get_or_insert(value);
            }
            "subject" => {
                e.subject.get_or_insert_with(|| decode_subject(&value));
            }
            _ => {}
        }
    }
    e
}

/// Decode RFC 2047 words in a quoted subject.
fn decode_subject(v: &str) -> String {
    let raw = format!("Subject: {v}\r\n\r\n");
    mail_parser::MessageParser::new()
        .parse_headers(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| v.to_string())
}

/// The user's submission/outbound hosts seen in the originals of their own
/// bounced mail (legitimate responses), from the earliest `Received:`:
/// - a local or authenticated submission (no client address, a private
///   one, or `with ESMTPA`/`ESMTPSA`): the host that wrote it (`by`);
/// - an unauthenticated hop from a public address: a server handing the
///   message to the recipient's MX, so the sending side (its reverse-DNS
///   name or HELO name) is the user's server and `by` is not.
///
/// Sorted and without duplicates. Names that do not identify one host
/// (`localhost`, `*.localdomain`, private addresses) are left out.
pub fn learn_outbound_hosts<'a>(legitimate: impl IntoIterator<Item = &'a Evidence>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for e in legitimate {
        let Some(h) = e.hops.last() else { continue };
        let relayed = h.ip.is_some_and(is_public) && !h.authenticated();
        let host = if relayed {
            h.from_rdns.clone().or_else(|| h.from.clone())
        } else {
            h.by.clone()
        };
        if let Some(host) = host.filter(|h| is_host_name(h) && !is_shared_provider_host(h)) {
            out.insert(host);
        }
    }
    out.into_iter().collect()
}

/// Domains of mail providers whose submission and outbound servers
/// millions of senders share (each provider's own documented SMTP hosts:
/// Gmail/Google Workspace, Microsoft 365/Outlook.com, Yahoo/AOL, Apple
/// iCloud, Zoho, GMX/WEB.DE, Mail.ru, Yandex, Fastmail, Proton, QQ,
/// NetEase, Naver, and the sending services Amazon SES, SendGrid,
/// Mailgun, SparkPost, Mailchimp/Mandrill). That the user's own mail went
/// through one of them says the user uses that provider, not that another
/// message through it came from the user's account: spammers send through
/// the same hosts from stolen and throwaway accounts. Such hosts are never
/// learned as the user's (newcomer round 4: `report` told a joe-job victim
/// on Gmail "Act now: change the passwords"); `outbound-hosts` can still
/// name one.
pub const SHARED_PROVIDER_DOMAINS: &[&str] = &[
    "google.com",
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "office365.com",
    "microsoft.com",
    "yahoo.com",
    "yahoodns.net",
    "yahoo.co.jp",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "zoho.com",
    "zohomail.com",
    "zoho.eu",
    "gmx.net",
    "gmx.com",
    "web.de",
    "mail.ru",
    "yandex.net",
    "yandex.ru",
    "fastmail.com",
    "messagingengine.com",
    "protonmail.ch",
    "proton.me",
    "qq.com",
    "163.com",
    "126.com",
    "naver.com",
    "amazonses.com",
    "sendgrid.net",
    "mailgun.org",
    "mailgun.net",
    "sparkpostmail.com",
    "mandrillapp.com",
    "mcsv.net",
];

/// Is `host` (a host name, any case) one of a shared provider's
/// ([`SHARED_PROVIDER_DOMAINS`]): the domain itself or a name under it?
pub fn is_shared_provider_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    SHARED_PROVIDER_DOMAINS
        .iter()
        .any(|d| h == *d || h.ends_with(&format!(".{d}")))
}

/// A name that identifies one host: a domain name with a dot, not
/// `localhost` or a private suffix (`.localdomain`, `.local`, `.lan`,
/// `.internal`), or a public address.
fn is_host_name(h: &str) -> bool {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return is_public(ip);
    }
    h.contains('.')
        && !h.starts_with("localhost")
        && ![".localdomain", ".local", ".lan", ".internal", ".localhost"]
            .iter()
            .any(|s| h.ends_with(s))
}

/// What the user's own sending infrastructure looks like.
#[derive(Debug, Clone, Default)]
pub struct Own {
    /// The domains of the user's addresses, lowercased.
    pub domains: Vec<String>,
    /// Outbound host names or addresses (configured and learned),
    /// lowercased.
    pub hosts: Vec<String>,
}

impl Own {
    /// From the user's addresses, configured hosts and learned hosts.
    pub fn new(addresses: &[String], configured: &[String], learned: &[String]) -> Own {
        let mut domains: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        domains.sort();
        domains.dedup();
        let mut hosts: Vec<String> = configured
            .iter()
            .chain(learned)
            .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        hosts.sort();
        hosts.dedup();
        Own { domains, hosts }
    }

    fn own_host(&self, e: &Evidence) -> Option<String> {
        e.hosts().find(|h| self.hosts.contains(h))
    }

    fn own_signature(&self, e: &Evidence) -> Option<String> {
        e.dkim_domains
            .iter()
            .find(|d| {
                self.domains
                    .iter()
                    .any(|o| *d == o || d.ends_with(&format!(".{o}")))
            })
            .cloned()
    }
}

/// The verdict about a flood's origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "case", rename_all = "snake_case")]
pub enum Assessment {
    /// The user's address is forged on mail sent from elsewhere.
    Forged {
        originals: usize,
        networks: usize,
        /// The most frequent first external networks, with counts.
        top_networks: Vec<(String, usize)>,
        /// Whether any outbound host of the user's is known to compare with.
        hosts_known: bool,
        /// Originals that did pass through the user's servers, too few
        /// (under a tenth) to mean a compromise.
        through_own: usize,
    },
    /// Some originals went through the user's own server, or carry the
    /// user's DKIM signature.
    OwnServer {
        /// The user's host the originals passed through, or
        /// `DKIM d=DOMAIN` when only the signature ties them to the user.
        host: String,
        /// Originals that did.
        through: usize,
        originals: usize,
        signed: usize,
        /// A PHP script named by `X-PHP-Originating-Script`, if any.
        script: Option<String>,
        sample_subject: Option<String>,
    },
    /// No response quoted enough of its original to tell.
    Unknown { responses: usize },
}

impl Assessment {
    /// The compromise case: needs action within minutes.
    pub fn is_own_server(&self) -> bool {
        matches!(self, Assessment::OwnServer { .. })
    }
}

/// Weigh the evidence of every quarantined response. `responses` is how
/// many responses were looked at (some quote no original).
pub fn assess(evidence: &[Evidence], own: &Own, responses: usize) -> Assessment {
    let with: Vec<&Evidence> = evidence.iter().filter(|e| !e.is_empty()).collect();
    if with.is_empty() {
        return Assessment::Unknown { responses };
    }
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    let mut through = 0;
    let mut signed = 0;
    let mut sample = None;
    let mut script = None;
    for e in &with {
        let host = own.own_host(e);
        let sig = own.own_signature(e);
        if let Some(h) = &host {
            *hosts.entry(h.clone()).or_default() += 1;
        }
        if sig.is_some() {
            signed += 1;
        }
        if host.is_some() || sig.is_some() {
            through += 1;
            if sample.is_none() {
                sample = e.subject.clone();
            }
            if script.is_none() {
                script = e.script.clone();
            }
        }
    }
    // A few of the user's own bounces (mail older than the sent window)
    // can land in quarantine: a compromise shows in a tenth or more.
    if through > 0 && through * 10 >= with.len() {
        let host = hosts
            .iter()
            .max_by_key(|(h, n)| (**n, std::cmp::Reverse((*h).clone())))
            .map(|(h, _)| h.clone())
            .unwrap_or_else(|| {
                let d = with
                    .iter()
                    .find_map(|e| own.own_signature(e))
                    .unwrap_or_default();
                format!("DKIM d={d}")
            });
        return Assessment::OwnServer {
            host,
            through,
            originals: with.len(),
            signed,
            script,
            sample_subject: sample,
        };
    }
    let mut nets: BTreeMap<String, usize> = BTreeMap::new();
    for e in &with {
        if let Some(ip) = e.first_external().and_then(|h| h.ip) {
            *nets.entry(network(ip)).or_default() += 1;
        }
    }
    let mut top: Vec<(String, usize)> = nets.iter().map(|(k, v)| (k.clone(), *v)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    Assessment::Forged {
        originals: with.len(),
        networks: nets.len(),
        top_networks: top,
        hosts_known: !own.hosts.is_empty(),
        through_own: through,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Assessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assessment::Forged {
                originals,
                networks,
                top_networks,
                hosts_known,
                through_own,
            } => {
                write!(
                    f,
                    "forged: {} from {}, ",
                    plural(*originals, "original", "originals"),
                    plural(*networks, "distinct network", "distinct networks"),
                )?;
                if *through_own == 0 {
                    write!(
                        f,
                        "none through your servers{}, none signed by your domain",
                        if *hosts_known {
                            ""
                        } else {
                            " (none known yet: set outbound-hosts to be sure)"
                        }
                    )?;
                } else {
                    write!(
                        f,
                        "only {through_own} through your servers or signed by your domain (too few for a compromise: likely bounces of your own older mail)"
                    )?;
                }
                if !top_networks.is_empty() {
                    let t: Vec<String> = top_networks
                        .iter()
                        .map(|(n, c)| format!("{n} ({c})"))
                        .collect();
                    write!(f, "; most from {}", t.join(", "))?;
                }
                write!(
                    f,
                    ". Somebody is forging your address: publish SPF (-all), sign with DKIM and set DMARC to p=reject; it usually stops within days."
                )
            }
            Assessment::OwnServer {
                host,
                through,
                originals,
                signed,
                script,
                sample_subject,
            } => {
                write!(
                    f,
                    "sent through your own server {host}: a compromised account, web form or script is the likely cause ({through} of {} passed through your servers or carry your DKIM signature, {signed} signed by your domain",
                    plural(*originals, "original", "originals"),
                )?;
                if let Some(s) = script {
                    write!(f, "; sent by the script {}", clean_text(s))?;
                }
                if let Some(s) = sample_subject {
                    write!(f, "; e.g. \"{}\"", clean_text(s))?;
                }
                write!(
                    f,
                    "). Act now: change the passwords, disable the form or script, check the server's mail queue."
                )
            }
            Assessment::Unknown { responses } => write!(
                f,
                "origin unknown: none of the {} quotes the headers of its original",
                plural(*responses, "response", "responses")
            ),
        }
    }
}

/// Control characters out, length bounded: text from mail shown to the user.
pub fn clean_text(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.trim();
    if s.chars().count() > 80 {
        let mut t: String = s.chars().take(79).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rel: &str) -> Evidence {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel);
        let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        evidence(&raw).unwrap_or_else(|| panic!("{rel}: no original found"))
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn received_lines() {
        let h = parse_received(
            "from pixel1.example.com (pixel1 [104.207.134.97]) by tr2.example.com (Postfix) with ESMTPA id D9E933966464 for <r@cox.net>; Thu,  2 Jul 2020 06:04:42 -0400 (EDT)",
        );
        assert_eq!(h.from.as_deref(), Some("pixel1.example.com"));
        assert_eq!(h.ip, Some("104.207.134.97".parse().unwrap()));
        assert_eq!(h.by.as_deref(), Some("tr2.example.com"));
        assert!(h.authenticated());
        let h = parse_received("by mail.example.co.jp (Postfix, from userid 2202) id d1BG; Thu, 29 Apr 2019 23:34:45 +0900");
        assert_eq!((h.from, h.ip), (None, None));
        assert_eq!(h.by.as_deref(), Some("mail.example.co.jp"));
        // Exim: the address first, the HELO name in the comment.
        let h = parse_received("from [82.138.248.236] (helo=bacchus.thegestalt.org) by bacchus.thegestalt.org with esmtp (Exim 4.50)");
        assert_eq!(h.ip, Some("82.138.248.236".parse().unwrap()));
        assert_eq!(h.from_rdns, None);
        let h = parse_received("from mail.example.net ([IPv6:2001:db8::25]) by mx.example.org");
        assert_eq!(h.ip, Some("2001:db8::25".parse().unwrap()));
        assert_eq!(network(h.ip.unwrap()), "2001:db8:0::/48");
        assert!(!is_public("10.1.2.3".parse().unwrap()));
        assert!(!is_public("100.64.0.1".parse().unwrap()));
        assert!(!is_public("fe80::1".parse().unwrap()));
        // Garbage is an empty hop, not a panic.
        assert_eq!(parse_received("((((["), Hop::default());
    }

    /// Real bounces of forged mail (a joe job). cpython msg_43 (PSF
    /// licence): a Barracuda "banned file" notice for a worm that forged
    /// webmaster@python.org, sent from a DSL line. rt multipart-report (RT's
    /// tests, GPL-2) and imap-tools report_422 (Apache-2.0): originals
    /// submitted from a DSL line and from a machine with a random HELO name.
    /// None passed through python.org's mail host.
    #[test]
    fn forged_originals_from_many_networks() {
        let e = [
            sample("tests/fixtures/extra/cpython/msg_43.eml"),
            sample("tests/fixtures/extra/rt/multipart-report.eml"),
            sample("tests/fixtures/extra/imap-tools/multipart_report_emails-report_422.eml"),
        ];
        let first = e[0].first_external().unwrap();
        assert_eq!(
            first.from_rdns.as_deref(),
            Some("ppp-70-242-162-63.dsl.spfdmo.swbell.net")
        );
        assert_eq!(e[0].subject.as_deref(), Some("Delivery_failure_notice"));
        let own = Own::new(&s(&["webmaster@python.org"]), &s(&["mail.python.org"]), &[]);
        let a = assess(&e, &own, 3);
        assert!(!a.is_own_server());
        let Assessment::Forged {
            originals,
            networks,
            ..
        } = &a
        else {
            panic!("{a:?}")
        };
        assert_eq!((*originals, *networks), (3, 3));
        let words = a.to_string();
        assert!(
            words.starts_with("forged: 3 originals from 3 distinct networks, none through your servers, none signed by your domain"),
            "{words}"
        );
        assert!(words.contains("70.242.162.0/24"), "{words}");
        // With no outbound host known the verdict says so.
        let a = assess(&e, &Own::new(&s(&["webmaster@python.org"]), &[], &[]), 3);
        assert!(a.to_string().contains("set outbound-hosts"), "{a}");
    }

    /// Real bounces (Sisimai set-of-emails, BSD-2-Clause) of mail a PHP
    /// script sent: rhost-cox-01 (text/rfc822-headers: `X-PHP-Originating-
    /// Script: 501:phpmailer.php` on pixel1.example.com, relayed by
    /// tr2.example.com, DKIM d=example.com). As the bounce of the owner of
    /// example.com with tr2.example.com configured as outbound host, it is
    /// the compromise case, with the host, the script and the subject.
    #[test]
    fn script_on_own_server() {
        let e = [sample("tests/corpus/sisimai/bsd/rhost-cox-01.eml")];
        assert_eq!(e[0].script.as_deref(), Some("501:phpmailer.php"));
        assert_eq!(e[0].dkim_domains, vec!["example.com"]);
        let own = Own::new(&s(&["me@example.com"]), &s(&["TR2.example.com"]), &[]);
        let a = assess(&e, &own, 1);
        assert!(a.is_own_server());
        let words = a.to_string();
        assert!(
            words.starts_with("sent through your own server tr2.example.com: a compromised account, web form or script is the likely cause"),
            "{words}"
        );
        assert!(
            words.contains("phpmailer.php") && words.contains("Take down your patio umbrella"),
            "{words}"
        );
        // Without a known host, the user's own DKIM signature is enough.
        let a = assess(&e, &Own::new(&s(&["me@example.com"]), &[], &[]), 1);
        assert!(
            a.to_string()
                .starts_with("sent through your own server DKIM d=example.com"),
            "{a}"
        );
        // One among many forged originals is not a compromise.
        let mut many = vec![e[0].clone()];
        many.extend((0..12).map(|_| sample("tests/fixtures/extra/cpython/msg_43.eml")));
        let a = assess(&many, &own, 13);
        assert!(!a.is_own_server(), "{a}");
        assert!(a.to_string().contains("only 1 through your servers"), "{a}");
        // Someone else's signature is not.
        let a = assess(&e, &Own::new(&s(&["me@example.org"]), &[], &[]), 1);
        assert!(!a.is_own_server(), "{a}");
    }

    /// The outbound host learned from a legitimate bounce: Sisimai
    /// rhost-iua-01's original was handed to mail.example.co.jp by a local
    /// user (`from userid 2022`); lhost-postfix-59's original went the same
    /// way (`from userid 2202`: another account on the same server).
    #[test]
    fn outbound_host_learned_from_legitimate_bounces() {
        let legit = sample("tests/corpus/sisimai/bsd/rhost-iua-01.eml");
        let learned = learn_outbound_hosts([&legit]);
        assert_eq!(learned, vec!["mail.example.co.jp"]);
        let mut local = legit.clone();
        local.hops.last_mut().unwrap().by = Some("lb-ex1.localdomain".into());
        assert!(learn_outbound_hosts([&local]).is_empty());
        // The user's server handing a message straight to the recipient's
        // MX (Sisimai lhost-outlook-06: one hop, from a public address):
        // the sender is learned, not the foreign MX.
        let direct = sample("tests/corpus/sisimai/bsd/lhost-outlook-06.eml");
        assert_eq!(
            learn_outbound_hosts([&direct]),
            Vec::<String>::new(),
            "bay182-w41 is no host name, and bay004-omc1s18.hotmail.com is not the sender's"
        );
        // Real mail submitted through Gmail (Sisimai lhost-gmail-01: `by
        // mx.google.com with ESMTPSA`): Gmail's hosts are everyone's, never
        // learned as the user's.
        let gmail = sample("tests/corpus/sisimai/bsd/lhost-gmail-01.eml");
        assert!(
            gmail
                .hops
                .last()
                .and_then(|h| h.by.as_deref())
                .is_some_and(is_shared_provider_host),
            "{gmail:?}"
        );
        assert_eq!(learn_outbound_hosts([&gmail]), Vec::<String>::new());
        assert!(is_shared_provider_host("SMTP.Gmail.com."));
        assert!(!is_shared_provider_host("notgmail.com"));
        let relayed = sample("tests/corpus/sisimai/bsd/lhost-einsundeins-03.eml");
        assert_eq!(
            learn_outbound_hosts([&relayed]),
            vec!["regiesmtp1792-2.odiso.net"]
        );
        let own = Own::new(&s(&["neko@example.co.jp"]), &[], &learned);
        let q = [sample("tests/corpus/sisimai/bsd/lhost-postfix-59.eml")];
        let a = assess(&q, &own, 1);
        assert!(
            a.to_string()
                .starts_with("sent through your own server mail.example.co.jp"),
            "{a}"
        );
    }

    #[test]
    fn quoted_text_and_nothing() {
        // qmail quotes the original in the text (Sisimai lhost-qmail-04).
        let e = sample("tests/corpus/sisimai/bsd/lhost-qmail-04.eml");
        assert!(!e.hops.is_empty(), "{e:?}");
        // Hand-written: a response without any original.
        let raw = b"From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\n\r\nSorry.\r\n";
        assert_eq!(evidence(raw), None);
        assert_eq!(
            assess(&[], &Own::default(), 4).to_string(),
            "origin unknown: none of the 4 responses quotes the headers of its original"
        );
        assert_eq!(evidence(b"\xff\xfe\0garbage"), None);
    }
}
