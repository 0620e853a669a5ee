//! The binary under test run as an isolated user, and stopping a child the
//! way a user would.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command};

/// `BIN ARGS` as a user whose config file is `cfg` and whose data, state,
/// config and home directories are under `dir`: nothing touches the real
/// ones; `NO_COLOR=1`. `bin` is the binary's path (in a test or bench of
/// the backscatter crate: `env!("CARGO_BIN_EXE_backscatter")`). Add the
/// password variables and stdio as needed.
pub fn isolated(bin: impl AsRef<OsStr>, dir: &Path, cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .env("BACKSCATTER_CONFIG", cfg)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir)
        .env("NO_COLOR", "1");
    c
}

/// Stop a child process the way a user would (SIGTERM) and reap it.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
