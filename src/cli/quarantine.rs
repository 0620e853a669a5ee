//! `backscatter quarantine list|show`: what is in quarantine, and why.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret, zone};
use super::Error;
use crate::clean::Dirs;
use crate::quarantine::Listed;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// One line per message in quarantine: when it entered quarantine (your
    /// local time, with its offset from UTC), kind, sender, subject and the
    /// reason it was moved.
    ///
    /// Messages the server's Sieve script filed are listed too; their
    /// reason is worked out by classifying them now.
    ///
    /// Examples:
    ///
    ///   backscatter quarantine list --since 2026-11-20 --kind bounce
    ///
    ///   backscatter quarantine list --json | jq -r 'select(.message_id == null) | .uid'
    #[command(verbatim_doc_comment)]
    List {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long)]
        account: Option<String>,
        /// Only what entered quarantine on or after this day: YYYY-MM-DD,
        /// today or yesterday, a day of your time zone (TZ, else the
        /// system's), from local midnight.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only this kind: bounce, autoreply, challenge, virus_notice,
        /// feedback_report.
        #[arg(long, value_name = "K")]
        kind: Option<String>,
        /// One JSON object per line and message: uid, uidvalidity, date,
        /// arrived, kind, sender, subject, message_id (null when none),
        /// reasons, source ("journal": moved by clean or watch; "server":
        /// filed by the server's script, marked $BackscatterFiled; "other":
        /// not moved by backscatter, left out of restore --all), mailbox,
        /// moved (arrived and moved in Unix seconds, zone-free).
        #[arg(long)]
        json: bool,
    },
    /// One message in quarantine, by UID or Message-ID: the verdict with
    /// all its reasons, and the original that was found.
    ///
    /// A Message-ID that several messages in quarantine carry (the same
    /// response delivered twice, or a responder that reuses IDs) shows
    /// each of them, in UID order, after a line naming their UIDs; give
    /// the UID to see one.
    Show {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long)]
        account: Option<String>,
        /// A UID in the quarantine mailbox (as `list` prints) or a
        /// Message-ID.
        #[arg(value_name = "ID-OR-UID")]
        which: String,
        /// Print JSON: one object per message and line, the listing's
        /// fields plus "verdict".
        #[arg(long)]
        json: bool,
    },
}

/// Text from mail, fit for the terminal ([`crate::mail::printable`]).
fn one_line(s: &str) -> String {
    crate::mail::printable(s)
}

