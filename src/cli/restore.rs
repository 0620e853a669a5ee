//! `backscatter restore`: move quarantined messages back.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::clean::{self, Dirs, RestoreFilter};
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Move quarantined messages back to the mailbox they came from.
///
/// Uses the journal of earlier sweeps; messages are found in quarantine by
/// Message-ID, so this works after the server renumbered them.
///
/// Examples:
///
///   backscatter restore --all
///
///   backscatter restore --message-id '<1234@example.org>'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "since", "message_id"])))]
pub struct RestoreArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Restore everything the journal says is in quarantine.
    #[arg(long)]
    pub all: bool,
    /// Restore what was quarantined on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Restore the message with this Message-ID.
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
    /// Undo what your own rules moved (`filter`, `watch` with `rules`)
    /// instead of the quarantine: each message goes back to the mailbox it
    /// was filed from. Copies and flags the rules added stay.
    #[arg(long)]
    pub rules: bool,
    /// Print one JSON summary object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RestoreArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?.clone();
    let filter = if args.all {
        RestoreFilter::All
    } else if let Some(d) = &args.since {
        RestoreFilter::Since(parse_date(d)?)
    } else {
        RestoreFilter::MessageId(args.message_id.clone().unwrap_or_default())
    };
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let s = if args.rules {
        runtime()?
            .block_on(crate::filter::undo(&a, &secret, &filter, &dirs))
            .map_err(clean_error)?
    } else {
        runtime()?
            .block_on(clean::restore(&a, &secret, &filter, &dirs))
            .map_err(clean_error)?
    };
    let mut out = std::io::stdout().lock();
    let w = super::output_error;
    if args.json {
        let v = serde_json::json!({
            "restored": s.restored,
            "missing": s.missing,
            "seconds": (s.seconds * 1000.0).round() / 1000.0,
        });
        writeln!(out, "{v}").map_err(w)?;
    } else if args.rules {
        writeln!(
            out,
            "Moved {} message{} back where your rules had filed them from{}.",
            s.restored,
            if s.restored == 1 { "" } else { "s" },
            if s.missing > 0 {
                format!(
                    "; {} no longer where the rules put {} (moved or deleted by hand)",
                    s.missing,
                    if s.missing == 1 { "it" } else { "them" }
                )
            } else {
                String::new()
            }
        )
        .map_err(w)?;
    } else {
        writeln!(
            out,
            "Restored {} message{} from {}{}.",
            s.restored,
            if s.restored == 1 { "" } else { "s" },
            a.quarantine,
            if s.missing > 0 {
                format!(
                    "; {} journaled message{} no longer in quarantine (moved or deleted by hand)",
                    s.missing,
                    if s.missing == 1 { " is" } else { "s are" }
                )
            } else {
                String::new()
            }
        )
        .map_err(w)?;
    }
    Ok(ExitCode::SUCCESS)
}
