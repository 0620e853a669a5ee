//! Checking an account against its server (`backscatter account check`):
//! log in, and report what backscatter will use there — the capabilities it
//! relies on, the personal namespace (RFC 2342), the mailboxes as that
//! server spells them, the sent index, ManageSieve — and anything missing.
//! The report is `Serialize` (for `--json`) and `Display` (for people).

use crate::clean::Dirs;
use crate::config::Account;
use crate::imap::ImapError;
use crate::secret::Secret;
use serde::Serialize;

/// The TLS mode as the config file writes it.
fn tls_name(t: crate::config::TlsMode) -> &'static str {
    match t {
        crate::config::TlsMode::Implicit => "implicit",
        crate::config::TlsMode::Starttls => "starttls",
        crate::config::TlsMode::Plain => "plain",
    }
}

/// What `account check` found: printed as text (Display) or JSON.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub account: String,
    pub host: String,
    pub port: u16,
    /// `implicit`, `starttls` or `plain`.
    pub tls: &'static str,
    pub username: String,
    /// IDLE, MOVE, UIDPLUS, SPECIAL-USE: offered or not.
    pub capabilities: Vec<Capability>,
    /// The personal namespace's prefix (RFC 2342), e.g. "" or "INBOX.".
    pub namespace_prefix: String,
    /// Its hierarchy delimiter (None: a flat namespace).
    pub namespace_delimiter: Option<String>,
    /// Whether the connection is compressed (COMPRESS=DEFLATE), and why not.
    pub compression: &'static str,
    /// The Sent mailboxes read for the sent index, as the server spells
    /// them (empty: none found).
    pub sent: Vec<String>,
    /// The watched mailboxes, as the server spells them.
    pub watched: Vec<String>,
    pub quarantine: String,
    pub quarantine_exists: bool,
    /// Messages in the sent index (None: it could not be built).
    pub sent_index_messages: Option<usize>,
    pub sent_days: u32,
    pub managesieve: SieveCheck,
    /// One sentence per missing piece, with what it means.
    pub missing: Vec<String>,
    /// Configured mailboxes that do not exist (the check exits 2).
    pub absent: Vec<String>,
    /// Why clean, restore and watch will refuse on this server (neither
    /// MOVE nor UIDPLUS): the check exits 1.
    pub unusable: Option<String>,
    /// What works but deserves a look, one sentence each: an empty sent
    /// index (every bounce, the user's own too, would be quarantined).
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub offered: bool,
}

