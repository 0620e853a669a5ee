//! `backscatter sieve generate`: the policy as a server-side Sieve script.

use super::common::{account, clean_error, load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
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
    /// Print the Sieve script for an account (for servers without
    /// ManageSieve, or to read what would be installed).
    ///
    /// The script files into quarantine the automated responses that carry
    /// none of your recent sent Message-IDs; it never rejects, replies,
    /// redirects or discards. It is checked with sieve-rs before printing.
    Generate {
        #[arg(long)]
        account: Option<String>,
        /// The server's Sieve extensions (default: Dovecot/Pigeonhole's).
        #[arg(long, value_name = "LIST")]
        extensions: Option<String>,
        /// The server's script size limit in bytes (default 1 MiB, Dovecot's).
        #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
        max_size: usize,
        /// Take the sent Message-IDs from this file (one per line, newest
        /// first) instead of the account's Sent mailbox.
        #[arg(long, value_name = "FILE")]
        sent_ids: Option<PathBuf>,
    },
}

pub fn run(args: SieveArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let SieveCommand::Generate {
        account: name,
        extensions,
        max_size,
        sent_ids,
    } = args.command;
    let cfg = load_config(config)?;
    let a = account(&cfg, name.as_deref())?.clone();
    let ids: Vec<String> = match &sent_ids {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => {
            let secret = secret(&a)?;
            let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
            runtime()?.block_on(async {
                let mut imap = crate::imap::connect(&a, &secret)
                    .await
                    .map_err(|e| Error::Runtime(e.to_string()))?;
                let (index, _) = crate::clean::sent_index(&mut imap, &a, &dirs)
                    .await
                    .map_err(clean_error)?;
                imap.logout().await;
                Ok::<_, Error>(
                    index
                        .ids_newest_first()
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect(),
                )
            })?
        }
    };
    let ext = extensions.unwrap_or_else(|| crate::sieve::DOVECOT_DEFAULT.to_string());
    let now = crate::clean::now();
    let d = mail_parser::DateTime::from_timestamp(now).to_rfc3339();
    let script = crate::sieve::generate(&crate::sieve::Policy {
        account: &a.name,
        quarantine: &a.quarantine,
        sent_ids: &ids,
        extensions: &ext,
        max_bytes: max_size,
        generated_at: &d,
    })
    .map_err(|e| Error::Runtime(e.0))?;
    crate::sieve::validate(&script.text, &ext).map_err(Error::Runtime)?;
    let mut out = std::io::stdout().lock();
    out.write_all(script.text.as_bytes())
        .map_err(|e| Error::Runtime(format!("cannot write output: {e}")))?;
    eprintln!(
        "backscatter: {} bytes, {} sent Message-IDs{}",
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
    );
    Ok(ExitCode::SUCCESS)
}
