//! `backscatter service install|uninstall|status`: run the agent as a user
//! service (systemd --user on Linux, launchd on macOS).

use super::Error;
use clap::{Args, Subcommand};
use serde::Serialize;
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
    /// (started at login; restarted if it fails). The service uses the
    /// config file this command uses (--config, BACKSCATTER_CONFIG, or the
    /// default), which must exist.
    Install {
        /// Print the unit that would be installed and do nothing.
        #[arg(long)]
        print: bool,
    },
    /// Stop the service and remove what install wrote (also where the
    /// service manager cannot be reached).
    Uninstall,
    /// Show whether the service is installed and runs (exit status 0 when
    /// it runs, 1 when not).
    Status {
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn home() -> Result<PathBuf, Error> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| Error::Usage("cannot find your home directory (is HOME set?)".into()))
}

fn exe() -> Result<String, Error> {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .map_err(|e| Error::Runtime(format!("cannot find this program's path: {e}")))
}

/// The systemd unit for this binary and config file. Each path is quoted
/// for systemd's command line (`"`, `\` escaped; `%` as `%%`, `$` as `$$`,
/// systemd.service(5) "Command lines").
pub fn systemd_unit(exe: &str, config: &str) -> String {
    SYSTEMD_UNIT
        .replace("@BACKSCATTER@", &systemd_quote(exe))
        .replace("@CONFIG@", &systemd_quote(config))
}

fn systemd_quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    if escaped.contains(|c: char| c.is_whitespace() || c == '\'' || c == ';') || escaped != s {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// The launchd agent for this binary and config file.
pub fn launchd_plist(exe: &str, config: &str, log: &str) -> String {
    LAUNCHD_PLIST
        .replace("@BACKSCATTER@", &xml_escape(exe))
        .replace("@CONFIG@", &xml_escape(config))
        .replace("@LOG@", &xml_escape(log))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What `systemctl --user` says when there is no user session bus (a
/// login over ssh or `su` on a machine without lingering).
fn no_user_bus(stderr: &str) -> bool {
    stderr.contains("Failed to connect to bus")
        || stderr.contains("No medium found")
        || stderr.contains("$DBUS_SESSION_BUS_ADDRESS")
}

const NO_BUS_HELP: &str = "there is no systemd user session to install the service into (`systemctl --user` cannot reach the user's bus: this is an ssh or su login without a user manager). Log in graphically once, or run `loginctl enable-linger` so that your user manager runs without a login, then try again";

/// Run a service-manager command, its output shown; a failure is one
/// sentence with the likely cause.
fn run(cmd: &str, args: &[&str]) -> Result<(), Error> {
    super::common::info(&format!("  $ {cmd} {}", args.join(" ")));
    let out = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot run {cmd}: {e} (is this a {} session?)",
                if cfg!(target_os = "macos") {
                    "launchd"
                } else {
                    "systemd"
                }
            ))
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(());
    }
    if no_user_bus(&stderr) {
        return Err(Error::Runtime(NO_BUS_HELP.into()));
    }
    Err(Error::Runtime(format!(
        "`{cmd} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        stderr.trim().replace('\n', " ")
    )))
}

/// Whether `systemctl --user` can reach the user's service manager.
fn check_user_manager() -> Result<(), Error> {
    let out = Command::new("systemctl")
        .args(["--user", "show-environment"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot run systemctl: {e} (`service` needs systemd; elsewhere run `backscatter watch` from your session's autostart)"
            ))
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if no_user_bus(&stderr) {
        return Err(Error::Runtime(NO_BUS_HELP.into()));
    }
    Err(Error::Runtime(format!(
        "`systemctl --user` does not work here ({}): {}",
        out.status,
        stderr.trim().replace('\n', " ")
    )))
}

fn config_dir() -> Result<PathBuf, Error> {
    directories::BaseDirs::new()
        .map(|b| b.config_dir().to_path_buf())
        .ok_or_else(|| Error::Usage("cannot find your home directory (is HOME set?)".into()))
}

fn unit_path() -> Result<PathBuf, Error> {
    Ok(config_dir()?.join("systemd/user").join(UNIT_NAME))
}

/// The link `systemctl --user enable` makes (from the unit's
/// `WantedBy=default.target`).
fn wants_link() -> Result<PathBuf, Error> {
    Ok(config_dir()?
        .join("systemd/user/default.target.wants")
        .join(UNIT_NAME))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::Runtime(format!("cannot create {}: {e}", d.display())))?;
    }
    // Yours alone, like every file backscatter writes (it names your
    // config file); the service manager runs as you and reads it.
    crate::paths::write_private(path, text.as_bytes())
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    super::common::info(&format!("Wrote {}", path.display()));
    Ok(())
}

