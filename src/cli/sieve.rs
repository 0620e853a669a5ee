//! `backscatter sieve`: the policy as a server-side Sieve script (generated,
//! installed over ManageSieve by [`crate::sieve_install`]), and the user's
//! own rules checked and tried.

use super::common::{account, load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use crate::sieve_install::{self, ManageError};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SieveArgs {
    #[command(subcommand)]
    pub command: SieveCommand,
}

#[derive(Debug, Subcommand)]
pub enum SieveCommand {
    /// Upload the script over ManageSieve and activate it, keeping your own
    /// active script working: it runs after ours, through `include`, or, on
    /// a server without `include`, in a copy of it with our rules in a
    /// marked block at the top. Your script itself is never changed.
    Install {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Also install your own rules (the account's `rules` file, as
        /// `filter` and `watch` run them) to run on the server after the
        /// backscatter policy and before your own active script, so one file
        /// works on either side. They are checked first (`sieve check`);
        /// mailbox names are written as the server spells them (INBOX.X on
        /// an INBOX. namespace); rules testing vnd.backscatter.* (set only
        /// by the agent) are refused; `include` is not carried over.
        #[arg(long)]
        rules: bool,
        /// The server's script size limit in bytes (default: `max-size` in
        /// [accounts.NAME.sieve], else what the server answers to
        /// HAVESPACE, else 1 MiB). Cyrus allows 32768 by default. The
        /// script carries as many of your most recent sent Message-IDs as
        /// fit; install says how many were left out.
        #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
        max_size: Option<u32>,
    },
    /// Remove the script and re-activate what was active before.
    Uninstall {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// Show the server's scripts, which is active, and how old our ID list is.
    Status {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the Sieve script for an account (for servers without
    /// ManageSieve, or to read what would be installed).
    ///
    /// The script files into quarantine the automated responses that carry
    /// none of your recent sent Message-IDs; it never rejects, replies,
    /// redirects or discards. It is checked with sieve-rs before printing.
    Generate {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// The server's Sieve extensions, separated by spaces or commas, as
        /// its ManageSieve SIEVE capability lists them (RFC 5804):
        /// "fileinto body mailbox" or "fileinto,body,mailbox" (default:
        /// Dovecot/Pigeonhole's).
        #[arg(long, value_name = "LIST")]
        extensions: Option<String>,
        /// The server's script size limit in bytes (default: `max-size` in
        /// [accounts.NAME.sieve], else 1 MiB, Dovecot's; Cyrus allows 32768).
        #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
        max_size: Option<u32>,
        /// Take the sent Message-IDs from this file (one per line, newest
        /// first, `<id@host>` or `id@host`; empty lines and lines starting
        /// with # are skipped) instead of the account's Sent mailbox. Without dates,
        /// every one is also searched for in message bodies (from Sent,
        /// only those of the last 7 days are: bounces come within days).
        /// Nothing is asked of the server then, so the quarantine is named
        /// as configured: write it as the server spells it (e.g.
        /// "INBOX.Backscatter" on Cyrus and Courier).
        #[arg(long, value_name = "FILE")]
        sent_ids: Option<PathBuf>,
    },
    /// Compile your own rules (a Sieve script the agent runs on the client,
    /// for `filter` and `watch`) and list every command the agent refuses:
    /// redirect, reject, ereject, vacation and notify (they send mail) and
    /// discard (it deletes; use `fileinto "Trash"`). Exit 2 on any refusal.
    ///
    /// `include "NAME"` is read from NAME.sieve beside the file.
    Check {
        /// Your rules: a Sieve script file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print what your rules do with each message file, like Pigeonhole's
    /// sieve-test: the mailboxes it would be stored in and the flags added.
    ///
    /// The backscatter verdict is offered to the script through the
    /// `environment` extension: vnd.backscatter.verdict, vnd.backscatter.kind
    /// and vnd.backscatter.original-message-id. `envelope "from"` is the
    /// Return-Path, `envelope "to"` the Delivered-To or X-Original-To.
    ///
    /// Examples:
    ///   backscatter sieve test ~/.config/backscatter/rules.sieve msg.eml
    ///   backscatter sieve test rules.sieve --sent ~/Mail/Sent --json ~/Mail/inbox/cur/
    #[command(verbatim_doc_comment)]
    Test {
        /// Your rules: a Sieve script file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Message files: .eml, an mbox, or directories.
        #[arg(required = true, value_name = "MSG")]
        messages: Vec<PathBuf>,
        /// Your sent mail, for the verdict: a directory of .eml or an mbox (repeatable).
        #[arg(long, value_name = "PATH")]
        sent: Vec<PathBuf>,
        /// A file with one Message-ID of your sent mail per line (repeatable).
        #[arg(long, value_name = "FILE")]
        sent_ids: Vec<PathBuf>,
        /// One JSON object per message: path, verdict, kind, actions, error.
        #[arg(long)]
        json: bool,
    },
}

/// The account named by `--account`, its secret, and the state directory.
fn setup(
    name: Option<&str>,
    config: Option<&Path>,
) -> Result<
    (
        crate::config::Config,
        crate::config::Account,
        crate::secret::Secret,
        Dirs,
    ),
    Error,
> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?.clone();
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    Ok((cfg, a, secret, dirs))
}

fn manage_error(e: ManageError) -> Error {
    match e {
        ManageError::Config(m) => Error::Usage(m),
        ManageError::Net(e) => Error::runtime(e),
        ManageError::Failed(m) => Error::Runtime(m),
    }
}

/// `sieve install`: the rules (with `--rules`) are checked before anything
/// is asked of the server.
fn install(
    name: Option<&str>,
    rules: bool,
    max_size: Option<u32>,
    config: Option<&Path>,
) -> Result<ExitCode, Error> {
    let (cfg, mut a, secret, dirs) = setup(name, config)?;
    if let Some(m) = max_size {
        a.sieve_max_size = Some(m as usize);
    }
    let rules = match rules {
        true => Some(sieve_install::server_rules(&a, &cfg.path).map_err(manage_error)?),
        false => None,
    };
    let report = runtime()?
        .block_on(sieve_install::install(&a, &secret, &dirs, rules.as_deref()))
        .map_err(manage_error)?;
    super::print(&report, false)?;
    Ok(ExitCode::SUCCESS)
}

fn uninstall(name: Option<&str>, config: Option<&Path>) -> Result<ExitCode, Error> {
    let (_, a, secret, dirs) = setup(name, config)?;
    let report = runtime()?
        .block_on(sieve_install::uninstall(&a, &secret, &dirs))
        .map_err(manage_error)?;
    if let Some(w) = report.warning() {
        super::common::warn(&w);
    }
    super::print(&report, false)?;
    Ok(ExitCode::SUCCESS)
}

fn status(name: Option<&str>, json: bool, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?;
    let secret = secret(a)?;
    let report = runtime()?
        .block_on(sieve_install::status(a, &secret))
        .map_err(manage_error)?;
    super::print(&report, json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: SieveArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match args.command {
        SieveCommand::Install {
            account,
            rules,
            max_size,
        } => install(account.as_deref(), rules, max_size, config),
        SieveCommand::Uninstall { account } => uninstall(account.as_deref(), config),
        SieveCommand::Status { account, json } => status(account.as_deref(), json, config),
        SieveCommand::Generate {
            account,
            extensions,
            max_size,
            sent_ids,
        } => generate(
            account.as_deref(),
            extensions,
            max_size,
            sent_ids.as_deref(),
            config,
        ),
        SieveCommand::Check { file } => super::rules::check(&file),
        SieveCommand::Test {
            file,
            messages,
            sent,
            sent_ids,
            json,
        } => super::rules::test(&file, &messages, &sent, &sent_ids, json),
    }
}

/// `sieve generate`: the script on standard output, its size on stderr.
fn generate(
    name: Option<&str>,
    extensions: Option<String>,
    max_size: Option<u32>,
    sent_ids: Option<&Path>,
    config: Option<&Path>,
) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?.clone();
    let max_size = max_size
        .map(|m| m as usize)
        .or(a.sieve_max_size)
        .unwrap_or(crate::managesieve::DEFAULT_MAX_SIZE);
    let ext = extensions
        .as_deref()
        .map(extension_list)
        .transpose()?
        .unwrap_or_else(|| crate::sieve::DOVECOT_DEFAULT.to_string());
    let (lists, a) = match sent_ids {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?;
            let ids = crate::sent::parse_id_list(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?;
            // Offline: the quarantine name as configured (it is not
            // checked against the server's namespace).
            (
                crate::sieve::SentLists {
                    scan_ids: ids.len(),
                    ids,
                    recipients: Vec::new(),
                },
                a,
            )
        }
        None => {
            let secret = secret(&a)?;
            let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
            let (lists, a, _) = runtime()?
                .block_on(sieve_install::sent_lists(&a, &secret, &dirs))
                .map_err(manage_error)?;
            (lists, a)
        }
    };
    let now = crate::clock::now();
    let d = mail_parser::DateTime::from_timestamp(now).to_rfc3339();
    let script = crate::sieve::generate(&crate::sieve::Policy {
        account: &a.name,
        quarantine: &a.quarantine,
        sent_ids: &lists.ids,
        scan_ids: lists.scan_ids,
        recipients: &lists.recipients,
        extensions: &ext,
        max_bytes: max_size,
        generated_at: &d,
        keep: &a.keep,
    })
    .map_err(|e| Error::Runtime(e.0))?;
    crate::sieve::validate(&script.text, &ext).map_err(Error::Runtime)?;
    let mut out = std::io::stdout().lock();
    out.write_all(script.text.as_bytes())
        .map_err(super::output_error)?;
    super::common::info(&format!(
        "Generated {} bytes, {} sent Message-IDs{}.",
        script.text.len(),
        script.ids_included,
        if script.ids_dropped > 0 {
            format!(
                " ({} older ones left out to fit {max_size} bytes)",
                script.ids_dropped
            )
        } else {
            String::new()
        }
    ));
    for limit in &script.limits {
        super::common::info(&format!("What this script cannot see: {limit}."));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--extensions`: Sieve capability names (RFC 5228 §6, RFC 5804 §1.7)
/// separated by white space or commas, as one space-separated list.
/// Error: a name with a character no capability has.
fn extension_list(given: &str) -> Result<String, Error> {
    let names: Vec<&str> = given
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(bad) = names.iter().find(|n| {
        !n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';' | ':' | '_' | '+'))
    }) {
        return Err(Error::Usage(format!(
            "--extensions: \"{}\" is not a Sieve extension name: list them separated by spaces or commas, e.g. \"fileinto body mailbox\"",
            bad.replace(char::is_control, " ")
        )));
    }
    if names.is_empty() {
        return Err(Error::Usage(
            "--extensions is empty: list the server's Sieve extensions, e.g. \"fileinto body mailbox\"".into(),
        ));
    }
    Ok(names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_listed_with_spaces_or_commas() {
        assert_eq!(
            extension_list("fileinto,body, mailbox").unwrap(),
            "fileinto body mailbox"
        );
        assert_eq!(
            extension_list("fileinto comparator-i;ascii-numeric").unwrap(),
            "fileinto comparator-i;ascii-numeric"
        );
        assert!(extension_list(" , ").is_err());
        let Err(Error::Usage(e)) = extension_list("[\"fileinto\"]") else {
            panic!("a JSON list is refused");
        };
        assert!(e.contains("separated by spaces or commas"), "{e}");
    }
}
