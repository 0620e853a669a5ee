//! `backscatter filter`: run the account's own Sieve rules once over a
//! mailbox.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use crate::filter::{self, FilterOptions};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Run your own Sieve rules once over a mailbox, on the client.
///
/// The rules are the account's `rules = "PATH.sieve"` (see `backscatter
/// sieve check` and `sieve test`): fileinto becomes an IMAP MOVE (COPY with
/// :copy or when the message also stays), imap4flags flags are added with
/// STORE. The backscatter verdict is offered to the script through the
/// environment extension (vnd.backscatter.verdict, .kind,
/// .original-message-id); the backscatter sweep itself stays `clean`'s.
///
/// Every move is journaled first and undone by `backscatter restore
/// --rules`; a run that is interrupted is finished by the next, and a
/// message filtered once is not filtered again, unless you ask with
/// --again (after editing the rules, say). A message whose action the
/// server refused (a mailbox name it will not create, a COPY it refuses)
/// stays where it is, is counted in "errors", and is tried again by the
/// next run.
///
/// Examples:
///
///   backscatter filter --dry-run            # each message's actions
///
///   backscatter filter --mailbox Archive --since 2026-11-01
///
///   backscatter filter --again --since 2026-11-20   # after editing the rules
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FilterArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long)]
    pub account: Option<String>,
    /// The mailbox to filter.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Only messages received on or after this day: YYYY-MM-DD, today or
    /// yesterday, a day of your time zone (TZ, else the system's), from
    /// its local midnight (by the time each message arrived).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// List each message's actions, and change nothing; the summary
    /// counts what a run would do.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the rules again over messages an earlier run already filtered
    /// (edited rules): what they copy is copied again.
    #[arg(long)]
    pub again: bool,
    /// Print JSON: with --dry-run one object per message, then the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: FilterArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?.clone();
    let Some(rules_path) = a.rules.clone() else {
        return Err(Error::Usage(format!(
            "account \"{}\" has no rules: add rules = \"PATH.sieve\" to [accounts.{}] in {}",
            a.name,
            a.name,
            cfg.path.display()
        )));
    };
    let rules = super::rules::load(&rules_path)?;
    let since = args.since.as_deref().map(parse_date).transpose()?;
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let opts = FilterOptions {
        mailbox: args.mailbox.clone(),
        since,
        dry_run: args.dry_run,
        again: args.again,
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
    let result = runtime()?.block_on(filter::filter(
        &a,
        &secret,
        &rules,
        &opts,
        &dirs,
        &mut progress,
    ));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = result.map_err(clean_error)?;
    let mut out = std::io::stdout().lock();
    let w = super::output_error;
    let clean = crate::mail::printable;
    if args.json {
        for r in &s.rows {
            writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default()).map_err(w)?;
        }
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["seconds"] = serde_json::json!((s.seconds * 1000.0).round() / 1000.0);
        v["dry_run"] = serde_json::json!(args.dry_run);
        writeln!(out, "{v}").map_err(w)?;
        dropped_warning(&s);
        return failed(&s);
    }
    for r in &s.rows {
        writeln!(
            out,
            "uid {:<7} {}",
            r.uid,
            clean(r.subject.as_deref().unwrap_or("(no subject)"))
        )
        .map_err(w)?;
        if let Some(e) = &r.error {
            writeln!(out, "            error: {}; left as it is", clean(e)).map_err(w)?;
        }
        for act in &r.actions {
            writeln!(out, "            {}", clean(act)).map_err(w)?;
        }
    }
    dropped_warning(&s);
    if s.recovered > 0 {
        writeln!(
            out,
            "Finished {} move{} an interrupted run had left half-done.",
            s.recovered,
            if s.recovered == 1 { "" } else { "s" }
        )
        .map_err(w)?;
    }
    let earlier = if s.already > 0 {
        format!("; {} filtered by an earlier run", s.already)
    } else {
        String::new()
    };
    let messages = format!(
        "{} message{} of {} in {:.1} s",
        s.scanned,
        if s.scanned == 1 { "" } else { "s" },
        crate::imap::shown(&s.mailbox),
        s.seconds
    );
    if args.dry_run {
        // The same counts a run prints, said as what it would do.
        writeln!(
            out,
            "Dry run, nothing changed: {messages}: {} would move, {} copies would be made, {} would be flagged, {} would stay, {} with errors{earlier}.",
            s.moved, s.copied, s.flagged, s.kept, s.errors,
        )
        .map_err(w)?;
    } else {
        writeln!(
            out,
            "Filtered {messages}: {} moved, {} copies, {} flagged, {} left in {}, {} with errors{earlier}.",
            s.moved, s.copied, s.flagged, s.kept, crate::imap::shown(&s.mailbox), s.errors,
        )
        .map_err(w)?;
    }
    failed(&s)
}

/// On stderr: the `\Deleted` flags the rules computed and the engine
/// dropped (the rest of the rules ran).
fn dropped_warning(s: &filter::FilterSummary) {
    if s.dropped_deleted > 0 {
        eprintln!(
            "warning: your rules computed the flag \\Deleted (from a variable, a header or an encoded character) for {} message{}; it was dropped, since backscatter never marks mail for deletion (use fileinto \"Trash\")",
            s.dropped_deleted,
            if s.dropped_deleted == 1 { "" } else { "s" }
        );
    }
}

/// Exit 1 when a message's rules failed (a dry run too: its errors are
/// real), after saying on stderr what went wrong.
fn failed(s: &filter::FilterSummary) -> Result<ExitCode, Error> {
    if s.errors == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    Err(Error::Runtime(format!(
        "the rules failed for {} message{} (left where {}): {}",
        s.errors,
        if s.errors == 1 { "" } else { "s" },
        if s.errors == 1 { "it was" } else { "they were" },
        s.error_texts
            .iter()
            .map(|t| t.replace(char::is_control, " "))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}
