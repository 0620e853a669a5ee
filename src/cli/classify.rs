//! `backscatter classify`: classify message files offline, with no account.
//!
//! Reads `.eml` files (a directory is walked; an mbox is split), builds the
//! sent index from `--sent` / `--sent-ids`, and prints a table with a summary
//! line, or one JSON object per message with `--json` (the contract in the
//! design). A file that cannot be read is reported on stderr and counted;
//! the others are still classified, and the exit status is then 1.

use super::Error;
use crate::classify::{classify, Context, Decision, Kind, Verdict};
use crate::mbox;
use crate::sent::{SentIndex, SentMessage};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Classify message files offline and show what backscatter would do.
///
/// Each message gets a verdict: `backscatter` (an automated response to
/// mail you did not send: it would be quarantined), `legitimate` (an
/// automated response to mail you did send: kept), or `normal` (not an
/// automated response: kept). Without --sent or --sent-ids every automated
/// response counts as backscatter.
///
/// Examples:
///
///   backscatter classify assets/samples/
///
///   backscatter classify --sent ~/Mail/Sent.mbox --json ~/Mail/inbox/cur/
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ClassifyArgs {
    /// Your sent mail: a directory of .eml files or an mbox file (repeatable).
    #[arg(long, value_name = "PATH")]
    pub sent: Vec<PathBuf>,

    /// A file with one Message-ID of your sent mail per line (repeatable;
    /// `# comments`, also after an ID; a line that is not one is refused).
    #[arg(long, value_name = "FILE")]
    pub sent_ids: Vec<PathBuf>,

    /// One of your own addresses (repeatable; used to explain verdicts).
    #[arg(long = "address", value_name = "ADDR")]
    pub addresses: Vec<String>,

    /// Print one JSON object per message instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Message files: .eml, an mbox, or directories (walked for .eml files
    /// and Maildir-style files without an extension).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// One message to classify: where it came from and its bytes.
pub struct Loaded {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Files under `path`: the path itself if it is a file, else the mail files
/// below it (sorted, so output order is stable).
fn expand(path: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    match std::fs::metadata(path) {
        Err(e) => {
            errors.push(format!("cannot read {}: {}", path.display(), e));
            Vec::new()
        }
        Ok(m) if m.is_dir() => {
            let mut out = Vec::new();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                match entry {
                    Err(e) => errors.push(format!("cannot read {}: {}", path.display(), e)),
                    Ok(e) if e.file_type().is_file() && is_mail_file(e.path()) => {
                        out.push(e.into_path())
                    }
                    Ok(e) if e.file_type().is_file() && is_maildir_like(e.path()) => {
                        out.push(e.into_path())
                    }
                    Ok(_) => {}
                }
            }
            out
        }
        Ok(_) => vec![path.to_path_buf()],
    }
}

/// In a directory: `.eml` files are read.
fn is_mail_file(p: &Path) -> bool {
    has_eml_extension(p)
        && !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}

fn has_eml_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("eml"))
}

/// Files of a Maildir (`cur/1700000000.M1P2.host:2,S`) have no meaningful
/// extension; they are read when they sit in a `cur` or `new` directory.
fn is_maildir_like(p: &Path) -> bool {
    let parent = p
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str());
    matches!(parent, Some("cur") | Some("new"))
        && !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}

