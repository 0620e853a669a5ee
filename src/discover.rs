//! Finding an account's servers from its address, for `account add`:
//! the known providers' published settings (pure, no I/O), and the config
//! block written for a new account (pure text, checked by the config
//! parser).
//!
//! RFC 6186 SRV records and Mozilla-style autoconfig are not consulted yet:
//! an address at a domain not listed here needs `--host` (and `--port`,
//! `--tls` where they differ from the defaults).

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
    Some(match domain.as_str() {
        "gmail.com" | "googlemail.com" => p(
            "Gmail",
            ep("imap.gmail.com", 993, Implicit),
            None,
            Some("Gmail needs an app password (Google account > Security > 2-Step Verification > App passwords), or auth = \"xoauth2\" with a token command"),
        ),
        "outlook.com" | "hotmail.com" | "live.com" | "msn.com" | "outlook.de"
        | "hotmail.de" | "hotmail.co.uk" | "live.de" => p(
            "Outlook / Microsoft 365",
            ep("outlook.office365.com", 993, Implicit),
            None,
            Some("Microsoft accepts OAuth2 only: set auth = \"xoauth2\" and a password command that prints a fresh access token"),
        ),
        "fastmail.com" | "fastmail.fm" | "fastmail.net" | "fastmail.org" | "fastmail.to"
        | "sent.com" | "messagingengine.com" => p(
            "Fastmail",
            ep("imap.fastmail.com", 993, Implicit),
            None,
            Some("Fastmail needs an app password (Settings > Privacy & Security > Integrations)"),
        ),
        "icloud.com" | "me.com" | "mac.com" => Preset {
            login: LoginName::LocalPart,
            ..p(
                "iCloud",
                ep("imap.mail.me.com", 993, Implicit),
                None,
                Some("iCloud needs an app-specific password (appleid.apple.com > Sign-In and Security)"),
            )
        },
        "yahoo.com" | "yahoo.co.uk" | "yahoo.de" | "yahoo.fr" | "ymail.com"
        | "rocketmail.com" => p(
            "Yahoo",
            ep("imap.mail.yahoo.com", 993, Implicit),
            None,
            Some("Yahoo needs an app password (Account security > Generate app password)"),
        ),
        "mailbox.org" => p(
            "mailbox.org",
            ep("imap.mailbox.org", 993, Implicit),
            Some(ep("imap.mailbox.org", 4190, Starttls)),
            None,
        ),
        "proton.me" | "protonmail.com" | "protonmail.ch" | "pm.me" => p(
            "Proton Mail (through Proton Mail Bridge)",
            ep("127.0.0.1", 1143, Starttls),
            None,
            Some("Proton Mail Bridge must run; use the password Bridge shows (not your Proton password), and export its certificate (Bridge > Settings > Export TLS certificates) to tls-ca-file"),
        ),
        "gmx.de" | "gmx.net" | "gmx.at" | "gmx.ch" => p(
            "GMX",
            ep("imap.gmx.net", 993, Implicit),
            None,
            Some("GMX: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
        "gmx.com" | "gmx.us" | "gmx.co.uk" | "gmx.fr" => p(
            "GMX",
            ep("imap.gmx.com", 993, Implicit),
            None,
            Some("GMX: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
        "web.de" => p(
            "WEB.DE",
            ep("imap.web.de", 993, Implicit),
            None,
            Some("WEB.DE: allow IMAP access first (Settings > POP3/IMAP)"),
        ),
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
}