/// Remove a file install wrote (or `enable` linked); a missing one is fine.
fn remove(path: &Path) -> Result<bool, Error> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            super::common::info(&format!("Removed {}", path.display()));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::Runtime(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// The config file the service will use: the one this command was given
/// (`--config`, `BACKSCATTER_CONFIG`, or the default), as an absolute path,
/// checked to exist and to load.
fn service_config(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let path = crate::config::locate(explicit).ok_or_else(|| {
        Error::Usage("cannot find a home directory for the config file: give --config FILE".into())
    })?;
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{} does not exist: set up an account first (`backscatter config sample` prints a documented config), then install the service",
            path.display()
        )));
    }
    // The same checks `watch` makes, so that the service does not start
    // only to fail.
    super::common::load_config(Some(&path))?;
    std::fs::canonicalize(&path)
        .map_err(|e| Error::Usage(format!("cannot resolve {}: {e}", path.display())))
}

/// What `service status` found. Printed as text (Display) or JSON.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    /// `systemd` or `launchd`.
    pub manager: &'static str,
    /// The unit (or agent) file install writes.
    pub unit_file: String,
    /// The unit file exists.
    pub installed: bool,
    /// systemd: `enabled`, `disabled`, ... (`systemctl --user is-enabled`);
    /// launchd: `loaded` or `not loaded`. None: not known.
    pub enabled: Option<String>,
    /// systemd: `active`, `inactive`, `failed`, ... (`is-active`); launchd:
    /// `running` or `not running`. None: not known.
    pub state: Option<String>,
    /// The agent runs.
    pub running: bool,
    /// Why the service manager could not be asked.
    pub error: Option<String>,
}

impl std::fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.installed {
            writeln!(
                f,
                "Not installed ({} does not exist); `backscatter service install` installs it.",
                self.unit_file
            )?;
        } else {
            writeln!(f, "Installed: {}", self.unit_file)?;
        }
        if let Some(e) = &self.error {
            return writeln!(f, "Cannot ask {}: {e}", self.manager);
        }
        if let Some(en) = &self.enabled {
            writeln!(
                f,
                "  {:<9}{en}",
                if self.manager == "launchd" {
                    "launchd:"
                } else {
                    "enabled:"
                }
            )?;
        }
        if let Some(st) = &self.state {
            writeln!(f, "  state:   {st}")?;
        }
        writeln!(
            f,
            "{}",
            if self.running {
                "backscatter watch is running."
            } else {
                "backscatter watch is not running."
            }
        )?;
        if self.running && self.manager == "systemd" {
            writeln!(f, "Logs: journalctl --user -u backscatter")?;
        }
        Ok(())
    }
}

fn capture(cmd: &str, args: &[&str]) -> Result<(bool, String, String), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

fn status(macos: bool) -> Result<ServiceStatus, Error> {
    if macos {
        let path = home()?
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist"));
        let mut st = ServiceStatus {
            manager: "launchd",
            unit_file: path.display().to_string(),
            installed: path.exists(),
            enabled: None,
            state: None,
            running: false,
            error: None,
        };
        match capture("launchctl", &["list", LAUNCHD_LABEL]) {
            Ok((loaded, out, _)) => {
                st.enabled = Some(if loaded { "loaded" } else { "not loaded" }.into());
                st.running = loaded && out.contains("\"PID\"");
                st.state = Some(if st.running { "running" } else { "not running" }.into());
            }
            Err(e) => st.error = Some(e),
        }
        return Ok(st);
    }
    let path = unit_path()?;
    let mut st = ServiceStatus {
        manager: "systemd",
        unit_file: path.display().to_string(),
        installed: path.exists(),
        enabled: None,
        state: None,
        running: false,
        error: None,
    };
    match capture("systemctl", &["--user", "is-enabled", UNIT_NAME]) {
        Ok((_, _, err)) if no_user_bus(&err) => st.error = Some(NO_BUS_HELP.into()),
        Ok((_, out, _)) => {
            st.enabled = (!out.is_empty()).then_some(out);
            if let Ok((active, out, _)) = capture("systemctl", &["--user", "is-active", UNIT_NAME])
            {
                st.running = active;
                st.state = (!out.is_empty()).then_some(out);
            }
        }
        Err(e) => st.error = Some(e),
    }
    Ok(st)
}

