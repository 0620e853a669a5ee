//! `backscatter clean`: sweep a mailbox once.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::clean::{self, CleanOptions, Dirs};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sweep a mailbox once: move backscatter to the quarantine mailbox.
///
/// Every message of the mailbox (default INBOX) is classified; automated
/// responses to mail you did not send are moved to the account's
/// quarantine mailbox (created on demand). Real bounces of your own mail
/// and ordinary mail stay: each response is judged against the mail you
/// sent in the sent-days (config, default 30) before it arrived, however
/// old it is. Nothing is deleted or sent, every move is
/// journaled for `backscatter restore`, and a sweep that is interrupted is
/// finished by the next one. Ctrl-C finishes the batch in flight (at most
/// 500 messages), says how many moved, and exits 130.
///
/// Messages you restored before (marked $NotBackscatter, or on the local
/// list) are never moved again.
///
/// Reruns read only what changed. After a sweep, the mailbox's
/// UIDVALIDITY, the UID up to which every message was judged and (with
/// CONDSTORE) its HIGHESTMODSEQ are kept in the state dir; the next
/// `clean` reads only the messages that arrived since (restored ones
/// included), and those whose $NotBackscatter keyword was removed. It
/// reads everything again when the mailbox was renumbered, or when what
/// the verdicts depend on changed (a new version of backscatter, your
/// addresses, the keep list, the Sent mailboxes or sent-days), or with
/// --full. A dry run or --since uses the record but never advances it.
///
/// Examples:
///
///   backscatter clean --dry-run           # list what would move, and why
///
///   backscatter clean --full              # read every message again
///
///   backscatter clean --json --each       # one JSON line per message, then the summary
///
///   backscatter clean --account work --since 2026-11-20
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CleanArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// The mailbox to sweep.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Only messages received on or after this day: YYYY-MM-DD, today or
    /// yesterday, a day of your time zone (TZ, else the system's). The
    /// server compares days in a zone of its choosing (IMAP SEARCH SINCE), so the
    /// sweep asks it for one day more, to be sure it misses nothing of
    /// yours: it may judge mail up to two days older. Each message, with
    /// or without it, is judged against the mail you sent in the
    /// sent-days before it arrived; the sent index is widened to reach
    /// back that far (once: the cache keeps it).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Classify and list what would move, and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read every message, not only those that arrived or changed since
    /// the last sweep of this mailbox.
    #[arg(long)]
    pub full: bool,
    /// Print one JSON summary object.
    #[arg(long)]
    pub json: bool,
    /// Before the summary, print one JSON object per message: uid,
    /// action (moved, would_move, kept, kept_by_user, already_moved, gone,
    /// error), verdict, kind, message_id, subject, reasons.
    #[arg(long)]
    pub each: bool,
}

