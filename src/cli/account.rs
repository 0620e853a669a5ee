//! `backscatter account add|check|login`: set up an account (in `add.rs`),
//! test it, store its password.

use super::common::{account, load_config, runtime, secret};
use super::Error;
use crate::clean::Dirs;
use clap::{Args, Subcommand};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    Add(super::add::AddArgs),
    /// Connect, log in, and show what backscatter will use.
    ///
    /// Prints the server's capabilities (IDLE, MOVE, UIDPLUS, SPECIAL-USE),
    /// its personal namespace, and the mailboxes as that server spells
    /// them: the Sent mailbox(es) read for the sent index, the watched
    /// ones and the quarantine; whether ManageSieve is reachable; then
    /// anything missing. Exits 2 when a configured sent or watched mailbox
    /// does not exist.
    Check {
        /// The account (default: the one with default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Store the account's password in the OS keyring (asks for it on
    /// the terminal, without echo).
    ///
    /// The password is never given on the command line (it would stay in
    /// your shell's history and show in `ps`): NAME is the account's name,
    /// its [accounts.NAME] table. Only an account with
    /// `password.keyring = true` (or, until you add it, with no password
    /// key at all) reads the keyring: one with password.env or
    /// password.command is refused, with what to change. Where there is
    /// no keyring (a headless server), use password.command or
    /// password.env instead.
    ///
    /// Examples:
    ///
    ///   backscatter account login work
    ///
    ///   backscatter account login --account work
    #[command(verbatim_doc_comment)]
    Login {
        /// The account's name, its [accounts.NAME] table (default: the
        /// one with default = true, or the only one). Not the password:
        /// that is asked for.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The account, as the other commands take it (same as NAME).
        #[arg(long, value_name = "NAME", conflicts_with = "name")]
        account: Option<String>,
        /// Refused: a password on the command line is seen by others.
        #[arg(long, hide = true, value_name = "PASSWORD")]
        password: Option<String>,
    },
}

pub fn run(args: AccountArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match args.command {
        AccountCommand::Add(args) => super::add::run(args, config),
        AccountCommand::Check {
            account: name,
            json,
        } => check_account(name.as_deref(), json, config),
        AccountCommand::Login {
            account,
            name,
            password,
        } => {
            if password.is_some() {
                return Err(Error::Usage(
                    "account login takes no password on the command line (your shell's history and `ps` would show it): run `backscatter account login NAME` and type it when asked".into(),
                ));
            }
            login(account.or(name).as_deref(), config)
        }
    }
}

fn login(name: Option<&str>, config: Option<&Path>) -> Result<ExitCode, Error> {
    use crate::config::SecretSource;
    let cfg = load_config(config)?;
    let a = match (name, cfg.account(name)) {
        (_, Ok(a)) => a,
        // Not echoed: what was typed may be the password itself.
        (Some(_), Err(_)) => {
            let names: Vec<&str> = cfg.accounts.iter().map(|a| a.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "account login takes the name of an account in {} (accounts: {}), and what was given is none of them; the password is not given on the command line: login asks for it",
                cfg.path.display(),
                names.join(", ")
            )));
        }
        (None, Err(e)) => return Err(Error::Usage(e.0)),
    };
    let table = format!("[accounts.{}] in {}", a.name, cfg.path.display());
    match &a.secret {
        Some(SecretSource::Env(var)) => {
            // Not echoed when it may be the password itself.
            let var = crate::secret::shown_env_name(var);
            return Err(Error::Usage(format!(
                "account \"{}\" reads its password from the environment variable {var} (password.env), not from the keyring: set {var} where backscatter runs, or replace password.env with password.keyring = true in {table} and run account login again",
                a.name
            )))
        }
        Some(SecretSource::Command(argv)) => {
            return Err(Error::Usage(format!(
                "account \"{}\" gets its password from the command `{}` (password.command), not from the keyring: store it where that command reads it, or replace password.command with password.keyring = true in {table} and run account login again",
                a.name,
                crate::secret::command_line(argv)
            )))
        }
        Some(SecretSource::Keyring) | None => {}
    }
    let pw = rpassword::prompt_password(format!("Password for {} ({}): ", a.username, a.imap))
        .map_err(|e| {
            Error::Usage(format!(
                "account login asks for the password on a terminal and cannot here ({e}): run it in a terminal, or use password.command or password.env in {table}"
            ))
        })?;
    if pw.is_empty() {
        return Err(Error::Usage("no password given; nothing stored".into()));
    }
    crate::secret::store(a, &crate::secret::Secret::new(pw)).map_err(Error::Runtime)?;
    if a.secret.is_none() {
        println!(
            "Stored the password of account \"{}\" in the keyring. Now add password.keyring = true to {table}.",
            a.name
        );
    } else {
        println!(
            "Stored the password of account \"{}\" in the keyring; backscatter uses it from now on.",
            a.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `account check`: the report for one account, as text or JSON.
pub fn check_account(
    name: Option<&str>,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?.clone();
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let report = runtime()?
        .block_on(crate::account::check(&a, &secret, &dirs))
        .map_err(Error::runtime)?;
    super::print(&report, json)?;
    if let Some(why) = &report.unusable {
        // The server lacks what clean, restore and watch need: a runtime
        // failure (exit 1), whatever else the configuration says.
        Err(Error::Runtime(format!(
            "account \"{}\": clean, restore and watch will all refuse on this server: {why}",
            report.account
        )))
    } else if report.absent.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        // Configuration that names what is not there: exit 2, like
        // every other configuration problem.
        Err(Error::Usage(format!(
            "account \"{}\" is not usable as configured: {}",
            report.account,
            report.absent.join("; ")
        )))
    }
}
