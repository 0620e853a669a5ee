//! `backscatter service install|uninstall|status`: run the agent as a user
//! service (systemd --user on Linux, launchd on macOS).

use super::Error;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const SYSTEMD_UNIT: &str = include_str!("../../assets/backscatter.service");
const LAUNCHD_PLIST: &str = include_str!("../../assets/org.backscatter.watch.plist");
const UNIT_NAME: &str = "backscatter.service";
const LAUNCHD_LABEL: &str = "org.backscatter.watch";

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Install and start `backscatter watch` as a service of your user
    /// (started at login; restarted if it fails).
    Install {
        /// Print the unit that would be installed and do nothing.
        #[arg(long)]
        print: bool,
    },
    /// Stop the service and remove it.
    Uninstall,
    /// Show whether the service runs.
    Status,
}

fn home() -> Result<PathBuf, Error> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| Error::Runtime("no home directory".into()))
}

fn exe() -> Result<String, Error> {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .map_err(|e| Error::Runtime(format!("cannot find this program's path: {e}")))
}

/// The systemd unit for this binary.
pub fn systemd_unit(exe: &str) -> String {
    SYSTEMD_UNIT.replace("@BACKSCATTER@", exe)
}

/// The launchd agent for this binary.
pub fn launchd_plist(exe: &str, log: &str) -> String {
    LAUNCHD_PLIST
        .replace("@BACKSCATTER@", &xml_escape(exe))
        .replace("@LOG@", &xml_escape(log))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn run(cmd: &str, args: &[&str]) -> Result<(), Error> {
    println!("  $ {cmd} {}", args.join(" "));
    let st = Command::new(cmd).args(args).status().map_err(|e| {
        Error::Runtime(format!(
            "cannot run {cmd}: {e} (is this a {} session?)",
            if cfg!(target_os = "macos") {
                "launchd"
            } else {
                "systemd"
            }
        ))
    })?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::Runtime(format!(
            "`{cmd} {}` failed ({st}); the unit file is in place, fix the cause and run it yourself",
            args.join(" ")
        )))
    }
}

fn unit_path() -> Result<PathBuf, Error> {
    let base =
        directories::BaseDirs::new().ok_or_else(|| Error::Runtime("no home directory".into()))?;
    Ok(base.config_dir().join("systemd/user").join(UNIT_NAME))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::Runtime(format!("cannot create {}: {e}", d.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    println!("Wrote {}", path.display());
    Ok(())
}

pub fn run_service(args: ServiceArgs) -> Result<ExitCode, Error> {
    let macos = cfg!(target_os = "macos");
    match args.command {
        ServiceCommand::Install { print } => {
            let exe = exe()?;
            if macos {
                let log = home()?.join("Library/Logs/backscatter.log");
                let text = launchd_plist(&exe, &log.display().to_string());
                if print {
                    print!("{text}");
                    return Ok(ExitCode::SUCCESS);
                }
                let path = home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{LAUNCHD_LABEL}.plist"));
                write(&path, &text)?;
                run("launchctl", &["load", "-w", &path.display().to_string()])?;
                println!(
                    "Installed: backscatter watch runs at login; log in {}.",
                    log.display()
                );
            } else {
                let text = systemd_unit(&exe);
                if print {
                    print!("{text}");
                    return Ok(ExitCode::SUCCESS);
                }
                write(&unit_path()?, &text)?;
                run("systemctl", &["--user", "daemon-reload"])?;
                run("systemctl", &["--user", "enable", "--now", UNIT_NAME])?;
                println!(
                    "Installed: backscatter watch runs now and at every login. Logs: journalctl --user -u backscatter"
                );
            }
        }
        ServiceCommand::Uninstall => {
            if macos {
                let path = home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{LAUNCHD_LABEL}.plist"));
                run("launchctl", &["unload", "-w", &path.display().to_string()])?;
                let _ = std::fs::remove_file(&path);
                println!("Removed {}", path.display());
            } else {
                let path = unit_path()?;
                run("systemctl", &["--user", "disable", "--now", UNIT_NAME])?;
                std::fs::remove_file(&path).map_err(|e| {
                    Error::Runtime(format!("cannot remove {}: {e}", path.display()))
                })?;
                println!("Removed {}", path.display());
                run("systemctl", &["--user", "daemon-reload"])?;
            }
            println!("Uninstalled. The journal, state and quarantined mail are left as they are.");
        }
        ServiceCommand::Status => {
            let ok = if macos {
                Command::new("launchctl")
                    .args(["list", LAUNCHD_LABEL])
                    .status()
            } else {
                Command::new("systemctl")
                    .args(["--user", "status", "--no-pager", UNIT_NAME])
                    .status()
            }
            .map_err(|e| Error::Runtime(format!("cannot ask the service manager: {e}")))?;
            return Ok(if ok.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
