//! Finding an account's servers from its address, for `account add`, in
//! this order: the known providers' published settings ([`preset`]), RFC
//! 6186 SRV records ([`srv_order`], [`srv_servers`]; RFC 5804 `_sieve._tcp`
//! for ManageSieve), then a Mozilla-style autoconfig file
//! ([`autoconfig_urls`], [`parse_autoconfig`]). Everything here is pure:
//! the DNS queries and HTTPS fetches are in [`crate::discover_net`].
//! Also the config block written for a new account (pure text, checked by
//! the config parser).

use crate::config::TlsMode;

/// One server: host, port and how TLS is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

/// What to log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginName {
    /// The whole address (`me@example.org`): most providers.
    Address,
    /// The part before `@` (iCloud accepts it; the address works too for
    /// most accounts, so only a hint).
    LocalPart,
}

/// A provider's published IMAP (and ManageSieve, where offered) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The provider's name, for messages (`Gmail`).
    pub provider: &'static str,
    pub imap: Endpoint,
    /// ManageSieve (RFC 5804); None where the provider offers none.
    pub sieve: Option<Endpoint>,
    pub login: LoginName,
    /// What the user must know to log in (app passwords, OAuth2, Bridge).
    pub note: Option<&'static str>,
}

fn ep(host: &str, port: u16, tls: TlsMode) -> Endpoint {
    Endpoint {
        host: host.into(),
        port,
        tls,
    }
}