#[derive(Debug, Serialize)]
pub struct SieveCheck {
    pub host: String,
    pub port: u16,
    pub tls: &'static str,
    /// Connected and logged in.
    pub reachable: bool,
    /// The server offers the `include` extension (None: not reachable).
    pub include: Option<bool>,
    pub active_script: Option<String>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verified = |t: &str, short: bool| match t {
            "implicit" if short => "TLS, verified",
            "implicit" => "TLS, certificate verified",
            "starttls" if short => "STARTTLS, verified",
            "starttls" => "STARTTLS, certificate verified",
            _ if short => "plaintext to loopback",
            _ => "plaintext on loopback",
        };
        writeln!(
            f,
            "Account \"{}\": logged in to {} as {} ({}).",
            self.account,
            crate::config::endpoint(&self.host, self.port),
            self.username,
            verified(self.tls, false)
        )?;
        for c in &self.capabilities {
            writeln!(
                f,
                "  {:<12} {}",
                c.name,
                if c.offered { "yes" } else { "no" }
            )?;
        }
        writeln!(
            f,
            "  Namespace:   personal prefix \"{}\", hierarchy delimiter {}",
            self.namespace_prefix,
            self.namespace_delimiter
                .as_deref()
                .map_or("none".to_string(), |d| format!("\"{d}\""))
        )?;
        writeln!(f, "  Compression: {}", self.compression)?;
        if self.sent.is_empty() {
            writeln!(f, "  Sent:        none found")?;
        } else {
            writeln!(f, "  Sent:        {}", self.sent.join(", "))?;
        }
        writeln!(f, "  Watched:     {}", self.watched.join(", "))?;
        writeln!(
            f,
            "  Quarantine:  {} ({})",
            self.quarantine,
            if self.quarantine_exists {
                "exists"
            } else {
                "will be created on first move"
            }
        )?;
        if let Some(n) = self.sent_index_messages {
            writeln!(
                f,
                "  Sent index:  {n} message{} (each response is judged against the {} days before it arrived)",
                if n == 1 { "" } else { "s" },
                crate::sent::Window::days_before(self.sent_days)
            )?;
        }
        let m = &self.managesieve;
        let at = crate::config::endpoint(&m.host, m.port);
        if m.reachable {
            writeln!(
                f,
                "  ManageSieve: {at} ({}; {}; active script: {})",
                verified(m.tls, true),
                if m.include == Some(true) {
                    "include available"
                } else {
                    "no include: install will use a marked copy of your script"
                },
                m.active_script.as_deref().unwrap_or("none")
            )?;
        } else {
            writeln!(f, "  ManageSieve: {at} not reachable")?;
        }
        for w in &self.warnings {
            writeln!(f, "Warning: {w}")?;
        }
        let only_sieve = self.missing.len() == 1 && !m.reachable;
        if let Some(why) = &self.unusable {
            writeln!(
                f,
                "This server cannot be used: clean, restore and watch will all refuse on it ({why})."
            )?;
            if !self.missing.is_empty() {
                writeln!(f, "Missing:")?;
                for m in &self.missing {
                    writeln!(f, "  - {m}")?;
                }
            }
        } else if !self.absent.is_empty() {
            // The absent mailboxes are said once, as the error `main` prints.
            if !self.missing.is_empty() {
                writeln!(f, "Missing:")?;
                for m in &self.missing {
                    writeln!(f, "  - {m}")?;
                }
            }
        } else if self.missing.is_empty() && self.warnings.is_empty() {
            writeln!(f, "Everything backscatter needs is there.")?;
        } else if self.missing.is_empty() {
            writeln!(f, "Everything else backscatter needs is there.")?;
        } else if only_sieve {
            writeln!(
                f,
                "clean and watch have what they need. ManageSieve is not reachable, so `backscatter sieve install` will not work until it is:"
            )?;
            writeln!(f, "  - {}", self.missing[0])?;
        } else {
            writeln!(f, "Missing:")?;
            for m in &self.missing {
                writeln!(f, "  - {m}")?;
            }
        }
        Ok(())
    }
}

