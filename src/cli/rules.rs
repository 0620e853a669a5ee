//! `backscatter sieve check FILE` and `backscatter sieve test FILE MSG...`:
//! the user's own rules checked and tried offline, and [`load`], which reads
//! a rules file and the scripts it includes (shared by `filter` and
//! `watch`).

use super::classify::{build_sent_index, load as load_messages};
use super::Error;
use crate::rules::{describe, Envelope, Outcome, Rules, RulesError, VerdictEnv};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Read and compile a rules file (see [`crate::filter::compile_file`]);
/// unreadable or refused rules are a usage error (exit 2) naming the file
/// and line.
pub fn load(path: &Path) -> Result<Rules, Error> {
    crate::filter::load_rules(path).map_err(Error::Usage)
}

fn compile(path: &Path) -> Result<Result<Rules, RulesError>, Error> {
    crate::filter::compile_file(path).map_err(Error::Usage)
}

/// `sieve check`: compile, and list every command the agent refuses, one
/// a line on stderr (`FILE: line N: ...`), then exit 2.
pub fn check(file: &Path) -> Result<ExitCode, Error> {
    match compile(file)? {
        Ok(_) => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for (line, command) in crate::rules::variable_flags(&text) {
                eprintln!(
                    "{}: warning: line {line}: {command} takes a flag computed when the script runs; the agent drops \\Deleted from it whatever it becomes, but `sieve install --rules` refuses such a flag (the server cannot be guarded so)",
                    file.display()
                );
            }
            let requires = crate::sieve::requires_of(&text);
            println!(
                "{}: compiles, and the agent runs all of it{}",
                file.display(),
                if requires.is_empty() {
                    String::new()
                } else {
                    format!(" (requires {})", requires.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(RulesError::Refused(r)) => {
            for x in &r {
                eprintln!("{}: {x}", file.display());
            }
            Err(Error::Usage(format!(
                "{}: the agent refuses {} command{} in these rules (listed above)",
                file.display(),
                r.len(),
                if r.len() == 1 { "" } else { "s" }
            )))
        }
        Err(e) => Err(Error::Usage(format!("{}: {e}", file.display()))),
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    path: &'a str,
    verdict: &'a str,
    kind: &'a str,
    /// The envelope as taken from the message (null: unknown).
    envelope_from: Option<&'a str>,
    envelope_to: Option<&'a str>,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// `sieve test`: the actions for each message file.
pub fn test(
    file: &Path,
    messages: &[PathBuf],
    sent: &[PathBuf],
    sent_ids: &[PathBuf],
    json: bool,
) -> Result<ExitCode, Error> {
    let rules = load(file)?;
    let mut errors = Vec::new();
    let index = build_sent_index(sent, sent_ids, &mut errors)?;
    let ctx = crate::Context {
        sent: &index,
        own_addresses: &[],
    };
    let loaded = load_messages(messages, &mut errors);
    if loaded.is_empty() && errors.is_empty() {
        errors.push(format!(
            "no message file found in {} (give .eml files, mbox files or Maildir folders)",
            messages
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let write_err = super::output_error;
    for m in &loaded {
        let v = VerdictEnv::of(&crate::classify(&m.bytes, &ctx));
        let env = Envelope::of(&m.bytes);
        let o = rules.run(&m.bytes, &env, Some(&v), "INBOX", &|_| false);
        if json {
            let line = JsonLine {
                path: &m.path,
                verdict: &v.verdict,
                kind: &v.kind,
                envelope_from: env.from.as_deref(),
                envelope_to: env.to.as_deref(),
                outcome: &o,
            };
            let s = serde_json::to_string(&line)
                .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
            writeln!(out, "{s}").map_err(write_err)?;
        } else {
            writeln!(out, "## {} (verdict: {})", m.path, v.verdict).map_err(write_err)?;
            if let Some(e) = &o.error {
                writeln!(out, "runtime error: {e}; implicit keep").map_err(write_err)?;
            }
            for l in describe(&o, "INBOX") {
                writeln!(out, "{l}").map_err(write_err)?;
            }
            if o.dropped_deleted {
                writeln!(
                    out,
                    "dropped: \\Deleted computed at run time (backscatter never marks mail for deletion)"
                )
                .map_err(write_err)?;
            }
            writeln!(out).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    drop(out);
    for e in &errors {
        eprintln!("backscatter: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
