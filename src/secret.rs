//! Secrets: a `Secret` that never prints, and fetching one from a command,
//! an environment variable or the OS keyring.
//!
//! Nothing here logs or formats the secret; errors say where the secret
//! should have come from and what to do, never what it is.

use crate::config::{Account, SecretSource};
use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// A `password.env` variable name as it may be shown: a conventional one
/// (upper-case letters, digits and `_`, with at least one letter, such as
/// `MAIL_PASSWORD`) as it is; anything else may be the password typed
/// where the name goes, so only its first and last characters and its
/// length are shown (`"c…w" (7 characters)`; `"…" (2 characters)` for
/// two or fewer).
pub fn shown_env_name(var: &str) -> String {
    let conventional = var.chars().any(|c| c.is_ascii_uppercase())
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if conventional {
        return var.to_string();
    }
    let n = var.chars().count();
    let shown = match (var.chars().next(), var.chars().last()) {
        (Some(first), Some(last)) if n > 2 => format!("{first}…{last}"),
        _ => "…".to_string(),
    };
    format!(
        "\"{shown}\" ({n} character{})",
        if n == 1 { "" } else { "s" }
    )
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
            None if shown_env_name(var) != *var => Err(format!(
                "account \"{}\": the environment variable {} (password.env) is not set, and its name looks like a password: password.env takes the NAME of a variable that holds the password (such as \"MAIL_PASSWORD\"), not the password itself",
                a.name,
                shown_env_name(var)
            )),
            None => Err(format!(
                "account \"{}\": the environment variable {var} (password.env) is not set",
                a.name
            )),
        },
        SecretSource::Command(argv) => run_command(a, argv, crate::imap::command_timeout()),
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

/// A password command as a shell user would type it (quoted where a word
/// needs it), for messages.
pub fn command_line(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// Run `password.command` (no shell: `argv[0]` with the other words as
/// its arguments) and take the first line it prints. Its output is never
/// shown: a failure is one sentence naming the command, its exit status
/// and, when standard error is not a terminal (the agent as a service),
/// the last line it wrote there; on a terminal its standard error is the
/// user's to see as it comes (a prompt, a pass or gpg error).
fn run_command(a: &Account, argv: &[String], limit: Duration) -> Result<Secret, String> {
    use std::io::IsTerminal;
    let shown = command_line(argv);
    let on_terminal = std::io::stderr().is_terminal();
    let out = collect(argv, on_terminal, limit).map_err(|e| match e {
        CommandError::Spawn(e) => format!(
            "account \"{}\": cannot run the password command `{shown}` (password.command): {}",
            a.name,
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("there is no program \"{}\"", argv[0])
            } else {
                e.to_string()
            }
        ),
        CommandError::TimedOut(t) => format!(
            "account \"{}\": the password command `{shown}` (password.command) did not finish within {} s and was stopped with what it started (it cannot read a passphrase from the terminal: it must get it from an agent; BACKSCATTER_TIMEOUT sets the limit)",
            a.name,
            t.as_secs()
        ),
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| {
                let l = crate::mail::printable(l);
                let cut: String = l.chars().take(200).collect();
                format!(": {cut}")
            })
            .unwrap_or_default();
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        return Err(format!(
            "account \"{}\": the password command `{shown}` (password.command) failed ({status}){last}",
            a.name
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!(
            "account \"{}\": the password command `{shown}` (password.command) printed nothing on its first line",
            a.name
        ));
    }
    Ok(Secret(first.to_string()))
}

/// Why a password command gave no output.
enum CommandError {
    Spawn(std::io::Error),
    TimedOut(Duration),
}

/// Run `argv` (stdin empty; stderr to ours on a terminal, else collected)
/// and collect its output, waiting at most `limit`: past it the command
/// and whatever it started (its own process group) are killed (SIGKILL)
/// and [`CommandError::TimedOut`] returned. Each pipe is read on a thread
/// of its own, so that a command printing more than a pipe holds does not
/// block.
fn collect(
    argv: &[String],
    stderr_inherited: bool,
    limit: Duration,
) -> Result<std::process::Output, CommandError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    fn drain(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
        rx
    }
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if stderr_inherited {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .spawn()
        .map_err(CommandError::Spawn)?;
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = child.stderr.take().map(drain);
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
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // The command ended; what it printed is complete once its pipes close
    // (a background process it left may hold them: wait a little, no more).
    let grace = Duration::from_secs(2);
    Ok(std::process::Output {
        status,
        stdout: stdout.recv_timeout(grace).unwrap_or_default(),
        stderr: stderr
            .and_then(|rx| rx.recv_timeout(grace).ok())
            .unwrap_or_default(),
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

    #[test]
    fn an_env_name_that_may_be_the_password_is_masked() {
        assert_eq!(shown_env_name("MAIL_PASSWORD"), "MAIL_PASSWORD");
        assert_eq!(shown_env_name("PW2"), "PW2");
        assert_eq!(shown_env_name("carolpw"), "\"c…w\" (7 characters)");
        assert_eq!(shown_env_name("Hunter2"), "\"H…2\" (7 characters)");
        assert_eq!(shown_env_name("2ABC"), "\"2…C\" (4 characters)");
        assert_eq!(shown_env_name("ab"), "\"…\" (2 characters)");
        assert_eq!(shown_env_name("_"), "\"…\" (1 character)");
    }

    /// Newcomer round 3, 15e: the password written where the variable's
    /// name goes (unset as a variable) is not printed.
    #[test]
    fn an_unset_env_password_is_not_printed() {
        let cfg = crate::config::parse(
            "[accounts.c]\nhost = \"imap.example.org\"\nusername = \"carol\"\npassword.env = \"carolpw\"\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let e = fetch(&cfg.accounts[0]).unwrap_err();
        assert!(!e.contains("carolpw"), "{e}");
        assert!(e.contains("\"c…w\" (7 characters)"), "{e}");
        assert!(e.contains("NAME of a variable"), "{e}");
    }
}
