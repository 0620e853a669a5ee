//! The wall clock and the user's time zone, in one place: Unix seconds for
//! the journal, the sent index's windows and the notices; the zone for the
//! days the user types and the times printed for them. The pure core takes
//! both as arguments; only the shell reads them.

use crate::day::TimeZone;

/// Now, in Unix seconds (0 if the system clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The user's time zone, read once: `TZ`, else `/etc/localtime`
/// ([`TimeZone::try_system`]). A `TZ` that names no known zone is said
/// once on stderr, and UTC is used.
pub fn zone() -> &'static TimeZone {
    static ZONE: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        TimeZone::try_system().unwrap_or_else(|_| {
            let tz = std::env::var("TZ").unwrap_or_default();
            eprintln!(
                "backscatter: warning: the time zone TZ=\"{}\" is not known here; days and times are taken as UTC",
                tz.replace(char::is_control, " ")
            );
            TimeZone::UTC
        })
    })
}