/// The provider preset for an address's domain (case-insensitive), or None.
///
/// Settings as the providers publish them for IMAP clients: Gmail, Outlook
/// / Microsoft 365, Fastmail, iCloud, Yahoo, mailbox.org, Proton (through
/// Proton Mail Bridge on the user's own machine), GMX, web.de and Zoho.
/// Only mailbox.org offers ManageSieve among them.
pub fn preset(address: &str) -> Option<Preset> {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    use TlsMode::{Implicit, Starttls};
    let p = |provider, imap, sieve, note| Preset {
        provider,
        imap,
        sieve,
        login: LoginName::Address,
        note,
    };
    // Each preset: the provider's own page, then the same settings in
    // Thunderbird's ISPDB (github.com/thunderbird/autoconfig, ispdb/FILE at
    // c6ad796, checked 2026-11-30).
    Some(match domain.as_str() {
        // developers.google.com/gmail/imap/imap-smtp; ISPDB googlemail.com.xml
        "gmail.com" | "googlemail.com" => p(
            "Gmail",
            ep("imap.gmail.com", 993, Implicit),
            None,
            Some("Gmail needs an app password (Google account > Security > 2-Step Verification > App passwords), or auth = \"xoauth2\" with a token command"),
        ),
        // support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040
        // (OAuth2 / Modern Auth only); ISPDB hotmail.com.xml
        "outlook.com" | "hotmail.com" | "live.com" | "msn.com" | "outlook.de"
        | "hotmail.de" | "hotmail.co.uk" | "live.de" => p(
            "Outlook / Microsoft 365",
            ep("outlook.office365.com", 993, Implicit),
            None,
            Some("Microsoft accepts OAuth2 only: set auth = \"xoauth2\" and a password command that prints a fresh access token"),
        ),
        // fastmail.help/hc/en-us/articles/1500000278342 (server names and
        // ports); ISPDB messagingengine.com.xml
        "fastmail.com" | "fastmail.fm" | "fastmail.net" | "fastmail.org" | "fastmail.to"
        | "sent.com" | "messagingengine.com" => p(
            "Fastmail",
            ep("imap.fastmail.com", 993, Implicit),
            None,
            Some("Fastmail needs an app password (Settings > Privacy & Security > Integrations)"),
        ),
        // support.apple.com/en-us/102525 (the login is the name part of the
        // address; the whole address where that fails); ISPDB me.com.xml
        "icloud.com" | "me.com" | "mac.com" => Preset {
            login: LoginName::LocalPart,
            ..p(
                "iCloud",
                ep("imap.mail.me.com", 993, Implicit),
                None,
                Some("iCloud needs an app-specific password (appleid.apple.com > Sign-In and Security)"),
            )
        },
        // help.yahoo.com/kb/SLN4075.html; ISPDB yahoo.com.xml
        "yahoo.com" | "yahoo.co.uk" | "yahoo.de" | "yahoo.fr" | "ymail.com"
        | "rocketmail.com" => p(
            "Yahoo",
            ep("imap.mail.yahoo.com", 993, Implicit),
            None,
            Some("Yahoo needs an app password (Account security > Generate app password)"),
        ),
        // kb.mailbox.org (e-mail configuration: IMAP 993 SSL/TLS; ManageSieve
        // on imap.mailbox.org:4190 with STARTTLS); ISPDB mailbox.org.xml
        "mailbox.org" => p(
            "mailbox.org",
            ep("imap.mailbox.org", 993, Implicit),
            Some(ep("imap.mailbox.org", 4190, Starttls)),
            None,
        ),
        // proton.me/support/imap-smtp-and-pop3-setup (Bridge's defaults:
        // 127.0.0.1, IMAP 1143 with STARTTLS; the port can be changed in
        // Bridge); not in the ISPDB
        "proton.me" | "protonmail.com" | "protonmail.ch" | "pm.me" => p(
            "Proton Mail (through Proton Mail Bridge)",
            ep("127.0.0.1", 1143, Starttls),
            None,
            Some("Proton Mail Bridge must run; use the password Bridge shows (not your Proton password), and export its certificate (Bridge > Settings > Export TLS certificates) to tls-ca-file"),
        ),
        // support.gmx.com/pop-imap/imap/outlook.html and hilfe.gmx.net
        // (IMAP: imap.gmx.net 993 SSL); ISPDB gmx.net.xml
        "gmx.de" | "gmx.net" | "gmx.at" | "gmx.ch" => p(
            "GMX",
            ep("imap.gmx.net", 993, Implicit),
            None,
            Some("GMX: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
        // support.gmx.com/pop-imap/imap (imap.gmx.com 993); ISPDB gmx.com.xml
        "gmx.com" | "gmx.us" | "gmx.co.uk" | "gmx.fr" => p(
            "GMX",
            ep("imap.gmx.com", 993, Implicit),
            None,
            Some("GMX: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
        // hilfe.web.de/pop-imap/imap/imap-serverdaten.html; ISPDB web.de.xml
        // (which logs in with the local part; the address works too)
        "web.de" => p(
            "WEB.DE",
            ep("imap.web.de", 993, Implicit),
            None,
            Some("WEB.DE: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
        // zoho.com/mail/help/imap-access.html (personal: imap.zoho.com,
        // organisations: imappro.zoho.com; .eu for the EU data centre);
        // ISPDB zoho.com.xml, zoho.eu.xml
        "zoho.com" | "zohomail.com" => p(
            "Zoho Mail",
            ep("imap.zoho.com", 993, Implicit),
            None,
            Some("Zoho: enable IMAP access (Settings > Mail Accounts); accounts of an organisation use imappro.zoho.com"),
        ),
        "zoho.eu" | "zohomail.eu" => p(
            "Zoho Mail",
            ep("imap.zoho.eu", 993, Implicit),
            None,
            Some("Zoho: enable IMAP access (Settings > Mail Accounts); accounts of an organisation use imappro.zoho.eu"),
        ),
        _ => return None,
    })
}

/// One SRV resource record (RFC 2782): `_service._proto.domain SRV
/// priority weight port target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of the same priority (0: rarely).
    pub weight: u16,
    pub port: u16,
    /// The host, without the trailing dot; `""` (the root, `.`) means "the
    /// service is decidedly not available at this domain".
    pub target: String,
}

/// The order in which to try an SRV answer's records (RFC 2782, "Usage
/// rules"): by ascending priority; within one priority, a weighted random
/// order (zero-weight records first in the running sum, so they are rarely
/// chosen first). `random(n)` must return a number in `0..=n`; it makes the
/// order reproducible in tests. A lone record whose target is `.` means the
/// service is not offered: the answer is then empty.
pub fn srv_order(records: &[SrvRecord], random: &mut dyn FnMut(u32) -> u32) -> Vec<SrvRecord> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    let mut by_priority: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !r.target.trim_end_matches('.').is_empty())
        .cloned()
        .collect();
    by_priority.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(by_priority.len());
    for group in by_priority.chunk_by(|a, b| a.priority == b.priority) {
        let mut left: Vec<SrvRecord> = group.to_vec();
        // Zero weights first, as the RFC's selection algorithm says.
        left.sort_by_key(|r| r.weight != 0);
        while !left.is_empty() {
            let total: u32 = left.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total).min(total);
            let mut sum = 0u32;
            let i = left
                .iter()
                .position(|r| {
                    sum += u32::from(r.weight);
                    sum >= pick
                })
                .unwrap_or(0);
            out.push(left.remove(i));
        }
    }
    out
}

/// Where the SRV records say the IMAP and ManageSieve servers are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SrvServers {
    /// The first IMAP server to try.
    pub imap: Option<Endpoint>,
    /// The first ManageSieve server to try.
    pub sieve: Option<Endpoint>,
}

/// The servers named by the (already ordered, see [`srv_order`]) answers
/// for `_imaps._tcp` (implicit TLS), `_imap._tcp` (STARTTLS) and
/// `_sieve._tcp` (RFC 5804, STARTTLS).
///
/// RFC 6186 §3.4 lets the priorities of `_imap` and `_imaps` records be
/// compared with each other; on a tie, implicit TLS is preferred (RFC 8314
/// §5.1). A record with port 0 is skipped.
pub fn srv_servers(imaps: &[SrvRecord], imap: &[SrvRecord], sieve: &[SrvRecord]) -> SrvServers {
    let end = |r: &SrvRecord, tls| Endpoint {
        host: r.target.trim_end_matches('.').to_string(),
        port: r.port,
        tls,
    };
    let first_s = imaps.iter().find(|r| r.port != 0);
    let first_p = imap.iter().find(|r| r.port != 0);
    let imap = match (first_s, first_p) {
        (Some(s), Some(p)) if p.priority < s.priority => Some(end(p, TlsMode::Starttls)),
        (Some(s), _) => Some(end(s, TlsMode::Implicit)),
        (None, Some(p)) => Some(end(p, TlsMode::Starttls)),
        (None, None) => None,
    };
    let sieve = sieve
        .iter()
        .find(|r| r.port != 0)
        .map(|r| end(r, TlsMode::Starttls));
    SrvServers { imap, sieve }
}

/// The autoconfig URLs to try for an address, in order (the steps of
/// Thunderbird's lookup that ask the mail domain itself): the domain's
/// `autoconfig.` host, then its `.well-known` path. HTTPS only: settings
/// fetched over plain HTTP could send the password to anyone on the path.
/// The address is percent-encoded into the query, as Thunderbird sends it.
pub fn autoconfig_urls(address: &str) -> Vec<String> {
    let domain = domain_of(address);
    let mut enc = String::new();
    for b in address.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    vec![
        format!("https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={enc}"),
        format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]
}

/// The lower-case domain of an address, without a trailing dot.
pub fn domain_of(address: &str) -> String {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The IMAP settings in an autoconfig file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoConfig {
    /// `<displayName>` of the provider, if given.
    pub provider: Option<String>,
    pub imap: Endpoint,
    /// The login name with `%EMAILADDRESS%`, `%EMAILLOCALPART%` and
    /// `%EMAILDOMAIN%` filled in; None when the file gives none.
    pub username: Option<String>,
}

/// Reads a Mozilla autoconfig file (`config-v1.1.xml`, the format of
/// Thunderbird's ISPDB) for `address`: the first `<incomingServer
/// type="imap">` with `socketType` `SSL` (implicit TLS) or `STARTTLS`, in
/// the file's order of preference. Servers without TLS are skipped (the
/// config allows plaintext only to loopback).
///
/// Errors (one sentence): not XML, not an autoconfig file, or no IMAP
/// server with TLS in it.
pub fn parse_autoconfig(xml: &str, address: &str) -> Result<AutoConfig, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("it is not XML ({e})"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "clientConfig" {
        return Err(format!(
            "it is not an autoconfig file (its root element is <{}>, not <clientConfig>)",
            root.tag_name().name()
        ));
    }
    let provider = root
        .children()
        .find(|n| n.has_tag_name("emailProvider"))
        .ok_or("it has no <emailProvider>")?;
    let text = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let (local, domain) = address.trim().rsplit_once('@').unwrap_or((address, ""));
    let fill = |t: String| {
        t.replace("%EMAILADDRESS%", address.trim())
            .replace("%EMAILLOCALPART%", local)
            .replace("%EMAILDOMAIN%", domain)
    };
    for server in provider
        .children()
        .filter(|n| n.has_tag_name("incomingServer") && n.attribute("type") == Some("imap"))
    {
        let tls = match text(server, "socketType").as_deref() {
            Some("SSL") => TlsMode::Implicit,
            Some("STARTTLS") => TlsMode::Starttls,
            _ => continue,
        };
        let Some(host) = text(server, "hostname").map(fill) else {
            continue;
        };
        let port = match text(server, "port") {
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => continue,
            },
            None if tls == TlsMode::Implicit => 993,
            None => 143,
        };
        return Ok(AutoConfig {
            provider: text(provider, "displayName"),
            imap: Endpoint { host, port, tls },
            username: text(server, "username").map(fill),
        });
    }
    Err("it names no IMAP server reached over TLS".into())
}

/// Where the password comes from, as the config says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `password.keyring = true`.
    Keyring,
    /// `password.command = [...]`: the program and its arguments.
    Command(Vec<String>),
    /// `password.env = "VAR"`.
    Env(String),
}