pub fn run_service(args: ServiceArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let macos = cfg!(target_os = "macos");
    match args.command {
        ServiceCommand::Install { print } => {
            let exe = exe()?;
            let cfg = service_config(config)?.display().to_string();
            if macos {
                let log = home()?.join("Library/Logs/backscatter.log");
                let text = launchd_plist(&exe, &cfg, &log.display().to_string());
                if print {
                    print!("{text}");
                    return Ok(ExitCode::SUCCESS);
                }
                let path = home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{LAUNCHD_LABEL}.plist"));
                write(&path, &text)?;
                if let Err(e) = run("launchctl", &["load", "-w", &path.display().to_string()]) {
                    let _ = remove(&path);
                    return Err(e);
                }
                println!(
                    "Installed: backscatter watch (config {cfg}) runs at login; log in {}.",
                    log.display()
                );
            } else {
                let text = systemd_unit(&exe, &cfg);
                if print {
                    print!("{text}");
                    return Ok(ExitCode::SUCCESS);
                }
                // Before writing anything: a unit nobody can enable is
                // litter.
                check_user_manager()?;
                let path = unit_path()?;
                write(&path, &text)?;
                let enabled = run("systemctl", &["--user", "daemon-reload"])
                    .and_then(|()| run("systemctl", &["--user", "enable", "--now", UNIT_NAME]));
                if let Err(e) = enabled {
                    // Leave nothing half-installed behind.
                    let _ = remove(&wants_link()?);
                    let _ = remove(&path);
                    let _ = run("systemctl", &["--user", "daemon-reload"]);
                    return Err(e);
                }
                println!(
                    "Installed: backscatter watch (config {cfg}) runs now and at every login. Logs: journalctl --user -u backscatter"
                );
            }
        }
        ServiceCommand::Uninstall => {
            // Only what `install` wrote is ours to stop and remove: with
            // none of it there, the service manager is not asked.
            let ours = if macos {
                vec![home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{LAUNCHD_LABEL}.plist"))]
            } else {
                vec![unit_path()?, wants_link()?]
            };
            if !ours.iter().any(|p| std::fs::symlink_metadata(p).is_ok()) {
                println!(
                    "Nothing to uninstall: no backscatter service is installed ({} does not exist).",
                    ours[0].display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if macos {
                let path = home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{LAUNCHD_LABEL}.plist"));
                let stopped = run("launchctl", &["unload", "-w", &path.display().to_string()]);
                remove(&path)?;
                if let Err(e) = stopped {
                    super::common::warn(&format!("could not unload the agent: {e}"));
                }
            } else {
                // Stop it where the user manager can be reached; remove the
                // files in any case (they are ours).
                let stopped = run("systemctl", &["--user", "disable", "--now", UNIT_NAME]);
                let removed_unit = remove(&unit_path()?)?;
                remove(&wants_link()?)?;
                match stopped {
                    Ok(()) => {
                        let _ = run("systemctl", &["--user", "daemon-reload"]);
                    }
                    Err(e) if removed_unit => super::common::info(&format!(
                        "Note: could not stop the service ({e}); with no user manager it was not running."
                    )),
                    Err(_) => {}
                }
            }
            println!("Uninstalled. The journal, state and quarantined mail are left as they are.");
        }
        ServiceCommand::Status { json } => {
            let st = status(macos)?;
            super::print(&st, json)?;
            // As before: the exit status says whether it runs.
            return Ok(if st.running {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    /// What `service install` writes on macOS (launchd cannot be run
    /// here): the agent's umask is 077 (63), so its log file is private.
    #[test]
    fn the_launchd_agent_makes_its_log_private() {
        let plist = super::launchd_plist("/bin/backscatter", "/home/me/c.toml", "/home/me/l.log");
        assert!(
            plist.contains("<key>Umask</key>\n  <integer>63</integer>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/home/me/l.log</string>"));
    }
}