fn cut(s: &str, n: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= n {
        s
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// When it entered quarantine, for people: local time with the offset
/// (`2026-12-01 08:20 +09:00`), in the user's zone.
fn when(ts: i64) -> String {
    crate::day::time(ts, zone())
}

pub fn run(args: QuarantineArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    let w = super::output_error;
    match args.command {
        QuarantineCommand::List {
            account: name,
            since,
            kind,
            json,
        } => {
            let a = account(&cfg, name.as_deref())?.clone();
            let since = since.as_deref().map(parse_date).transpose()?;
            if let Some(k) = &kind {
                if !crate::Kind::ALL.iter().any(|x| x.as_str() == k) {
                    return Err(Error::Usage(format!(
                        "\"{k}\" is not a kind: use bounce, autoreply, challenge, virus_notice or feedback_report"
                    )));
                }
            }
            let secret = secret(&a)?;
            let crate::restore::Listing {
                mailbox,
                messages: all,
            } = runtime()?
                .block_on(crate::restore::list(&a, &secret, &dirs))
                .map_err(clean_error)?;
            let shown: Vec<&Listed> = all
                .iter()
                .filter(|l| since.is_none_or(|t| l.since_key() >= t))
                .filter(|l| {
                    kind.as_deref()
                        .is_none_or(|k| l.kind.is_some_and(|x| x.as_str() == k))
                })
                .collect();
            for l in &shown {
                if json {
                    let v = serde_json::to_string(l).map_err(|e| Error::Runtime(e.to_string()))?;
                    writeln!(out, "{v}").map_err(w)?;
                } else {
                    writeln!(
                        out,
                        "{:>6}  {}  {:<15} {:<30} {:<40} {}",
                        l.uid,
                        when(l.since_key()),
                        l.kind.map_or("-", |k| k.as_str()),
                        cut(l.sender.as_deref().unwrap_or("(no sender)"), 30),
                        cut(l.subject.as_deref().unwrap_or("(no subject)"), 40),
                        one_line(l.reasons.first().map_or("", String::as_str)),
                    )
                    .map_err(w)?;
                }
            }
            if !json {
                writeln!(
                    out,
                    "{} message{} in {}{}.",
                    shown.len(),
                    if shown.len() == 1 { "" } else { "s" },
                    crate::imap::shown(&mailbox),
                    if shown.len() == all.len() {
                        String::new()
                    } else {
                        format!(" shown of {}", all.len())
                    }
                )
                .map_err(w)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Show {
            account: name,
            which,
            json,
        } => {
            let a = account(&cfg, name.as_deref())?.clone();
            let secret = secret(&a)?;
            let (mailbox, found) = runtime()?
                .block_on(crate::restore::show(&a, &secret, &dirs, &which))
                .map_err(clean_error)?;
            if found.is_empty() {
                return Err(Error::Runtime(format!(
                    "no message \"{}\" in {}: give a UID or Message-ID that `backscatter quarantine list` shows",
                    one_line(&which),
                    crate::imap::shown(&mailbox)
                )));
            }
            if json {
                // One object per message and line, as `list --json`.
                for (l, v) in &found {
                    let mut obj =
                        serde_json::to_value(l).map_err(|e| Error::Runtime(e.to_string()))?;
                    obj["verdict"] =
                        serde_json::to_value(v).map_err(|e| Error::Runtime(e.to_string()))?;
                    writeln!(out, "{obj}").map_err(w)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            if found.len() > 1 {
                let uids: Vec<String> = found.iter().map(|(l, _)| l.uid.to_string()).collect();
                writeln!(
                    out,
                    "{} messages in {} have Message-ID {} (UIDs {}); each is shown below. `backscatter quarantine show UID` shows one.",
                    found.len(),
                    crate::imap::shown(&mailbox),
                    one_line(found[0].0.message_id.as_deref().unwrap_or(&which)),
                    uids.join(", ")
                )
                .map_err(w)?;
            }
            for (l, v) in &found {
                if found.len() > 1 {
                    writeln!(out).map_err(w)?;
                }
                show_one(&mut out, l, v).map_err(w)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One message of `quarantine show`, as text.
fn show_one(out: &mut impl Write, l: &Listed, v: &crate::Verdict) -> std::io::Result<()> {
    let field = |name: &str, v: Option<&str>| format!("{name:<12} {}", one_line(v.unwrap_or("-")));
    for line in [
        field("UID", Some(&l.uid.to_string())),
        field("Message-ID", l.message_id.as_deref()),
        field("From", l.sender.as_deref()),
        field("Subject", l.subject.as_deref()),
        field("Date", l.date.as_deref()),
        match (&l.mailbox, l.moved) {
            (Some(m), Some(t)) => field("Moved", Some(&format!("from {m} on {}", when(t)))),
            _ => field(
                "Filed",
                Some(&format!(
                    "by the server's script, arrived {}",
                    when(l.arrived)
                )),
            ),
        },
    ] {
        writeln!(out, "{line}")?;
    }
    if l.source == "journal" && !l.reasons.is_empty() {
        writeln!(out, "Reasons when it was moved:")?;
        for r in &l.reasons {
            writeln!(out, "  - {}", one_line(r))?;
        }
    }
    let verdict = match v.verdict {
        crate::Decision::Backscatter => "backscatter",
        crate::Decision::Legitimate => "legitimate (a response to your own mail)",
        crate::Decision::Normal => "normal (not an automated response)",
    };
    writeln!(
        out,
        "Verdict now: {verdict}{}",
        v.kind
            .map_or(String::new(), |k| format!(", {}", k.as_str()))
    )?;
    for r in &v.reasons {
        writeln!(out, "  - {}", one_line(r))?;
    }
    let o = &v.original;
    writeln!(
        out,
        "Original:    {}",
        match (&o.message_id, &o.message_id_source) {
            (Some(id), Some(src)) => format!("{} (found in {src})", one_line(&id.to_string())),
            (Some(id), None) => one_line(&id.to_string()),
            _ => "not found".into(),
        }
    )?;
    for (name, val) in [
        ("  from", o.from.as_deref()),
        ("  subject", o.subject.as_deref()),
        ("  date", o.date.as_deref()),
        ("  status", o.status.as_deref()),
        ("  diagnostic", o.diagnostic.as_deref()),
    ] {
        if let Some(val) = val {
            writeln!(out, "{name:<12} {}", one_line(val))?;
        }
    }
    if !o.recipients.is_empty() {
        writeln!(out, "  recipients {}", one_line(&o.recipients.join(", ")))?;
    }
    Ok(())
}