/// A new account, as `account add` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The `[accounts.NAME]` table name.
    pub name: String,
    pub address: String,
    pub imap: Endpoint,
    pub tls_ca_file: Option<String>,
    pub username: String,
    pub password: Password,
    /// ManageSieve, where known; None leaves the defaults (the IMAP host,
    /// port 4190, STARTTLS).
    pub sieve: Option<Endpoint>,
    /// `default = true` (the first account of a new file).
    pub default: bool,
    /// Where the settings came from, for the comment (`Gmail preset`).
    pub source: String,
}

/// A TOML basic string (quotes and escapes).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn tls_word(t: TlsMode) -> &'static str {
    match t {
        TlsMode::Implicit => "implicit",
        TlsMode::Starttls => "starttls",
        TlsMode::Plain => "plain",
    }
}

/// The `[accounts.NAME]` block for a new account, with comments; the text
/// parses as a config on its own (see the tests).
pub fn account_block(a: &NewAccount) -> String {
    let mut s = String::new();
    let key = if a
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        a.name.clone()
    } else {
        q(&a.name)
    };
    s.push_str(&format!(
        "# {} — added by `backscatter account add` ({}).\n",
        a.address, a.source
    ));
    s.push_str(&format!("[accounts.{key}]\n"));
    if a.default {
        s.push_str("default = true\n");
    }
    s.push_str(&format!("host = {}\n", q(&a.imap.host)));
    s.push_str(&format!("port = {}\n", a.imap.port));
    s.push_str(&format!(
        "tls = {}                 # implicit | starttls | plain (loopback only)\n",
        q(tls_word(a.imap.tls))
    ));
    if let Some(ca) = &a.tls_ca_file {
        s.push_str(&format!("tls-ca-file = {}\n", q(ca)));
    }
    s.push_str(&format!("username = {}\n", q(&a.username)));
    s.push_str(&format!(
        "addresses = [{}]   # your own addresses (add aliases)\n",
        q(&a.address)
    ));
    match &a.password {
        Password::Keyring => s.push_str(
            "password.keyring = true          # stored with `backscatter account login`\n",
        ),
        Password::Command(argv) => s.push_str(&format!(
            "password.command = [{}]\n",
            argv.iter().map(|x| q(x)).collect::<Vec<_>>().join(", ")
        )),
        Password::Env(v) => s.push_str(&format!("password.env = {}\n", q(v))),
    }
    s.push_str(
        "# quarantine = \"Backscatter\"      # where backscatter is moved (created on demand)\n",
    );
    s.push_str("# sent = [\"Sent\"]                 # default: the mailboxes marked \\Sent\n");
    if let Some(sv) = &a.sieve {
        s.push_str(&format!("\n[accounts.{key}.sieve]            # ManageSieve (RFC 5804), for `backscatter sieve`\n"));
        s.push_str(&format!("host = {}\n", q(&sv.host)));
        s.push_str(&format!("port = {}\n", sv.port));
        if sv.tls != TlsMode::Starttls {
            s.push_str(&format!("tls = {}\n", q(tls_word(sv.tls))));
        }
    }
    s
}

