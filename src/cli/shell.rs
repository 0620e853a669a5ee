//! `backscatter completions SHELL` and `backscatter man`: the shell
//! completion scripts (clap_complete) and the manual page (clap_mangen,
//! roff), both generated from the same argument definitions as `--help`.

use super::Error;
use clap::{Args, CommandFactory, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

/// The shells a completion script can be written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print the shell completion script for SHELL.
///
/// Install it where your shell looks for completions, e.g.:
///
///   backscatter completions bash > ~/.local/share/bash-completion/completions/backscatter
///
///   backscatter completions zsh > ~/.zfunc/_backscatter    # with fpath+=(~/.zfunc) in ~/.zshrc
///
///   backscatter completions fish > ~/.config/fish/completions/backscatter.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print the manual page (roff) on standard output, or write one page per
/// command to a directory.
///
/// Read it with `backscatter man | man -l -`, or install the pages:
///
///   backscatter man --dir ~/.local/share/man/man1
///
/// which writes backscatter.1 and one page per subcommand
/// (backscatter-clean.1, backscatter-sieve-install.1, ...).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {
    /// Write backscatter.1 and a page per subcommand into this directory
    /// (created if missing) instead of printing backscatter.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

fn write_out(bytes: &[u8]) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(super::output_error)?;
    Ok(ExitCode::SUCCESS)
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode, Error> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    match args.shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut cmd,
            "backscatter",
            &mut buf,
        ),
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "backscatter", &mut buf)
        }
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut cmd,
            "backscatter",
            &mut buf,
        ),
    }
    write_out(&buf)
}

/// The top-level manual page (`backscatter.1`), as roff.
pub fn man_page() -> Result<Vec<u8>, std::io::Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(super::Cli::command())
        .date(env!("BACKSCATTER_BUILD_DATE"))
        .render(&mut buf)?;
    Ok(buf)
}

pub fn man(args: ManArgs) -> Result<ExitCode, Error> {
    let Some(dir) = args.dir else {
        let page = man_page()
            .map_err(|e| Error::Runtime(format!("cannot render the manual page: {e}")))?;
        return write_out(&page);
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    clap_mangen::generate_to(super::Cli::command(), &dir).map_err(|e| {
        Error::Runtime(format!(
            "cannot write the manual pages to {}: {e}",
            dir.display()
        ))
    })?;
    super::common::info(&format!("Wrote the manual pages to {}.", dir.display()));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// Every command with its path from the top, depth first.
    fn all(cmd: &clap::Command, path: Vec<String>) -> Vec<(Vec<String>, clap::Command)> {
        let mut v = vec![(path.clone(), cmd.clone())];
        for s in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            let mut p = path.clone();
            p.push(s.get_name().to_string());
            v.extend(all(s, p));
        }
        v
    }

    #[test]
    fn the_command_line_is_consistent() {
        let mut cli = super::super::Cli::command();
        cli.build();
        cli.clone().debug_assert();
        for (path, cmd) in all(&cli, vec![]) {
            let name = format!("backscatter {}", path.join(" "));
            // The global options work after any command.
            for flag in ["-q", "-v", "--config=x.toml"] {
                let argv = ["backscatter"]
                    .into_iter()
                    .chain(path.iter().map(String::as_str))
                    .chain([flag, "--help"]);
                let e = super::super::Cli::try_parse_from(argv).unwrap_err();
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp,
                    "{name} {flag}: {e}"
                );
            }
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                assert!(
                    a.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{name}: --{} has no help text",
                    a.get_id()
                );
                if a.get_id() == "account" {
                    assert!(a.get_long().is_some(), "{name}: --account is an option");
                }
            }
        }
    }
}
