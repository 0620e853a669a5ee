//! The `backscatter` binary: parses the command line, runs the command, and
//! prints an error once, mapping it to the exit status of the contract
//! (0 success, 1 runtime failure, 2 usage or configuration error).

mod cli;

// The library's modules, under the paths (`crate::clean`, ...) the command
// line uses.
use backscatter::*;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
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

/// A reader that goes away (`backscatter quarantine list | head`) ends
/// every command quietly with status 0. Writes through `writeln!` come back
/// as [`cli::Error::OutputClosed`]; `println!` panics on a broken pipe
/// (Rust ignores SIGPIPE), and that panic is turned into the same quiet
/// exit here, the one place for every command.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
