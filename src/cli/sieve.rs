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
        /// backscatter policy, so one file works on either side. They are
        /// checked first (`sieve check`); `include` is not carried over.
        #[arg(long)]
        rules: bool,
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
        /// The server's Sieve extensions (default: Dovecot/Pigeonhole's).
        #[arg(long, value_name = "LIST")]
        extensions: Option<String>,
        /// The server's script size limit in bytes (default 1 MiB, Dovecot's).
        #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
        max_size: usize,
        /// Take the sent Message-IDs from this file (one per line, newest
        /// first) instead of the account's Sent mailbox. Without dates,
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

/// What `sieve status` found: the server's scripts and, when ours is
/// active, how old its sent Message-ID list is. Printed as text (Display)
/// or JSON.
#[derive(Debug, serde::Serialize)]
pub struct SieveStatus {
    pub scripts: Vec<ScriptEntry>,
    /// The active script's name (None: no script is active).
    pub active: Option<String>,
    /// backscatter's script runs (directly or through its include wrapper).
    pub backscatter_active: bool,
    /// When the active script's ID list was generated (as its header says).
    pub generated: Option<String>,
    /// How many sent Message-IDs the active script carries.
    pub sent_ids: Option<usize>,
}

#[derive(Debug, serde::Serialize)]
pub struct ScriptEntry {
    pub name: String,
    pub active: bool,
}

impl std::fmt::Display for SieveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.scripts {
            writeln!(f, "  {}{}", if s.active { "* " } else { "  " }, s.name)?;
        }
        match self.active.as_deref() {
            Some(n) if self.backscatter_active => writeln!(
                f,
                "backscatter is active (through \"{n}\"); its ID list was generated {} ({} sent Message-IDs).",
                self.generated.as_deref().unwrap_or("?"),
                self.sent_ids.map_or_else(|| "?".to_string(), |n| n.to_string())
            ),
            Some(n) => writeln!(f, "backscatter is not active; \"{n}\" is."),
            None => writeln!(f, "No script is active."),
        }
    }
}

fn state_file(a: &crate::config::Account) -> Result<PathBuf, Error> {
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    Ok(crate::paths::account_file(
        &dirs.state,
        "sieve",
        &a.name,
        "json",
    ))
}

/// The sent lists from the account's Sent mailboxes (through the cache),
/// and the account with its mailbox names as the server spells them (the
/// script files into the same quarantine the agent moves to).
fn sent_lists_from_imap(
    a: &crate::config::Account,
    secret: &crate::secret::Secret,
) -> Result<(crate::sieve::SentLists, crate::config::Account), Error> {
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    runtime()?.block_on(async {
        let mut imap = crate::imap::connect(a, secret)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let a = imap.resolve_account(a);
        let (index, _) = crate::clean::sent_index(&mut imap, &a, &dirs)
            .await
            .map_err(clean_error)?;
        imap.logout().await;
        Ok::<_, Error>((
            crate::sieve::SentLists::from_index(&index, crate::clock::now()),
            a,
        ))
    })
}

