//! `backscatter clean`: sweep a mailbox once.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::clean::{self, CleanOptions, Dirs};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Sweep a mailbox once: move backscatter to the quarantine mailbox.
///
/// Every message of the mailbox (default INBOX) is classified; automated
/// responses to mail you did not send are moved to the account's
/// quarantine mailbox (created on demand). Real bounces of your own mail
/// and ordinary mail stay. Nothing is deleted or sent, every move is
/// journaled for `backscatter restore`, and a sweep that is interrupted is
/// finished by the next one.
///
/// Examples:
///
///   backscatter clean --dry-run           # list what would move, and why
///
///   backscatter clean --account work --since 2026-11-20
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CleanArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long)]
    pub account: Option<String>,
    /// The mailbox to sweep.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Only messages received on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Classify and list what would move, and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON summary object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CleanArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    crate::lexicon::prefer_speed();
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?.clone();
    let since = args.since.as_deref().map(parse_date).transpose()?;
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let opts = CleanOptions {
        mailbox: args.mailbox.clone(),
        since,
        dry_run: args.dry_run,
    };
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} messages [{bar:30}] {per_sec} ETA {eta}",
            )
            .expect("template")
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
    let result = rt.block_on(clean::clean(&a, &secret, &opts, &dirs, &mut progress));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = result.map_err(clean_error)?;
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| Error::Runtime(format!("cannot write output: {e}"));
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
            "kept_by_user": s.kept_by_user,
            "bytes_fetched": s.bytes_fetched,
            "bytes_inflated": s.bytes_inflated,
            "round_trips": s.round_trips,
            "sent_indexed": s.sent_indexed,
        });
        writeln!(out, "{v}").map_err(w)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        for r in &s.would_move {
            writeln!(
                out,
                "would move  uid {:<7} {:<15} {}",
                r.uid,
                r.verdict.kind.map_or("-", |k| k.as_str()),
                r.subject
                    .as_deref()
                    .unwrap_or("(no subject)")
                    .replace(char::is_control, " ")
            )
            .map_err(w)?;
            if let Some(reason) = r.verdict.reasons.first() {
                writeln!(out, "            {}", reason.replace(char::is_control, " "))
                    .map_err(w)?;
            }
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
    if s.kept_by_user > 0 {
        writeln!(
            out,
            "Kept {} message{} you restored before (marked $NotBackscatter or remembered locally).",
            s.kept_by_user,
            if s.kept_by_user == 1 { "" } else { "s" }
        )
        .map_err(w)?;
    }
    writeln!(
        out,
        "{} {} message{} of {} in {:.1} s: {} {} to {}, {} legitimate (kept), {} normal (kept); sent index: {} messages.",
        if args.dry_run { "Dry run:" } else { "Swept" },
        s.scanned,
        if s.scanned == 1 { "" } else { "s" },
        args.mailbox,
        s.seconds,
        s.quarantined,
        if args.dry_run { "would move" } else { "moved" },
        a.quarantine,
        s.legitimate,
        s.normal,
        s.sent_indexed,
    )
    .map_err(w)?;
    Ok(ExitCode::SUCCESS)
}
