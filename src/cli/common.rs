//! What the account commands share: loading the config, picking the
//! account, fetching its secret, a tokio runtime, and date arguments.

use super::Error;
use crate::config::{self, Account, Config};
use crate::secret::{self, Secret};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// How much the commands print besides their results and errors (the
/// global `-q` / `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet = 0,
    Normal = 1,
    Verbose = 2,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// An informational line on stderr (not an error: no `backscatter:`
/// prefix); silent under `-q`.
pub fn info(line: &str) {
    if verbosity() > Verbosity::Quiet {
        eprintln!("{line}");
    }
}

/// A warning on stderr, `backscatter: warning: ...`; shown even under `-q`.
pub fn warn(line: &str) {
    eprintln!("backscatter: warning: {line}");
}

/// Whether to colour output going to a stream: only a terminal, and never
/// when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn color(is_terminal: bool) -> bool {
    color_with(is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

/// [`color`] with the value of `NO_COLOR` given.
pub fn color_with(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `1 message`, `2 messages` (English plural with an `s`).
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A message rate for people: `950/s`, `12/s`, `0.4/s` (no thousands
/// separators, no needless decimals).
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "-".into()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.0}/s")
    }
}

/// Load the config named by `--config`, `$BACKSCATTER_CONFIG` or the
/// platform default.
pub fn load_config(explicit: Option<&Path>) -> Result<Config, Error> {
    let path = config::locate(explicit).ok_or_else(|| {
        Error::Usage("cannot find a home directory for the config file: give --config FILE".into())
    })?;
    let cfg = config::load(&path).map_err(|e| Error::Usage(e.0))?;
    warn_if_exposed(&cfg);
    warn_if_emptied_quarantine(&cfg);
    Ok(cfg)
}

/// A quarantine named like a Trash or Junk mailbox may be emptied by mail
/// clients or server rules: say so (`account check` also looks at the
/// server's SPECIAL-USE attributes, RFC 6154).
fn warn_if_emptied_quarantine(cfg: &Config) {
    const EMPTIED: [&str; 7] = [
        "Trash",
        "Junk",
        "Spam",
        "Deleted Items",
        "Deleted Messages",
        "Junk E-mail",
        "Bulk Mail",
    ];
    for a in &cfg.accounts {
        // The server's own folders sit at the top, or under a personal
        // namespace's prefix (`INBOX.` on Cyrus and Courier, `[Gmail]/`):
        // "Rückläufer/Spam", a folder of the user's own, is not one.
        let q = a.quarantine.as_str();
        let top = ["INBOX.", "INBOX/", "[Gmail]/", "[Google Mail]/"]
            .iter()
            .find_map(|p| {
                q.get(..p.len())
                    .filter(|h| h.eq_ignore_ascii_case(p))
                    .map(|_| &q[p.len()..])
            })
            .unwrap_or(q);
        if top.contains(['/', '.']) {
            continue;
        }
        if EMPTIED.iter().any(|n| n.eq_ignore_ascii_case(top)) {
            warn(&format!(
                "account \"{}\": quarantine = \"{}\" is where mail clients and servers put mail they empty on their own, so quarantined mail could be lost; give the quarantine a mailbox of its own",
                a.name, a.quarantine
            ));
        }
    }
}

/// A config file others can read must not hold a password.
fn warn_if_exposed(cfg: &Config) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(&cfg.path) else {
            return;
        };
        let mode = meta.permissions().mode();
        let literal = cfg.literal_passwords();
        if mode & 0o077 != 0 && !literal.is_empty() {
            warn(&format!(
                "{} can be read by other users (mode {:o}) and holds the password of {} (a command that echoes it); run `chmod 600 {}`, or better, use password.keyring",
                cfg.path.display(),
                mode & 0o777,
                literal
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                cfg.path.display()
            ));
        }
    }
}

pub fn account<'a>(cfg: &'a Config, name: Option<&str>) -> Result<&'a Account, Error> {
    cfg.account(name).map_err(|e| Error::Usage(e.0))
}

pub fn secret(a: &Account) -> Result<Secret, Error> {
    secret::fetch(a).map_err(Error::Usage)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))
}

pub use crate::clock::zone;

/// A day the user typed (`YYYY-MM-DD`, `today`, `yesterday`), a day of
/// their time zone ([`zone`]): the Unix seconds of its local midnight
/// ([`crate::day::parse`]). A usage error otherwise.
pub fn parse_date(s: &str) -> Result<i64, Error> {
    crate::day::parse(s, crate::clock::now(), zone()).map_err(Error::Usage)
}

pub fn clean_error(e: crate::clean::CleanError) -> Error {
    match e {
        crate::clean::CleanError::Config(m) => Error::Usage(m),
        other => Error::Runtime(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_rates_for_people() {
        assert_eq!(plural(1, "message"), "1 message");
        assert_eq!(plural(0, "message"), "0 messages");
        assert_eq!(plural(2, "message"), "2 messages");
        assert_eq!(rate(1006.7045), "1007/s");
        assert_eq!(rate(12.4), "12/s");
        assert_eq!(rate(0.42), "0.4/s");
        assert_eq!(rate(0.0), "-");
        assert_eq!(rate(f64::INFINITY), "-");
    }

    #[test]
    fn no_color_is_honoured() {
        use std::ffi::OsStr;
        assert!(color_with(true, None));
        assert!(!color_with(false, None));
        assert!(!color_with(true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(color_with(true, Some(OsStr::new(""))));
    }

    #[test]
    fn dates_are_usage_errors() {
        // The day itself is tested with explicit zones in policy::day.
        assert!(matches!(parse_date("2026-13-01"), Err(Error::Usage(_))));
        assert!(matches!(parse_date("tomorrow"), Err(Error::Usage(_))));
        assert!(parse_date("today").is_ok());
    }
}