fn manage(args: SieveCommand, config: Option<&Path>) -> Result<ExitCode, Error> {
    use crate::managesieve::{wrapper, Installed, Session, SCRIPT, WRAPPER};
    let name = match &args {
        SieveCommand::Install { account, .. }
        | SieveCommand::Uninstall { account }
        | SieveCommand::Status { account, .. } => account.clone(),
        SieveCommand::Generate { .. } | SieveCommand::Check { .. } | SieveCommand::Test { .. } => {
            unreachable!()
        }
    };
    let cfg = load_config(config)?;
    let a = account(&cfg, name.as_deref())?.clone();
    let secret = secret(&a)?;
    let state_path = state_file(&a)?;
    let (lists, a) = match args {
        SieveCommand::Install { .. } => sent_lists_from_imap(&a, &secret)?,
        _ => (Default::default(), a),
    };
    // The user's rules for the server: checked by the agent's engine.
    let rules_text = match &args {
        SieveCommand::Install { rules: true, .. } => {
            let Some(p) = a.rules.clone() else {
                return Err(Error::Usage(format!(
                    "account \"{}\" has no rules: add rules = \"PATH.sieve\" to [accounts.{}] in {}",
                    a.name,
                    a.name,
                    cfg.path.display()
                )));
            };
            super::rules::load(&p)?;
            let text = std::fs::read_to_string(&p)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", p.display())))?;
            if crate::sieve::requires_of(&text)
                .iter()
                .any(|r| r == "include")
            {
                return Err(Error::Usage(format!(
                    "{}: rules that include other scripts cannot be installed on the server yet; inline them or leave out --rules",
                    p.display()
                )));
            }
            Some(text)
        }
        _ => None,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let e = Error::runtime;
        let mut s = Session::connect(&a, &secret).await.map_err(e)?;
        let scripts = s.list().await.map_err(Error::runtime)?;
        let active = scripts.iter().find(|(_, act)| *act).map(|(n, _)| n.clone());
        match args {
            SieveCommand::Install { .. } => {
                let script = crate::managesieve::upload_script(&mut s, &a, &lists)
                    .await
                    .map_err(Error::runtime)?;
                println!("Uploaded \"{SCRIPT}\" ({} bytes, {} sent Message-IDs).", script.text.len(), script.ids_included);
                let mut state: Installed = std::fs::read(&state_path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                if let Some(rules) = &rules_text {
                    use crate::managesieve::RULES;
                    s.check(rules).await.map_err(Error::runtime)?;
                    s.have_space(RULES, rules.len()).await.map_err(Error::runtime)?;
                    s.put(RULES, rules).await.map_err(Error::runtime)?;
                    let active_text = if crate::sieve::offers(&s.extensions, "include") {
                        wrapper(RULES)
                    } else {
                        crate::sieve::merge(rules, &script).map_err(|e| {
                            Error::Runtime(format!("the server has no Sieve \"include\" and backscatter cannot add its rules to a copy of your rules: {e}"))
                        })?
                    };
                    s.check(&active_text).await.map_err(Error::runtime)?;
                    s.have_space(WRAPPER, active_text.len()).await.map_err(Error::runtime)?;
                    s.put(WRAPPER, &active_text).await.map_err(Error::runtime)?;
                    s.set_active(WRAPPER).await.map_err(Error::runtime)?;
                    if let Some(user) = active.as_deref().filter(|n| ![SCRIPT, WRAPPER].contains(n)) {
                        state.original_active = Some(user.to_string());
                        println!("Your previously active script \"{user}\" no longer runs; `backscatter sieve uninstall` re-activates it.");
                    }
                    println!("Uploaded your rules as \"{RULES}\" and activated \"{WRAPPER}\": the backscatter policy first, then your rules.");
                } else {
                match active.as_deref() {
                    Some(n) if n == SCRIPT || n == WRAPPER => {
                        let copy = crate::managesieve::refresh_copy(&mut s, &script)
                            .await
                            .map_err(Error::runtime)?;
                        println!(
                            "Already active (through \"{n}\"{}): updated.",
                            if copy { ", a marked copy of your script" } else { "" }
                        );
                    }
                    None => {
                        s.set_active(SCRIPT).await.map_err(Error::runtime)?;
                        state.original_active = None;
                        println!("Activated \"{SCRIPT}\" (no script was active).");
                    }
                    Some(user) => {
                        let theirs = s.get(user).await.map_err(Error::runtime)?;
                        let backup = state_path.with_extension(format!("{user}.sieve").replace(['/', '\\'], "_"));
                        if let Some(d) = backup.parent() {
                            let _ = crate::paths::private_dir(d);
                        }
                        crate::paths::write_private_atomic(&backup, theirs.as_bytes())
                            .map_err(|e| Error::Runtime(format!("cannot back up your script: {e}")))?;
                        let has_include = crate::sieve::offers(&s.extensions, "include");
                        let (active_text, how) = if has_include {
                            (wrapper(user), format!("runs \"{SCRIPT}\" and then your \"{user}\" (unchanged"))
                        } else {
                            // No include: a copy of theirs with our block first.
                            let merged = crate::sieve::merge(&theirs, &script).map_err(|e| {
                                Error::Runtime(format!("the server has no Sieve \"include\" and backscatter cannot add its rules to a copy of \"{user}\": {e}; \"{SCRIPT}\" is uploaded but not activated"))
                            })?;
                            (merged, format!("is a copy of your \"{user}\" with backscatter's rules in a marked block at the top (the server has no \"include\"; your \"{user}\" is left as it was"))
                        };
                        s.check(&active_text).await.map_err(Error::runtime)?;
                        s.have_space(WRAPPER, active_text.len()).await.map_err(Error::runtime)?;
                        s.put(WRAPPER, &active_text).await.map_err(Error::runtime)?;
                        s.set_active(WRAPPER).await.map_err(Error::runtime)?;
                        state.original_active = Some(user.to_string());
                        println!(
                            "Activated \"{WRAPPER}\", which {how}; a backup is in {}).",
                            backup.display()
                        );
                    }
                }
                }
                state.installed_at = crate::clock::now();
                let bytes = serde_json::to_vec(&state).map_err(|e| Error::Runtime(e.to_string()))?;
                if let Some(d) = state_path.parent() {
                    let _ = crate::paths::private_dir(d);
                }
                crate::paths::write_private_atomic(&state_path, &bytes)
                    .map_err(|e| Error::Runtime(format!("cannot save the install state: {e}")))?;
            }
            SieveCommand::Uninstall { .. } => {
                let state: Installed = std::fs::read(&state_path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                if matches!(active.as_deref(), Some(n) if n == SCRIPT || n == WRAPPER) {
                    let mut back = state.original_active.clone().unwrap_or_default();
                    if back.is_empty() && active.as_deref() == Some(WRAPPER) {
                        // The install state is gone (another machine, a
                        // wiped state directory): the wrapper names the
                        // user's script, or the marked copy matches it.
                        back = crate::managesieve::original_of_wrapper(&mut s, &scripts)
                            .await
                            .map_err(Error::runtime)?
                            .unwrap_or_default();
                    }
                    if active.as_deref() == Some(WRAPPER) && !back.is_empty() {
                        // Changes made to the marked copy since install
                        // (e.g. in a webmail's filter editor) are kept aside.
                        let copy = s.get(WRAPPER).await.map_err(Error::runtime)?;
                        if copy.contains(crate::sieve::BLOCK_BEGIN) {
                            let edited = crate::sieve::unmerge(&copy);
                            let original = s.get(&back).await.map_err(Error::runtime)?;
                            if edited != original {
                                let keep = state_path.with_extension(format!("{back}.edited.sieve").replace(['/', '\\'], "_"));
                                crate::paths::write_private_atomic(&keep, edited.as_bytes())
                                    .map_err(|e| Error::Runtime(format!("cannot save your edited script: {e}")))?;
                                super::common::warn(&format!("the active copy of \"{back}\" was edited after install; that edited version (without backscatter's block) is saved in {}", keep.display()));
                            }
                        }
                    }
                    s.set_active(&back).await.map_err(Error::runtime)?;
                    if back.is_empty() {
                        println!("Deactivated backscatter (no script was active before).");
                    } else {
                        println!("Re-activated your \"{back}\".");
                    }
                }
                for n in [WRAPPER, SCRIPT] {
                    if scripts.iter().any(|(x, _)| x == n) {
                        s.delete(n).await.map_err(Error::runtime)?;
                        println!("Deleted \"{n}\".");
                    }
                }
                let _ = std::fs::remove_file(&state_path);
            }
            SieveCommand::Status { json, .. } => {
                let mut status = SieveStatus {
                    scripts: scripts
                        .iter()
                        .map(|(name, active)| ScriptEntry {
                            name: name.clone(),
                            active: *active,
                        })
                        .collect(),
                    active: active.clone(),
                    backscatter_active: false,
                    generated: None,
                    sent_ids: None,
                };
                if active.as_deref().is_some_and(|n| n == SCRIPT || n == WRAPPER) {
                    let text = s.get(SCRIPT).await.map_err(Error::runtime)?;
                    status.backscatter_active = true;
                    status.generated = text
                        .lines()
                        .next()
                        .and_then(|l| l.rsplit_once("generated "))
                        .map(|x| x.1.trim_end_matches('.').to_string());
                    status.sent_ids = crate::sieve::ids_in(&text);
                }
                let mut out = std::io::stdout().lock();
                if json {
                    let line = serde_json::to_string(&status)
                        .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
                    writeln!(out, "{line}").map_err(super::output_error)?;
                } else {
                    write!(out, "{status}").map_err(super::output_error)?;
                }
            }
            SieveCommand::Generate { .. }
        | SieveCommand::Check { .. }
        | SieveCommand::Test { .. } => unreachable!(),
        }
        s.logout().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(args: SieveArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match &args.command {
        SieveCommand::Check { file } => return super::rules::check(file),
        SieveCommand::Test {
            file,
            messages,
            sent,
            sent_ids,
            json,
        } => return super::rules::test(file, messages, sent, sent_ids, *json),
        _ => {}
    }
    if !matches!(args.command, SieveCommand::Generate { .. }) {
        return manage(args.command, config);
    }
    let SieveCommand::Generate {
        account: name,
        extensions,
        max_size,
        sent_ids,
    } = args.command
    else {
        unreachable!()
    };
    let cfg = load_config(config)?;
    let a = account(&cfg, name.as_deref())?.clone();
    let (lists, a) = match &sent_ids {
        Some(f) => {
            let ids: Vec<String> = std::fs::read_to_string(f)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect();
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
        None => sent_lists_from_imap(&a, &secret(&a)?)?,
    };
    let ext = extensions.unwrap_or_else(|| crate::sieve::DOVECOT_DEFAULT.to_string());
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
    crate::sieve::validate(&script.text, &ext).map_err(Error::runtime)?;
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
    Ok(ExitCode::SUCCESS)
}
