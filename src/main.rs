//! The `backscatter` binary: parses the command line, runs the command, and
//! prints an error once, mapping it to the exit status of the contract
//! (0 success, 1 runtime failure, 2 usage or configuration error).

mod cli;

// The library's modules, under the paths (`crate::clean`, ...) the command
// line uses.
use backscatter::*;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if !err.is_silent() {
                eprintln!("backscatter: {}", err);
            }
            ExitCode::from(err.exit_code())
        }
    }
}
