//! `backscatter keep ENTRY`: add a sender, domain, reporting host or list
//! to an account's allow-list in the config file, keeping the file's
//! comments and layout.

use super::common::{account, load_config};
use super::Error;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;

/// Never quarantine automated mail from this sender, domain, reporting host
/// or mailing list.
///
/// ENTRY is an address (billing@partner.example), a domain or host name
/// (partner.example: the sender's domain, the MTA that wrote a delivery
/// report, or a list, subdomains included) or a List-Id in angle brackets
/// (<announce.lists.example>). It is added to `keep = [...]` of the
/// account in the config file; the rest of the file is left as written.
/// `clean` and `watch` honour it at once; run `backscatter sieve install`
/// again to put it into the server-side script.
///
/// Examples:
///
///   backscatter keep partner.example
///
///   backscatter keep --account work '<announce.lists.example>'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct KeepArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long)]
    pub account: Option<String>,
    /// An address, a domain or host name, or a List-Id in angle brackets.
    #[arg(value_name = "ENTRY")]
    pub entry: String,
}

pub fn run(args: KeepArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?;
    let path = cfg.path.clone();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Runtime(format!("cannot read {}: {e}", path.display())))?;
    let new = crate::keep::add_to_config(&text, &a.name, &args.entry)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let Some(new) = new else {
        println!(
            "{} is already on the keep list of account \"{}\".",
            args.entry.trim(),
            a.name
        );
        return Ok(ExitCode::SUCCESS);
    };
    // The result must load like the original did.
    crate::config::parse(&new, &path).map_err(|e| Error::Runtime(e.0))?;
    write_keeping_mode(&path, new.as_bytes())
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "Added {} to the keep list of account \"{}\" in {}.",
        args.entry.trim(),
        a.name,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Replace the file atomically, with the permissions it had.
fn write_keeping_mode(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let perms = std::fs::metadata(path)?.permissions();
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        // Private while written: the file may name a password command.
        let mut o = std::fs::OpenOptions::new();
        o.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::set_permissions(&tmp, perms)?;
    std::fs::rename(&tmp, path)
}
