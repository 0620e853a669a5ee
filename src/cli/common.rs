//! What the account commands share: loading the config, picking the
//! account, fetching its secret, a tokio runtime, and date arguments.

use super::Error;
use crate::config::{self, Account, Config};
use crate::secret::{self, Secret};
use std::path::Path;

/// Load the config named by `--config`, `$BACKSCATTER_CONFIG` or the
/// platform default.
pub fn load_config(explicit: Option<&Path>) -> Result<Config, Error> {
    let path = config::locate(explicit).ok_or_else(|| {
        Error::Usage("cannot find a home directory for the config file: give --config FILE".into())
    })?;
    let cfg = config::load(&path).map_err(|e| Error::Usage(e.0))?;
    warn_if_exposed(&cfg);
    Ok(cfg)
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
            eprintln!(
                "backscatter: warning: {} can be read by other users (mode {:o}) and holds the password of {} (an echo command); run `chmod 600 {}`, or better, use password.keyring",
                cfg.path.display(),
                mode & 0o777,
                literal
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                cfg.path.display()
            );
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

/// `YYYY-MM-DD` (midnight UTC) as Unix seconds.
pub fn parse_date(s: &str) -> Result<i64, Error> {
    let bad = || {
        Error::Usage(format!(
            "\"{s}\" is not a date: write YYYY-MM-DD, e.g. 2026-11-20"
        ))
    };
    let mut it = s.trim().split('-');
    let (y, m, d) = (it.next(), it.next(), it.next());
    if it.next().is_some() {
        return Err(bad());
    }
    let y: i64 = y.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let m: i64 = m.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let d: i64 = d.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400)
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
    fn dates() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2026-01-01").unwrap(), 1_767_225_600);
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }
}
