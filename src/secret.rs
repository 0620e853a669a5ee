//! Secrets: a `Secret` that never prints, and fetching one from a command,
//! an environment variable or the OS keyring.
//!
//! Nothing here logs or formats the secret; errors say where the secret
//! should have come from and what to do, never what it is.

use crate::config::{Account, SecretSource};
use std::fmt;
use std::process::{Command, Stdio};

/// A password or token. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself, for the one place that sends it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The keyring service name; the entry's user is `ACCOUNT:USERNAME`.
pub const KEYRING_SERVICE: &str = "backscatter";

fn keyring_user(a: &Account) -> String {
    format!("{}:{}", a.name, a.username)
}

/// Fetch the account's secret.
pub fn fetch(a: &Account) -> Result<Secret, String> {
    let Some(src) = &a.secret else {
        return Err(format!(
            "account \"{}\" has no password source: add password.command, password.env or password.keyring = true to its table",
            a.name
        ));
    };
    match src {
        SecretSource::Env(var) => match std::env::var_os(var) {
            Some(v) if v.is_empty() => Err(format!(
                "account \"{}\": the environment variable {var} (password.env) is set but empty",
                a.name
            )),
            Some(v) => v.into_string().map(Secret).map_err(|_| {
                format!(
                    "account \"{}\": the environment variable {var} (password.env) is not valid UTF-8",
                    a.name
                )
            }),
            None => Err(format!(
                "account \"{}\": the environment variable {var} (password.env) is not set",
                a.name
            )),
        },
        SecretSource::Command(argv) => {
            let out = run_command(argv, crate::imap::command_timeout()).map_err(|e| {
                format!(
                    "account \"{}\": {}",
                    a.name,
                    match e {
                        CommandError::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            format!("cannot run password.command `{}`: no such program", argv[0])
                        }
                        CommandError::Spawn(e) => {
                            format!("cannot run password.command `{}`: {e}", argv[0])
                        }
                        CommandError::TimedOut(t) => format!(
                            "password.command `{}` did not finish within {} s and was stopped (it runs without a terminal: a command that asks for a passphrase must get it from an agent; BACKSCATTER_TIMEOUT sets the limit)",
                            argv[0],
                            t.as_secs()
                        ),
                    }
                )
            })?;
            if !out.status.success() {
                return Err(format!(
                    "account \"{}\": password.command `{}` failed ({})",
                    a.name, argv[0], out.status
                ));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if first.is_empty() {
                return Err(format!(
                    "account \"{}\": password.command `{}` printed nothing",
                    a.name, argv[0]
                ));
            }
            Ok(Secret(first.to_string()))
        }
        SecretSource::Keyring => {
            let entry = keyring::Entry::new(KEYRING_SERVICE, &keyring_user(a))
                .map_err(|e| keyring_error(a, &e))?;
            entry
                .get_password()
                .map(Secret)
                .map_err(|e| keyring_error(a, &e))
        }
    }
}

/// Why a password command gave no output.
enum CommandError {
    Spawn(std::io::Error),
    TimedOut(std::time::Duration),
}

/// Run `argv` (stdin empty, stderr to ours) and collect its output,
/// waiting at most `limit`: past it the command and whatever it started
/// (its own process group) are killed (SIGKILL) and
/// [`CommandError::TimedOut`] returned. Its output is read on a thread of
/// its own, so that a command printing more than a pipe holds does not
/// block.
fn run_command(
    argv: &[String],
    limit: std::time::Duration,
) -> Result<std::process::Output, CommandError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(CommandError::Spawn)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(CommandError::Spawn)? {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::TimedOut(limit));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    // The command ended; what it printed is complete once its pipe closes
    // (a background process it left may hold it: wait a little, no more).
    let stdout = rx
        .recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_default();
    Ok(std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}

/// Store a secret in the keyring (`backscatter account login`).
pub fn store(a: &Account, secret: &Secret) -> Result<(), String> {
    let entry =
        keyring::Entry::new(KEYRING_SERVICE, &keyring_user(a)).map_err(|e| keyring_error(a, &e))?;
    entry
        .set_password(secret.expose())
        .map_err(|e| keyring_error(a, &e))
}

fn keyring_error(a: &Account, e: &keyring::Error) -> String {
    match e {
        keyring::Error::NoEntry => format!(
            "no password for account \"{}\" in the keyring: run `backscatter account login {}`",
            a.name, a.name
        ),
        keyring::Error::NoStorageAccess(_) => format!(
            "the keyring is locked or refused access (account \"{}\"): unlock it, or use password.command / password.env instead",
            a.name
        ),
        _ => format!(
            "no keyring service is available here (no Secret Service on the session bus?) for account \"{}\": use password.command = [\"pass\", \"show\", \"...\"] or password.env = \"VAR\" instead",
            a.name
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