/// Connect and log in to the account's IMAP server, and to its ManageSieve
/// server, and report what backscatter will use. A configured Sent or
/// watched mailbox that does not exist is listed in
/// [`CheckReport::absent`] (the account is not usable as configured); a
/// ManageSieve server that cannot be reached only in
/// [`CheckReport::missing`]. Errors: the IMAP connection, login, LIST or
/// NAMESPACE failed.
pub async fn check(a: &Account, secret: &Secret, dirs: &Dirs) -> Result<CheckReport, ImapError> {
    let mut imap = crate::imap::connect(a, secret).await?;
    // Every name as this server spells it.
    let a = imap.resolve_account(a);
    let mut missing = Vec::new();
    let mut capabilities = Vec::new();
    for (cap, why) in [
        ("IDLE", "watch falls back to polling"),
        ("MOVE", "moves use COPY + \\Deleted + UID EXPUNGE"),
        ("UIDPLUS", "without MOVE, messages cannot be moved safely"),
        ("SPECIAL-USE", "set sent = [...] to name your Sent mailbox"),
    ] {
        let offered = imap.has(cap);
        capabilities.push(Capability { name: cap, offered });
        if !offered {
            missing.push(format!("{cap}: {why}"));
        }
    }
    let unusable = imap.can_move_safely().err().map(|e| e.message);
    let ns = imap.namespace().clone();
    let compression = if imap.compressed() {
        "on (COMPRESS=DEFLATE)"
    } else if !imap.has("COMPRESS=DEFLATE") {
        "off (the server does not offer COMPRESS=DEFLATE)"
    } else {
        match a.compress {
            crate::config::Compression::Never => "off (compress = \"never\")",
            _ => "off (compress = \"auto\" does not compress to loopback)",
        }
    };
    let list = imap.list().await?;
    let listed = |name: &str| {
        crate::imap::names::is_inbox(name) || list.iter().any(|m| m.selectable && m.name == name)
    };
    // A mailbox that must exist and does not: the check fails.
    let mut absent = Vec::new();
    let sent = match crate::sentsync::sent_mailboxes(&mut imap, &a).await {
        Ok(s) => {
            for m in s.iter().filter(|m| !listed(m)) {
                absent.push(format!(
                    "the Sent mailbox \"{m}\" (sent) does not exist on the server"
                ));
            }
            Some(s)
        }
        Err(crate::sentsync::SyncError::NoSentMailbox(m)) => {
            absent.push(m);
            None
        }
        Err(crate::sentsync::SyncError::Imap(e)) => return Err(e),
    };
    for m in a.watch.iter().filter(|m| !listed(m)) {
        absent.push(format!(
            "the watched mailbox \"{m}\" (watch) does not exist on the server"
        ));
    }
    let quarantine_exists = listed(&a.quarantine);
    // The quarantine must not be where the sent index is read from, and
    // had better not be where the server or a mail client empties mail on
    // its own (SPECIAL-USE, RFC 6154).
    if sent
        .as_ref()
        .is_some_and(|s| s.iter().any(|m| m == &a.quarantine))
    {
        absent.push(format!(
            "the quarantine \"{}\" is the Sent mailbox, which the sent index is built from: set quarantine to a mailbox of its own",
            a.quarantine
        ));
    }
    // What every command refuses (Drafts, Trash, a \\Sent found by SPECIAL-USE).
    if !absent.iter().any(|x| x.starts_with("the quarantine")) {
        if let Err(crate::clean::CleanError::Config(m)) =
            crate::clean::refuse_unfit_quarantine(&mut imap, &a).await
        {
            absent.push(m);
        }
    }
    if let Some(m) = list.iter().find(|m| m.name == a.quarantine) {
        for (attr, what) in [("\\Junk", "Junk")] {
            if m.special_use.iter().any(|u| u.eq_ignore_ascii_case(attr)) {
                tracing::warn!(
                    "the quarantine \"{}\" is the server's {what} mailbox ({attr}): mail clients and server rules may empty it on their own, so quarantined mail could be lost; set quarantine to a mailbox of its own",
                    a.quarantine
                );
            }
        }
    }
    let mut sent_index_messages = None;
    let mut warnings = Vec::new();
    if absent.is_empty() && sent.is_some() {
        match crate::clean::sent_index(&mut imap, &a, dirs).await {
            Ok((_, stats)) => {
                sent_index_messages = Some(stats.messages);
                if stats.messages == 0 {
                    warnings.push(empty_index_warning(a.sent_days));
                }
            }
            Err(e) => missing.push(e.to_string()),
        }
    }
    let mut managesieve = SieveCheck {
        host: a.sieve.host.clone(),
        port: a.sieve.port,
        tls: tls_name(a.sieve.tls),
        reachable: false,
        include: None,
        active_script: None,
        error: None,
    };
    match crate::managesieve::Session::connect(&a, secret).await {
        Ok(mut s) => {
            managesieve.reachable = true;
            managesieve.active_script = s
                .list()
                .await
                .ok()
                .and_then(|l| l.into_iter().find(|(_, act)| *act).map(|(n, _)| n));
            managesieve.include = Some(crate::sieve::offers(&s.extensions, "include"));
            s.logout().await;
        }
        Err(e) => {
            missing.push(format!("ManageSieve (only for `backscatter sieve`): {e}"));
            managesieve.error = Some(e.message);
        }
    }
    imap.logout().await;
    Ok(CheckReport {
        account: a.name.clone(),
        host: a.imap.host.clone(),
        port: a.imap.port,
        tls: tls_name(a.imap.tls),
        username: a.username.clone(),
        capabilities,
        namespace_prefix: ns.prefix.clone(),
        namespace_delimiter: ns.delimiter.map(|d| d.to_string()),
        compression,
        sent: sent.unwrap_or_default(),
        watched: a.watch.clone(),
        quarantine: a.quarantine.clone(),
        quarantine_exists,
        sent_index_messages,
        sent_days: a.sent_days,
        managesieve,
        missing,
        absent,
        unusable,
        warnings,
    })
}

/// What an empty sent index means, in one sentence (`account check` and
/// `clean` say it): nothing can be recognised as a response to the user's
/// own mail.
pub fn empty_index_warning(sent_days: u32) -> String {
    format!(
        "the sent index is empty (nothing in your Sent mailbox from the last {sent_days} days), so every bounce and auto-reply, including those to mail you did send, counts as backscatter: check sent = [...] names your Sent mailbox, or raise sent-days"
    )
}
