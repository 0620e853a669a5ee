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
    /// Store the account's password in the OS keyring (asks without echo).
    ///
    /// Then set `password.keyring = true` in the account's table. Where
    /// there is no keyring (a headless server), use password.command or
    /// password.env instead.
    Login {
        /// The account (its [accounts.NAME] table; default: the one with
        /// default = true, or the only one).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// The account, as in earlier versions (`account login NAME`).
        #[arg(hide = true, conflicts_with = "account", value_name = "NAME")]
        name: Option<String>,
    },
}

pub fn run(args: AccountArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    match args.command {
        AccountCommand::Add(args) => super::add::run(args, config),
        AccountCommand::Check {
            account: name,
            json,
        } => check_account(name.as_deref(), json, config),
        AccountCommand::Login { account, name } => login(account.or(name).as_deref(), config),
    }
}

fn login(name: Option<&str>, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, name)?;
    let pw = rpassword::prompt_password(format!("Password for {} ({}): ", a.username, a.imap))
        .map_err(|e| Error::Runtime(format!("cannot read the password: {e}")))?;
    if pw.is_empty() {
        return Err(Error::Usage("no password given; nothing stored".into()));
    }
    crate::secret::store(a, &crate::secret::Secret::new(pw)).map_err(Error::Runtime)?;
    println!(
        "Stored the password of account \"{}\" in the keyring. Set password.keyring = true in [accounts.{}].",
        a.name, a.name
    );
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
