//! `backscatter config sample|path`: the documented sample config, and
//! where the config file is looked for.

use super::Error;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the documented sample config (every key, with comments).
    ///
    /// Start a config from it:
    ///
    ///   backscatter config sample > "$(backscatter config path)"
    #[command(verbatim_doc_comment)]
    Sample,
    /// Print the path of the config file in use (--config,
    /// BACKSCATTER_CONFIG, else the platform default), whether or not it
    /// exists.
    Path,
}

pub fn run(args: ConfigArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    match args.command {
        ConfigCommand::Sample => out
            .write_all(crate::config::SAMPLE.as_bytes())
            .map_err(super::output_error)?,
        ConfigCommand::Path => {
            let path = crate::config::locate(config).ok_or_else(|| {
                Error::Usage(
                    "cannot find a home directory for the config file: give --config FILE".into(),
                )
            })?;
            writeln!(out, "{}", path.display()).map_err(super::output_error)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