/// Read every message named by `paths`; mbox files are split (an `.eml`
/// file is always one message, even when it starts with a `From ` line).
pub fn load(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<Loaded> {
    let mut out = Vec::new();
    for p in paths {
        for file in expand(p, errors) {
            match std::fs::read(&file) {
                Err(e) => errors.push(format!("cannot read {}: {}", file.display(), e)),
                Ok(bytes) if mbox::is_mbox(&bytes) && !has_eml_extension(&file) => {
                    let parts = mbox::split(&bytes);
                    let many = parts.len() > 1;
                    for (i, m) in parts.into_iter().enumerate() {
                        let path = if many {
                            format!("{}#{}", file.display(), i + 1)
                        } else {
                            file.display().to_string()
                        };
                        out.push(Loaded {
                            path,
                            bytes: m.to_vec(),
                        });
                    }
                }
                Ok(bytes) => out.push(Loaded {
                    path: file.display().to_string(),
                    bytes: mbox::strip_envelope_line(bytes),
                }),
            }
        }
    }
    out
}

/// Build the sent index from files and ID lists. Errors: an ID list that
/// cannot be read or holds a line that is not a Message-ID
/// ([`crate::sent::parse_id_list`]) refuses the command (exit 2); a
/// message file that cannot be read is added to `errors`.
pub fn build_sent_index(
    sent: &[PathBuf],
    sent_ids: &[PathBuf],
    errors: &mut Vec<String>,
) -> Result<SentIndex, Error> {
    let mut idx = SentIndex::new();
    let mut with_id = 0usize;
    for m in load(sent, errors) {
        if !crate::sent::is_message(&m.bytes) {
            super::common::warn(&format!(
                "skipped {} in --sent: not a mail message (no From, Date or Message-ID header)",
                m.path
            ));
            continue;
        }
        if let Some(s) = SentMessage::from_raw(&m.bytes) {
            with_id += usize::from(s.message_id.is_some());
            idx.insert(&s);
        }
    }
    if !sent.is_empty() && with_id == 0 {
        // Every response would count as backscatter: say so once.
        eprintln!(
            "warning: no sent message with a Message-ID was found in --sent {} (it takes .eml files or an mbox; a list of IDs goes to --sent-ids)",
            sent.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for f in sent_ids {
        // One parser and the same refusal as `sieve generate --sent-ids`.
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?;
        let ids = crate::sent::parse_id_list(&text)
            .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?;
        for id in ids {
            idx.insert_id(&id);
        }
    }
    Ok(idx)
}

/// The contract's JSON line, plus the details of the original.
#[derive(Serialize)]
struct JsonLine<'a> {
    path: &'a str,
    verdict: Decision,
    kind: Option<Kind>,
    original_message_id: Option<&'a backscatter::mail::MessageId>,
    reasons: &'a [String],
    original: &'a crate::classify::Original,
}

pub fn run(args: ClassifyArgs) -> Result<ExitCode, Error> {
    for p in args.sent.iter().chain(&args.sent_ids) {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{} does not exist (--sent takes a directory of .eml files or an mbox; --sent-ids a file of Message-IDs)",
                p.display()
            )));
        }
    }
    crate::lexicon::prefer_speed();
    let mut errors = Vec::new();
    let sent = build_sent_index(&args.sent, &args.sent_ids, &mut errors)?;
    let own: Vec<String> = args
        .addresses
        .iter()
        .map(|a| a.trim().to_lowercase())
        .collect();
    let ctx = Context {
        sent: &sent,
        own_addresses: &own,
    };
    let messages = load(&args.files, &mut errors);

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut counts: BTreeMap<Decision, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    let write_err = super::output_error;
    let color = !args.json && super::common::color(io::stdout().is_terminal());
    if !args.json && !messages.is_empty() {
        writeln!(
            out,
            "{:<11}  {:<15}  {:<40}  MESSAGE / WHY",
            "VERDICT", "KIND", "ORIGINAL MESSAGE-ID"
        )
        .map_err(write_err)?;
    }
    for m in &messages {
        let v = classify(&m.bytes, &ctx);
        *counts.entry(v.verdict).or_default() += 1;
        if let Some(k) = v.kind {
            *kinds.entry(k).or_default() += 1;
        }
        if args.json {
            let line = JsonLine {
                path: &m.path,
                verdict: v.verdict,
                kind: v.kind,
                original_message_id: v.original.message_id.as_ref(),
                reasons: &v.reasons,
                original: &v.original,
            };
            let s = serde_json::to_string(&line)
                .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
            writeln!(out, "{s}").map_err(write_err)?;
        } else {
            write_row(&mut out, &m.path, &v, color).map_err(write_err)?;
        }
    }
    if !args.json {
        let total = messages.len();
        let get = |d| counts.get(&d).copied().unwrap_or(0);
        let kinds_s: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        writeln!(
            out,
            "\n{total} message{}: {} backscatter, {} legitimate, {} normal{}; sent mail: {} message{} indexed",
            if total == 1 { "" } else { "s" },
            get(Decision::Backscatter),
            get(Decision::Legitimate),
            get(Decision::Normal),
            if kinds_s.is_empty() {
                String::new()
            } else {
                format!(" (automated: {})", kinds_s.join(", "))
            },
            sent.len(),
            if sent.len() == 1 { "" } else { "s" },
        )
        .map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    for e in &errors {
        eprintln!("backscatter: {e}");
    }
    if !errors.is_empty() {
        return Err(Error::Runtime(format!(
            "{} input{} could not be read (see above); the rest were classified",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        )));
    }
    if messages.is_empty() {
        return Err(Error::Usage(
            "no message files found (give .eml files, an mbox, or directories containing .eml files)"
                .into(),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_row(out: &mut impl Write, path: &str, v: &Verdict, color: bool) -> io::Result<()> {
    let verdict = v.verdict.as_str();
    let (pre, post) = match (color, v.verdict) {
        (true, Decision::Backscatter) => ("\x1b[31m", "\x1b[0m"),
        (true, Decision::Legitimate) => ("\x1b[33m", "\x1b[0m"),
        (true, Decision::Normal) => ("\x1b[32m", "\x1b[0m"),
        _ => ("", ""),
    };
    let kind = v.kind.map_or("-", Kind::as_str);
    let id = v
        .original
        .message_id
        .as_ref()
        .map_or("-".to_string(), |m| m.to_string());
    let id = shorten(&id, 40);
    writeln!(
        out,
        "{pre}{verdict:<11}{post}  {kind:<15}  {id:<40}  {path}"
    )?;
    if let Some(r) = v.reasons.first() {
        writeln!(out, "{:<11}  {:<15}  {:<40}    {}", "", "", "", sanitize(r))?;
    }
    Ok(())
}

/// Text from mail never reaches the terminal with control characters
/// ([`crate::mail::printable`]).
fn sanitize(s: &str) -> String {
    crate::mail::printable(s)
}

fn shorten(s: &str, max: usize) -> String {
    let s = sanitize(s);
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