/// The config file after adding `block` to `existing` (None: no file yet):
/// the existing text unchanged, then the block. A new file starts with a
/// header comment.
pub fn append_block(existing: Option<&str>, block: &str) -> String {
    match existing {
        None => format!(
            "# backscatter configuration. Every key: `backscatter config sample`.\n\n{block}"
        ),
        Some(old) => {
            let mut s = old.to_string();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(block);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn presets_by_domain() {
        let g = preset("Someone@GMail.com").unwrap();
        assert_eq!(g.imap, ep("imap.gmail.com", 993, TlsMode::Implicit));
        assert_eq!(g.sieve, None);
        let m = preset("me@mailbox.org").unwrap();
        assert_eq!(
            m.sieve,
            Some(ep("imap.mailbox.org", 4190, TlsMode::Starttls))
        );
        assert_eq!(preset("x@icloud.com").unwrap().login, LoginName::LocalPart);
        assert_eq!(preset("x@pm.me").unwrap().imap.host, "127.0.0.1");
        assert_eq!(preset("x@gmx.de").unwrap().imap.host, "imap.gmx.net");
        assert_eq!(preset("x@web.de").unwrap().imap.host, "imap.web.de");
        assert!(preset("me@example.org").is_none());
        for d in [
            "gmail.com",
            "outlook.com",
            "fastmail.com",
            "icloud.com",
            "yahoo.com",
            "mailbox.org",
            "proton.me",
            "gmx.net",
            "web.de",
            "zoho.com",
        ] {
            let p = preset(&format!("a@{d}")).unwrap_or_else(|| panic!("{d}"));
            assert!(p.imap.port == 993 || p.imap.host == "127.0.0.1", "{d}");
        }
    }

    fn sample(name: &str) -> NewAccount {
        NewAccount {
            name: name.into(),
            address: "me@mailbox.org".into(),
            imap: ep("imap.mailbox.org", 993, TlsMode::Implicit),
            tls_ca_file: None,
            username: "me@mailbox.org".into(),
            password: Password::Command(vec!["pass".into(), "show".into(), "mail \"x\"".into()]),
            sieve: Some(ep("imap.mailbox.org", 4190, TlsMode::Starttls)),
            default: true,
            source: "mailbox.org preset".into(),
        }
    }

    #[test]
    fn the_block_is_a_valid_config() {
        let text = append_block(None, &account_block(&sample("home")));
        let c = crate::config::parse(&text, Path::new("new.toml")).unwrap();
        let a = c.account(Some("home")).unwrap();
        assert_eq!(a.imap.host, "imap.mailbox.org");
        assert_eq!(a.imap.port, 993);
        assert_eq!(a.sieve.port, 4190);
        assert!(text.starts_with("# backscatter configuration"));
        // A name that needs quoting, and a keyring password.
        let mut b = sample("my mail");
        b.password = Password::Keyring;
        b.sieve = None;
        let text = append_block(None, &account_block(&b));
        let c = crate::config::parse(&text, Path::new("new.toml")).unwrap();
        assert!(c.account(Some("my mail")).is_ok(), "{text}");
    }

    #[test]
    fn appending_keeps_the_existing_config() {
        let old = "# my notes\n[accounts.work]\nhost = \"imap.example.org\"\nusername = \"w\"\npassword.env = \"PW\"";
        let mut b = sample("home");
        b.default = false;
        let text = append_block(Some(old), &account_block(&b));
        assert!(text.starts_with(old), "{text}");
        let c = crate::config::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert!(c.account(Some("work")).is_ok() && c.account(Some("home")).is_ok());
    }
    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    #[test]
    fn srv_records_go_by_priority_then_weight() {
        let answer = [
            rec(20, 0, 993, "backup.example.org."),
            rec(10, 60, 993, "a.example.org."),
            rec(10, 40, 993, "b.example.org."),
            rec(10, 0, 993, "zero.example.org."),
        ];
        let targets = |random: &mut dyn FnMut(u32) -> u32| -> Vec<String> {
            srv_order(&answer, random)
                .into_iter()
                .map(|r| r.target)
                .collect()
        };
        // Running sums in priority 10: zero 0, a 60, b 100. A draw of 0
        // picks the zero-weight record (RFC 2782), 1..=60 `a`, 61..=100 `b`.
        let mut low = |_n: u32| 0;
        assert_eq!(
            targets(&mut low),
            [
                "zero.example.org.",
                "a.example.org.",
                "b.example.org.",
                "backup.example.org."
            ]
        );
        let mut high = |n: u32| n;
        assert_eq!(
            targets(&mut high),
            [
                "b.example.org.",
                "a.example.org.",
                "zero.example.org.",
                "backup.example.org."
            ]
        );
        // Over many fair draws, `a` comes first about 60% of the time.
        let mut seed = 12345u64;
        let mut lcg = |n: u32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % (u64::from(n) + 1)) as u32
        };
        let a_first = (0..2000)
            .filter(|_| srv_order(&answer, &mut lcg)[0].target == "a.example.org.")
            .count();
        assert!((1000..1400).contains(&a_first), "{a_first}");
        // "." alone: the service is decidedly not offered.
        assert!(srv_order(&[rec(0, 0, 0, ".")], &mut low).is_empty());
        assert!(srv_order(&[], &mut low).is_empty());
    }

    #[test]
    fn srv_servers_prefer_implicit_tls_on_a_tie() {
        let s = srv_servers(
            &[rec(0, 1, 993, "mail.example.org.")],
            &[rec(0, 1, 143, "mail.example.org.")],
            &[rec(0, 1, 4190, "sieve.example.org.")],
        );
        assert_eq!(s.imap, Some(ep("mail.example.org", 993, TlsMode::Implicit)));
        assert_eq!(
            s.sieve,
            Some(ep("sieve.example.org", 4190, TlsMode::Starttls))
        );
        // A better (lower) priority for STARTTLS wins (RFC 6186 §3.4).
        let s = srv_servers(
            &[rec(10, 1, 993, "imaps.example.org.")],
            &[rec(5, 1, 143, "imap.example.org.")],
            &[],
        );
        assert_eq!(s.imap, Some(ep("imap.example.org", 143, TlsMode::Starttls)));
        assert_eq!(s.sieve, None);
        // Port 0 is no server.
        assert_eq!(
            srv_servers(&[rec(0, 0, 0, "x.")], &[], &[]),
            SrvServers::default()
        );
    }

    #[test]
    fn autoconfig_urls_ask_the_domain() {
        assert_eq!(
            autoconfig_urls("Me+x@Example.ORG"),
            [
                "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=Me%2Bx%40Example.ORG",
                "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml",
            ]
        );
    }

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/autoconfig")
            .join(name);
        std::fs::read_to_string(&p).unwrap()
    }

    #[test]
    fn autoconfig_files_from_the_ispdb() {
        // GMX: implicit TLS listed first, then STARTTLS: the first is taken.
        let a = parse_autoconfig(&fixture("gmx.net.xml"), "jo@gmx.net").unwrap();
        assert_eq!(a.imap, ep("imap.gmx.net", 993, TlsMode::Implicit));
        assert_eq!(a.username.as_deref(), Some("jo@gmx.net"));
        assert_eq!(a.provider.as_deref(), Some("GMX Freemail"));
        // UOL: POP3 first (skipped), the login name is the local part.
        let a = parse_autoconfig(&fixture("uol.com.br.xml"), "ana@uol.com.br").unwrap();
        assert_eq!(a.imap, ep("imap.uol.com.br", 993, TlsMode::Implicit));
        assert_eq!(a.username.as_deref(), Some("ana"));
    }

    #[test]
    fn autoconfig_without_a_usable_server_is_an_error() {
        // Hand-written: plaintext IMAP only, then a broken port.
        let plain = r#"<clientConfig version="1.1"><emailProvider id="x">
            <incomingServer type="imap"><hostname>imap.x.org</hostname><port>143</port>
            <socketType>plain</socketType></incomingServer>
            <incomingServer type="imap"><hostname>imap.x.org</hostname><port>99999</port>
            <socketType>SSL</socketType></incomingServer>
            <incomingServer type="imap"><hostname>imap2.x.org</hostname>
            <socketType>STARTTLS</socketType><username>%EMAILDOMAIN%\%EMAILLOCALPART%</username></incomingServer>
            </emailProvider></clientConfig>"#;
        let a = parse_autoconfig(plain, "me@x.org").unwrap();
        assert_eq!(a.imap, ep("imap2.x.org", 143, TlsMode::Starttls));
        assert_eq!(a.username.as_deref(), Some("x.org\\me"));
        let none = plain.replace("STARTTLS", "plain");
        assert!(parse_autoconfig(&none, "me@x.org")
            .unwrap_err()
            .contains("no IMAP server"));
        assert!(
            parse_autoconfig("<html><body>404</body></html>", "me@x.org")
                .unwrap_err()
                .contains("not an autoconfig file")
        );
        assert!(parse_autoconfig("Not found", "me@x.org")
            .unwrap_err()
            .contains("not XML"));
    }
}
