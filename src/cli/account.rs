//! `backscatter account check|login`: test an account, store its password.

use super::common::{account, load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use clap::{Args, Subcommand};
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
    /// Connect, log in, and show what backscatter will use.
    ///
    /// Prints the server's capabilities (IDLE, MOVE, UIDPLUS, SPECIAL-USE),
    /// its personal namespace, and the mailboxes as that server spells
    /// them: the Sent mailbox(es) read for the sent index, the watched
    /// ones and the quarantine; then anything missing. Exits 2 when a
    /// configured sent or watched mailbox does not exist.
    Check {
        #[arg(long)]
        account: Option<String>,
    },
    /// Store the account's password in the OS keyring (asks without echo).
    ///
    /// Then set `password.keyring = true` in the account's table. Where
    /// there is no keyring (a headless server), use password.command or
    /// password.env instead.
    Login {
        /// The account name (its [accounts.NAME] table).
        name: String,
    },
}

pub fn run(args: AccountArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match args.command {
        AccountCommand::Check { account: name } => check(name.as_deref(), config),
        AccountCommand::Login { name } => login(&name, config),
    }
}

fn login(name: &str, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, Some(name))?;
    let pw = rpassword::prompt_password(format!("Password for {} ({}): ", a.username, a.host))
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

fn check(name: Option<&str>, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?.clone();
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let rt = runtime()?;
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| Error::Runtime(format!("cannot write output: {e}"));
    rt.block_on(async {
        let mut imap = crate::imap::connect(&a, &secret)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        // Every name as this server spells it.
        let a = imap.resolve_account(&a);
        writeln!(
            out,
            "Account \"{}\": logged in to {}:{} as {} ({}).",
            a.name,
            a.host,
            a.port,
            a.username,
            match a.tls {
                crate::config::TlsMode::Implicit => "TLS, certificate verified",
                crate::config::TlsMode::Starttls => "STARTTLS, certificate verified",
                crate::config::TlsMode::Plain => "plaintext on loopback",
            }
        )
        .map_err(w)?;
        let mut missing = Vec::new();
        for (cap, why) in [
            ("IDLE", "watch falls back to polling"),
            ("MOVE", "moves use COPY + \\Deleted + UID EXPUNGE"),
            ("UIDPLUS", "without MOVE, messages cannot be moved safely"),
            ("SPECIAL-USE", "set sent = [...] to name your Sent mailbox"),
        ] {
            let has = imap.has(cap);
            writeln!(out, "  {:<12} {}", cap, if has { "yes" } else { "no" }).map_err(w)?;
            if !has {
                missing.push(format!("{cap}: {why}"));
            }
        }
        let ns = imap.namespace().clone();
        writeln!(
            out,
            "  Namespace:   personal prefix \"{}\", hierarchy delimiter {}",
            ns.prefix,
            ns.delimiter
                .map_or("none".to_string(), |d| format!("\"{d}\""))
        )
        .map_err(w)?;
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
        writeln!(out, "  Compression: {compression}").map_err(w)?;
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
        let sent = crate::sentsync::sent_mailboxes(&mut imap, &a).await;
        match &sent {
            Ok(s) => {
                writeln!(out, "  Sent:        {}", s.join(", ")).map_err(w)?;
                for m in s.iter().filter(|m| !listed(m)) {
                    absent.push(format!(
                        "the Sent mailbox \"{m}\" (sent) does not exist on the server"
                    ));
                }
            }
            Err(crate::sentsync::SyncError::NoSentMailbox(m)) => {
                writeln!(out, "  Sent:        none found").map_err(w)?;
                absent.push(m.clone());
            }
            Err(crate::sentsync::SyncError::Imap(e)) => return Err(Error::Runtime(e.to_string())),
        }
        writeln!(out, "  Watched:     {}", a.watch.join(", ")).map_err(w)?;
        for m in a.watch.iter().filter(|m| !listed(m)) {
            absent.push(format!(
                "the watched mailbox \"{m}\" (watch) does not exist on the server"
            ));
        }
        let q_exists = listed(&a.quarantine);
        writeln!(
            out,
            "  Quarantine:  {} ({})",
            a.quarantine,
            if q_exists {
                "exists"
            } else {
                "will be created on first move"
            }
        )
        .map_err(w)?;
        if absent.is_empty() {
            match crate::clean::sent_index(&mut imap, &a, &dirs).await {
                Ok((_, stats)) => writeln!(
                    out,
                    "  Sent index:  {} messages of the last {} days",
                    stats.messages, a.sent_days
                )
                .map_err(w)?,
                Err(e) => missing.push(e.to_string()),
            }
        }
        match crate::managesieve::Session::connect(&a, &secret).await {
            Ok(mut s) => {
                let active = s
                    .list()
                    .await
                    .ok()
                    .and_then(|l| l.into_iter().find(|(_, act)| *act).map(|(n, _)| n));
                writeln!(
                    out,
                    "  ManageSieve: {}:{} ({}; {}; active script: {})",
                    a.sieve_host,
                    a.sieve_port,
                    match a.sieve_tls {
                        crate::config::TlsMode::Implicit => "TLS, verified",
                        crate::config::TlsMode::Starttls => "STARTTLS, verified",
                        crate::config::TlsMode::Plain => "plaintext to loopback",
                    },
                    if crate::sieve::offers(&s.extensions, "include") {
                        "include available"
                    } else {
                        "no include: install will use a marked copy of your script"
                    },
                    active.as_deref().unwrap_or("none")
                )
                .map_err(w)?;
                s.logout().await;
            }
            Err(e) => {
                writeln!(
                    out,
                    "  ManageSieve: {}:{} not usable",
                    a.sieve_host, a.sieve_port
                )
                .map_err(w)?;
                missing.push(format!("ManageSieve (only for `backscatter sieve`): {e}"));
            }
        }
        imap.logout().await;
        if missing.is_empty() && absent.is_empty() {
            writeln!(out, "Everything backscatter needs is there.").map_err(w)?;
        } else if !missing.is_empty() {
            writeln!(out, "Missing:").map_err(w)?;
            for m in &missing {
                writeln!(out, "  - {m}").map_err(w)?;
            }
        }
        if absent.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            // Configuration that names what is not there: exit 2, like
            // every other configuration problem.
            Err(Error::Usage(format!(
                "account \"{}\" is not usable as configured: {}",
                a.name,
                absent.join("; ")
            )))
        }
    })
}