pub fn run(args: CleanArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    crate::lexicon::prefer_speed();
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?.clone();
    let since = args.since.as_deref().map(parse_date).transpose()?;
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let opts = CleanOptions {
        mailbox: args.mailbox.clone(),
        since,
        dry_run: args.dry_run,
        full: args.full,
        each: args.each,
        stop: Some(stop.clone()),
    };
    let quiet = super::common::verbosity() == super::common::Verbosity::Quiet;
    let bar = (!args.json && !quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} messages [{bar:30}] {rate} ETA {eta}",
            )
            .expect("template")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&super::common::rate(s.per_sec()));
                },
            )
            .progress_chars("=> "),
        );
        b
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        super::restore::stop_on_ctrl_c(stop.clone());
        clean::clean(&a, &secret, &opts, &dirs, &mut progress).await
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = result.map_err(clean_error)?;
    // Nothing can be told to be a response to the user's own mail.
    if s.sent_indexed == 0 {
        super::common::warn(&crate::account::empty_index_warning(a.sent_days));
    }
    let mut out = std::io::stdout().lock();
    let w = super::output_error;
    for o in &s.each {
        let row = o.row.as_ref();
        let v = serde_json::json!({
            "uid": o.uid,
            "action": o.action,
            "verdict": row.map(|r| r.verdict.verdict),
            "kind": row.and_then(|r| r.verdict.kind),
            "message_id": row.and_then(|r| r.message_id.clone()),
            "subject": row.and_then(|r| r.subject.clone()),
            "reasons": row.map_or_else(
                || vec!["the server returned nothing readable for this message: left where it is".to_string()],
                |r| r.verdict.reasons.clone()
            ),
        });
        writeln!(out, "{v}").map_err(w)?;
    }
    let done = |out: &mut std::io::StdoutLock<'_>| -> Result<ExitCode, Error> {
        if let Some(why) = &s.refused {
            // The same outcome as `clean` on this server.
            out.flush().map_err(w)?;
            return Err(Error::Runtime(format!(
                "{why} (this dry run lists the verdicts; `clean` would move none of them)"
            )));
        }
        if s.interrupted {
            out.flush().map_err(w)?;
            eprintln!("interrupted: {} moved, run again to finish", s.quarantined);
            return Ok(ExitCode::from(130));
        }
        Ok(ExitCode::SUCCESS)
    };
    if args.json {
        let v = serde_json::json!({
            "scanned": s.scanned,
            "quarantined": s.quarantined,
            "legitimate": s.legitimate,
            "normal": s.normal,
            "errors": s.errors,
            "seconds": (s.seconds * 1000.0).round() / 1000.0,
            "dry_run": args.dry_run,
            "recovered": s.recovered,
            "already_moved": s.already_moved,
            "gone": s.gone,
            "kept_by_user": s.kept_by_user,
            "kept_by_keep_list": s.kept_by_list,
            "bytes_fetched": s.bytes_fetched,
            "bytes_inflated": s.bytes_inflated,
            "round_trips": s.round_trips,
            "sweep": if s.full.is_some() { "full" } else { "rerun" },
            "full_reason": s.full,
            "skipped_known": s.skipped_known,
            "sent_indexed": s.sent_indexed,
            "sent_fetched": s.sent_fetched,
            "sent_round_trips": s.sent_round_trips,
            "sent_bytes_fetched": s.sent_bytes_fetched,
            "interrupted": s.interrupted,
            "refused": s.refused,
        });
        writeln!(out, "{v}").map_err(w)?;
        return done(&mut out);
    }
    if args.dry_run {
        let what = if s.refused.is_some() {
            "backscatter"
        } else {
            "would move"
        };
        for r in &s.would_move {
            dry_run_line(&mut out, what, r, "").map_err(w)?;
        }
        // The legitimate responses are the user's own delivery problems:
        // name them.
        for r in &s.legitimate_kept {
            dry_run_line(
                &mut out,
                "would keep",
                r,
                "  (legitimate: a response to your own mail)",
            )
            .map_err(w)?;
        }
        for (r, why) in &s.kept_listed {
            dry_run_line(&mut out, "would keep", r, &format!("  ({why})")).map_err(w)?;
        }
    }
    if s.recovered > 0 {
        writeln!(
            out,
            "Finished {} move{} an interrupted run had left half-done.",
            s.recovered,
            if s.recovered == 1 { "" } else { "s" }
        )
        .map_err(w)?;
    }
    // A note (what a rerun saved), dropped under -q as notes are.
    if s.skipped_known > 0 && super::common::verbosity() > super::common::Verbosity::Quiet {
        writeln!(
            out,
            "Skipped {} an earlier sweep judged (--full reads them again).",
            super::common::plural(s.skipped_known, "message"),
        )
        .map_err(w)?;
    }
    let by_list: usize = s.kept_by_list.values().sum();
    let restored = s.kept_by_user.saturating_sub(by_list);
    if restored > 0 {
        writeln!(
            out,
            "Kept {} message{} you restored before (marked $NotBackscatter or remembered locally).",
            restored,
            if restored == 1 { "" } else { "s" }
        )
        .map_err(w)?;
    }
    if by_list > 0 {
        let entries: Vec<String> = s
            .kept_by_list
            .iter()
            .map(|(e, n)| format!("{e}: {n}"))
            .collect();
        writeln!(
            out,
            "Kept {} by your keep list ({}).",
            super::common::plural(by_list, "message"),
            entries.join(", ")
        )
        .map_err(w)?;
    }
    writeln!(
        out,
        "{} {} of {} in {:.1} s: {}, {} legitimate (kept), {} normal (kept); sent index: {}.",
        if args.dry_run { "Dry run:" } else { "Swept" },
        super::common::plural(s.scanned, "message"),
        crate::imap::shown(&s.mailbox),
        s.seconds,
        match (args.dry_run, s.refused.is_some()) {
            (true, true) => format!(
                "{} backscatter (none can be moved to {} on this server)",
                s.quarantined,
                crate::imap::shown(&s.quarantine)
            ),
            (true, false) => format!(
                "{} would move to {}",
                s.quarantined,
                crate::imap::shown(&s.quarantine)
            ),
            _ => format!(
                "{} moved to {}{}",
                s.quarantined,
                crate::imap::shown(&s.quarantine),
                already(&s)
            ),
        },
        s.legitimate,
        s.normal,
        super::common::plural(s.sent_indexed, "message"),
    )
    .map_err(w)?;
    if s.errors > 0 {
        writeln!(
            out,
            "{} message{} could not be judged and stayed where {}.",
            s.errors,
            if s.errors == 1 { "" } else { "s" },
            if s.errors == 1 { "it was" } else { "they were" }
        )
        .map_err(w)?;
    }
    done(&mut out)
}

/// What the sweep found moved or gone by another client meanwhile (a
/// `watch` running at the same time), as a parenthesis; empty when
/// nothing was.
fn already(s: &crate::clean::Summary) -> String {
    let mut parts = Vec::new();
    if s.already_moved > 0 {
        parts.push(format!(
            "{} already moved by another client",
            s.already_moved
        ));
    }
    if s.gone > 0 {
        parts.push(format!(
            "{} no longer in the mailbox (deleted or moved elsewhere meanwhile)",
            s.gone
        ));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join(", ")),
    }
}

/// One message of the dry run: what would happen, its UID, kind and
/// subject, then the reason that decided, control characters blanked.
fn dry_run_line(
    out: &mut impl Write,
    what: &str,
    r: &crate::clean::Row,
    note: &str,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{what}  uid {:<7} {:<15} {}{note}",
        r.uid,
        r.verdict.kind.map_or("-", |k| k.as_str()),
        crate::mail::printable(r.subject.as_deref().unwrap_or("(no subject)"))
    )?;
    if let Some(reason) = r.verdict.reasons.first() {
        writeln!(out, "            {}", crate::mail::printable(reason))?;
    }
    Ok(())
}
