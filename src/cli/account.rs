//! `backscatter account add|check|login`: set up an account (in `add.rs`),
//! test it, store its password.

use super::common::{account, load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    Add(super::add::AddArgs),
    /// Connect, log in, and show what backscatter will use.
    ///
    /// Prints the server's capabilities (IDLE, MOVE, UIDPLUS, SPECIAL-USE),
    /// its personal namespace, and the mailboxes as that server spells
    /// them: the Sent mailbox(es) read for the sent index, the watched
    /// ones and the quarantine; whether ManageSieve is reachable; then
    /// anything missing. Exits 2 when a configured sent or watched mailbox
    /// does not exist.
    Check {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Store the account's password in the OS keyring (asks without echo).
    ///
    /// Then set `password.keyring = true` in the account's table. Where
    /// there is no keyring (a headless server), use password.command or
    /// password.env instead.
    Login {
        /// The account (its [accounts.NAME] table; default: the one with
        /// default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// The account, as in earlier versions (`account login NAME`).
        #[arg(hide = true, conflicts_with = "account", value_name = "NAME")]
        name: Option<String>,
    },
}

pub fn run(args: AccountArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match args.command {
        AccountCommand::Add(args) => super::add::run(args, config),
        AccountCommand::Check {
            account: name,
            json,
        } => check_account(name.as_deref(), json, config),
        AccountCommand::Login { account, name } => login(account.or(name).as_deref(), config),
    }
}

fn login(name: Option<&str>, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?;
    let pw = rpassword::prompt_password(format!(
        "Password for {} ({}): ",
        a.username,
        crate::config::endpoint(&a.host, a.port)
    ))
    .map_err(|e| Error::Runtime(format!("cannot read the password: {e}")))?;
    if pw.is_empty() {
        return Err(Error::Usage("no password given; nothing stored".into()));
    }
    crate::secret::store(a, &crate::secret::Secret::new(pw)).map_err(Error::Runtime)?;
    println!(
        "Stored the password of account \"{}\" in the keyring. Set password.keyring = true in [accounts.{}].",
        a.name, a.name
    );
    Ok(ExitCode::SUCCESS)
}

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
                "  Sent index:  {} of the last {} days",
                super::common::plural(n, "message"),
                self.sent_days
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
        let only_sieve = self.missing.len() == 1 && !m.reachable;
        if !self.absent.is_empty() {
            // The absent mailboxes are said once, as the error `main` prints.
            if !self.missing.is_empty() {
                writeln!(f, "Missing:")?;
                for m in &self.missing {
                    writeln!(f, "  - {m}")?;
                }
            }
        } else if self.missing.is_empty() {
            writeln!(f, "Everything backscatter needs is there.")?;
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

/// `account check`: the report for one account, as text or JSON.
pub fn check_account(
    name: Option<&str>,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?.clone();
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let mut imap = crate::imap::connect(&a, &secret)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        // Every name as this server spells it.
        let a = imap.resolve_account(&a);
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
        let list = imap
            .list()
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let listed = |name: &str| {
            crate::imap::names::is_inbox(name)
                || list.iter().any(|m| m.selectable && m.name == name)
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
            Err(crate::sentsync::SyncError::Imap(e)) => return Err(Error::Runtime(e.to_string())),
        };
        for m in a.watch.iter().filter(|m| !listed(m)) {
            absent.push(format!(
                "the watched mailbox \"{m}\" (watch) does not exist on the server"
            ));
        }
        let quarantine_exists = listed(&a.quarantine);
        // The quarantine must not be where the sent index is read from,
        // and had better not be where the server or a mail client empties
        // mail on its own (SPECIAL-USE, RFC 6154).
        if sent.as_ref().is_some_and(|s| s.iter().any(|m| m == &a.quarantine)) {
            absent.push(format!(
                "the quarantine \"{}\" is the Sent mailbox, which the sent index is built from: set quarantine to a mailbox of its own",
                a.quarantine
            ));
        }
        if let Some(m) = list.iter().find(|m| m.name == a.quarantine) {
            for (attr, what) in [("\\Trash", "Trash"), ("\\Junk", "Junk")] {
                if m.special_use.iter().any(|u| u.eq_ignore_ascii_case(attr)) {
                    super::common::warn(&format!(
                        "the quarantine \"{}\" is the server's {what} mailbox ({attr}): mail clients and server rules may empty it on their own, so quarantined mail could be lost; set quarantine to a mailbox of its own",
                        a.quarantine
                    ));
                }
            }
        }
        let mut sent_index_messages = None;
        if absent.is_empty() && sent.is_some() {
            match crate::clean::sent_index(&mut imap, &a, &dirs).await {
                Ok((_, stats)) => sent_index_messages = Some(stats.messages),
                Err(e) => missing.push(e.to_string()),
            }
        }
        let mut managesieve = SieveCheck {
            host: a.sieve_host.clone(),
            port: a.sieve_port,
            tls: tls_name(a.sieve_tls),
            reachable: false,
            include: None,
            active_script: None,
            error: None,
        };
        match crate::managesieve::Session::connect(&a, &secret).await {
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
        Ok::<_, Error>(CheckReport {
            account: a.name.clone(),
            host: a.host.clone(),
            port: a.port,
            tls: tls_name(a.tls),
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
        })
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        let s = serde_json::to_string(&report)
            .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
        writeln!(out, "{s}").map_err(super::output_error)?;
    } else {
        write!(out, "{report}").map_err(super::output_error)?;
    }
    if report.absent.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        // Configuration that names what is not there: exit 2, like
        // every other configuration problem.
        Err(Error::Usage(format!(
            "account \"{}\" is not usable as configured: {}",
            report.account,
            report.absent.join("; ")
        )))
    }
}
