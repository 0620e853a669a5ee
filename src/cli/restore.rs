//! `backscatter restore`: move quarantined messages back.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use crate::restore::RestoreFilter;
use crate::restore::{restore_with, RestoreOptions};
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Move quarantined messages back to the mailbox they came from.
///
/// Every message in the quarantine mailbox is found, with or without a
/// Message-ID: those a sweep or the agent moved by the UID the server
/// reported for the move or by a fingerprint of their headers (journal),
/// those the server's Sieve script filed by the keyword it gives them,
/// $BackscatterFiled (they go back to INBOX). Other mail in that mailbox
/// (put there by hand, or there before) is not backscatter's: --all and
/// --since leave it, --uid and --message-id restore it to INBOX. A
/// \Deleted flag that an interrupted move of backscatter's left on a
/// message (the journal says so) is taken off as it goes back; one you
/// set stays. Restored messages get the keyword
/// $NotBackscatter (or, where the server keeps no keywords, go on a local
/// list), so that `clean`, `watch` and the Sieve script leave them alone
/// from then on.
///
/// Exits 1, naming them, when something asked for was left behind; running
/// it again is harmless. Ctrl-C finishes the batch in flight and exits 130.
///
/// Examples:
///
///   backscatter restore --all --dry-run
///
///   backscatter restore --message-id '<1234@example.org>'
///
///   backscatter restore --uid 17 --uid 18 --uidvalidity 1764495616
///
///   backscatter restore --since 2026-11-20
///
///   backscatter restore --since today --dry-run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "since", "message_id", "uid"])))]
pub struct RestoreArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Restore everything in quarantine.
    #[arg(long)]
    pub all: bool,
    /// Restore what was quarantined on or after this day (messages the
    /// server filed: arrived on or after it): YYYY-MM-DD, today or
    /// yesterday, a day of your time zone (TZ, else the system's), from
    /// its local midnight.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Restore the messages with this Message-ID (with or without <>).
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
    /// Restore the message with this UID in the quarantine mailbox (as
    /// `quarantine list` prints it; repeat for several): for messages
    /// without a Message-ID.
    #[arg(long, value_name = "UID", conflicts_with = "rules")]
    pub uid: Vec<u32>,
    /// With --uid: the quarantine's UIDVALIDITY the UIDs were listed
    /// under (`quarantine list --json` prints it); if the mailbox was
    /// renumbered since, nothing is restored (exit 2).
    #[arg(long, value_name = "N", requires = "uid")]
    pub uidvalidity: Option<u32>,
    /// Undo what your own rules did (`filter`, `watch` with `rules`)
    /// instead of the quarantine: each message goes back to the mailbox it
    /// was filed from and loses the flags the rules added (flags it had
    /// before stay). Copies the rules made stay: removing one would delete
    /// mail.
    #[arg(long)]
    pub rules: bool,
    /// List what would be restored, and move nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    } else if !args.uid.is_empty() {
        RestoreFilter::Uids {
            uids: args.uid.clone(),
            uidvalidity: args.uidvalidity,
        }
    } else {
        RestoreFilter::MessageId(args.message_id.clone().unwrap_or_default())
    };
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RestoreOptions {
        dry_run: args.dry_run,
        stop: Some(stop.clone()),
    };
    let rt = runtime()?;
    let s = rt
        .block_on(async {
            stop_on_ctrl_c(stop.clone());
            if args.rules {
                crate::filter::undo(&a, &secret, &filter, &dirs, &opts).await
            } else {
                restore_with(&a, &secret, &filter, &dirs, &opts).await
            }
        })
        .map_err(clean_error)?;
    // A Message-ID that names nothing: an error, as `quarantine show`
    // says for one it cannot find (not "Restored 0 messages").
    if let (Some(id), false) = (&args.message_id, s.interrupted) {
        if s.restored == 0
            && s.recovered == 0
            && s.planned.is_empty()
            && s.missing == 0
            && s.left_behind.is_empty()
        {
            return Err(Error::Runtime(if args.rules {
                format!(
                    "no message with Message-ID \"{}\" was filed or flagged by your rules on account \"{}\": nothing to undo",
                    id.replace(char::is_control, " "),
                    a.name
                )
            } else {
                format!(
                    "no message with Message-ID \"{}\" in {} of account \"{}\": give one that `backscatter quarantine list` shows",
                    id.replace(char::is_control, " "),
                    a.quarantine,
                    a.name
                )
            }));
        }
    }
    let mut out = std::io::stdout().lock();
    let w = super::output_error;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    // The quarantine as the server names it (INBOX.Backscatter on Cyrus).
    let quarantine = if s.quarantine.is_empty() {
        a.quarantine.clone()
    } else {
        s.quarantine.clone()
    };
    if args.json {
        let v = serde_json::json!({
            "restored": s.restored,
            "recovered": s.recovered,
            "unflagged": if args.dry_run { 0 } else { s.unflagged },
            "missing": s.missing,
            "not_moved_by_backscatter": s.foreign,
            "left_behind": s.left_behind,
            "dry_run": args.dry_run,
            "would_restore": if args.dry_run { s.planned.len() } else { 0 },
            "would_unflag": if args.dry_run { s.unflagged } else { 0 },
            "interrupted": s.interrupted,
            "seconds": (s.seconds * 1000.0).round() / 1000.0,
        });
        writeln!(out, "{v}").map_err(w)?;
    } else if args.rules {
        let moved = if args.dry_run {
            s.planned.len()
        } else {
            s.restored
        };
        for p in &s.planned {
            if args.dry_run || s.planned.len() <= 20 {
                writeln!(
                    out,
                    "{} uid {:<7} to {:<12} {} \"{}\"",
                    if args.dry_run {
                        "would move back"
                    } else {
                        "moved back"
                    },
                    p.uid,
                    crate::imap::shown(&p.to),
                    crate::mail::printable(p.message_id.as_deref().unwrap_or("(no Message-ID)")),
                    crate::mail::printable(p.subject.as_deref().unwrap_or("")),
                )
                .map_err(w)?;
            }
        }
        writeln!(
            out,
            "{} {} message{} back where your rules had filed them from; {} the flags your rules added from {} message{}{}.",
            if args.dry_run {
                "Dry run: would move"
            } else {
                "Moved"
            },
            moved,
            plural(moved),
            if args.dry_run { "would take" } else { "took" },
            s.unflagged,
            plural(s.unflagged),
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
        for p in &s.planned {
            if args.dry_run || s.planned.len() <= 20 {
                writeln!(
                    out,
                    "{} uid {:<7} to {:<12} {} \"{}\"{}",
                    if args.dry_run {
                        "would restore"
                    } else {
                        "restored"
                    },
                    p.uid,
                    p.to,
                    crate::mail::printable(p.message_id.as_deref().unwrap_or("(no Message-ID)")),
                    crate::mail::printable(p.subject.as_deref().unwrap_or("")),
                    if p.journaled {
                        ""
                    } else if p.foreign {
                        "  [not moved by backscatter]"
                    } else {
                        "  [filed by the server]"
                    }
                )
                .map_err(w)?;
            }
        }
        if args.dry_run {
            writeln!(
                out,
                "Dry run: would restore {} message{} from {}.",
                s.planned.len(),
                plural(s.planned.len()),
                quarantine
            )
            .map_err(w)?;
        } else {
            // Not "Restored 0" when the run finished an earlier one's.
            if s.restored > 0 || s.recovered == 0 {
                writeln!(
                    out,
                    "Restored {} message{} from {}{}.",
                    s.restored,
                    plural(s.restored),
                    quarantine,
                    if s.restored == 0 {
                        ""
                    } else if s.keyword {
                        " (marked $NotBackscatter: they will not be moved again)"
                    } else {
                        " (remembered locally: they will not be moved again)"
                    }
                )
                .map_err(w)?;
            }
            if s.recovered > 0 {
                writeln!(
                    out,
                    "Finished restoring {} message{} from {} that an interrupted run had left half-done.",
                    s.recovered,
                    plural(s.recovered),
                    quarantine
                )
                .map_err(w)?;
            }
        }
        if s.foreign > 0 {
            writeln!(
                out,
                "{} message{} in {} {} not moved there by backscatter (no journal entry, no mark of its server script) and {} left alone: restore one with --uid or --message-id.",
                s.foreign,
                plural(s.foreign),
                quarantine,
                if s.foreign == 1 { "was" } else { "were" },
                if s.foreign == 1 { "is" } else { "are" },
            )
            .map_err(w)?;
        }
        if s.missing > 0 {
            writeln!(
                out,
                "{} journaled message{} no longer in quarantine (deleted or moved by hand).",
                s.missing,
                if s.missing == 1 { " is" } else { "s are" }
            )
            .map_err(w)?;
        }
    }
    if s.interrupted {
        eprintln!("interrupted: {} moved, run again to finish", s.restored);
        return Ok(ExitCode::from(130));
    }
    if !s.left_behind.is_empty() {
        return Err(Error::Runtime(format!(
            "{} message{} asked for {} left in {}: {}",
            s.left_behind.len(),
            plural(s.left_behind.len()),
            if s.left_behind.len() == 1 {
                "was"
            } else {
                "were"
            },
            if args.rules {
                "the mailboxes your rules filed them into".to_string()
            } else {
                quarantine.clone()
            },
            {
                // At most three named; `--json` lists them all.
                let mut shown = s.left_behind[..s.left_behind.len().min(3)].join("; ");
                if s.left_behind.len() > 3 {
                    shown.push_str(&format!(
                        "; and {} more (`--json` lists them all)",
                        s.left_behind.len() - 3
                    ));
                }
                shown
            }
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C sets `stop` (the command finishes its batch in flight); a second
/// one exits at once with status 130 (the journal lets the next run finish
/// the batch).
pub fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::SeqCst);
            eprintln!("backscatter: finishing the batch in flight (Ctrl-C again to stop at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: run again to finish");
                std::process::exit(130);
            }
        }
    });
}
