//! The user's calendar days and clock times: what `--since 2026-11-30`
//! means and how a time is printed for a person. Pure: the time zone is
//! an argument (the shell reads it from `TZ` or `/etc/localtime` with
//! [`TimeZone::try_system`]); times are Unix seconds.
//!
//! A day the user types is a day of their own calendar: it starts at
//! local midnight (or, where a DST change skips midnight, at the first
//! instant of that day), not at midnight UTC. IMAP has no such day:
//! `SEARCH SINCE` compares the server's idea of the date, "disregarding
//! time and timezone" (RFC 3501 section 6.4.4), so [`search_since`] gives
//! a date early enough for any server zone, and the caller filters the
//! instants itself where it knows them.
//!
//! Dates and times for people carry the zone's offset
//! (`2026-12-01 08:20 +09:00`); JSON output keeps Unix seconds.

pub use jiff::tz::TimeZone;
use jiff::{civil::Date, Timestamp};

/// The instant of `ts` (Unix seconds), clamped into jiff's range.
fn instant(ts: i64) -> Timestamp {
    Timestamp::from_second(ts).unwrap_or(if ts < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The first instant of the civil day `date` in `tz`, Unix seconds: local
/// midnight, or the end of a DST gap that swallows midnight.
pub fn start_of(date: Date, tz: &TimeZone) -> i64 {
    date.to_zoned_datetime(tz.clone())
        .and_then(|z| z.start_of_day())
        .map_or_else(
            |_| {
                // Out of range (year 9999 at +14): the UTC midnight.
                date.to_zoned_datetime(TimeZone::UTC)
                    .map_or(0, |z| z.timestamp().as_second())
            },
            |z| z.timestamp().as_second(),
        )
}

/// A day the user typed, in `tz`: `YYYY-MM-DD` (ISO 8601 calendar date),
/// `today` or `yesterday` (relative to `now`, Unix seconds). Returns the
/// first instant of that day in Unix seconds ([`start_of`]).
///
/// # Errors
/// One sentence naming the text and the expected form.
pub fn parse(s: &str, now: i64, tz: &TimeZone) -> Result<i64, String> {
    let bad = || {
        format!("\"{s}\" is not a date: write YYYY-MM-DD (a day of your time zone), today or yesterday, e.g. 2026-11-20")
    };
    let t = s.trim();
    let today = instant(now).to_zoned_datetime(tz.clone()).date();
    let date = match t.to_ascii_lowercase().as_str() {
        "today" => today,
        "yesterday" => today.yesterday().map_err(|_| bad())?,
        _ => {
            let mut it = t.split('-');
            let (y, m, d) = (it.next(), it.next(), it.next());
            if it.next().is_some() {
                return Err(bad());
            }
            let y: i16 = y.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let m: i8 = m.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let d: i8 = d.and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            if !(1970..=9999).contains(&y) {
                return Err(bad());
            }
            Date::new(y, m, d).map_err(|_| bad())?
        }
    };
    Ok(start_of(date, tz))
}

/// The date for IMAP `SEARCH SINCE` that finds every message that arrived
/// at or after `start` (Unix seconds), whatever zone the server reads
/// dates in (UTC-12 to UTC+14): the UTC date of `start`, one day earlier.
/// Returned as the Unix seconds of that date's UTC midnight (what
/// `imap_date` prints as `29-Nov-2026`). The search may so return up to
/// two days more than asked; filter by INTERNALDATE where it matters.
pub fn search_since(start: i64) -> i64 {
    (start.div_euclid(86_400) - 1) * 86_400
}

/// The zone's name for people: its IANA name (`Asia/Tokyo`, `Etc/UTC`)
/// or, for a POSIX `TZ` rule or a fixed offset, the offset it has at `ts`.
pub fn zone_name(tz: &TimeZone, ts: i64) -> String {
    match tz.iana_name() {
        Some(n) if n != "Etc/Unknown" => n.to_string(),
        _ => offset(tz, ts),
    }
}

/// The offset from UTC at `ts` in `tz`: `+09:00`, `-08:00`, `+00:00`.
pub fn offset(tz: &TimeZone, ts: i64) -> String {
    instant(ts)
        .to_zoned_datetime(tz.clone())
        .strftime("%:z")
        .to_string()
}

/// The local civil day of `ts` in `tz`: `2026-12-01`.
pub fn date(ts: i64, tz: &TimeZone) -> String {
    instant(ts)
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d")
        .to_string()
}

/// The local time of `ts` in `tz` with its offset: `2026-12-01 08:20 +09:00`.
pub fn time(ts: i64, tz: &TimeZone) -> String {
    instant(ts)
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// A log line's time stamp: RFC 3339 in `tz` with milliseconds and the
/// offset, `2026-12-01T08:20:05.123+09:00`, of `secs` Unix seconds and
/// `nanos` nanoseconds past them.
pub fn log_stamp(secs: i64, nanos: u32, tz: &TimeZone) -> String {
    Timestamp::new(secs, i32::try_from(nanos.min(999_999_999)).unwrap_or(0))
        .unwrap_or_else(|_| instant(secs))
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// The start of the local hour holding `ts`, Unix seconds (with the
/// offset in force at `ts`, so the repeated hour of a DST change is two
/// hours, and a `+05:30` zone's hours start at :30 UTC).
pub fn hour_floor(ts: i64, tz: &TimeZone) -> i64 {
    let off = i64::from(tz.to_offset(instant(ts)).seconds());
    ts - (ts + off).rem_euclid(3600)
}

/// The start of the local day holding `ts`, Unix seconds.
pub fn day_floor(ts: i64, tz: &TimeZone) -> i64 {
    start_of(instant(ts).to_zoned_datetime(tz.clone()).date(), tz)
}

/// The start of the local day after the one holding `ts` (23, 24 or 25
/// hours later around a DST change).
pub fn next_day(ts: i64, tz: &TimeZone) -> i64 {
    let d = instant(ts).to_zoned_datetime(tz.clone()).date();
    d.tomorrow().map_or(ts + 86_400, |d| start_of(d, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("the system's tzdata (Debian package tzdata)")
    }

    /// 2026-11-30 10:20 UTC: the flood of the newcomer trial.
    const FLOOD: i64 = 1_796_034_000;

    #[test]
    fn flood_instant_is_what_the_tests_say() {
        assert_eq!(time(FLOOD, &TimeZone::UTC), "2026-11-30 10:20 +00:00");
    }

    #[test]
    fn a_typed_day_starts_at_local_midnight() {
        let now = FLOOD;
        // UTC: midnight UTC, as before.
        assert_eq!(
            parse("2026-11-30", now, &TimeZone::UTC).unwrap(),
            1_795_996_800
        );
        // +14: local midnight of 12-01 is 10:00 UTC on 11-30.
        let k = tz("Pacific/Kiritimati");
        let start = parse("2026-12-01", now, &k).unwrap();
        assert_eq!(time(start, &TimeZone::UTC), "2026-11-30 10:00 +00:00");
        assert_eq!(time(start, &k), "2026-12-01 00:00 +14:00");
        // "today" there is already 12-01 at 10:20 UTC.
        assert_eq!(parse("today", now, &k).unwrap(), start);
        assert_eq!(parse(" Yesterday ", now, &k).unwrap(), start - 86_400);
        // Los Angeles (-08:00 in November): 08:00 UTC.
        let la = tz("America/Los_Angeles");
        let start = parse("2026-11-30", now, &la).unwrap();
        assert_eq!(time(start, &TimeZone::UTC), "2026-11-30 08:00 +00:00");
        assert_eq!(date(FLOOD, &la), "2026-11-30");
        assert_eq!(date(FLOOD, &k), "2026-12-01");
    }

    #[test]
    fn days_around_dst_changes() {
        let la = tz("America/Los_Angeles");
        // 2026-03-08: clocks go 02:00 -> 03:00; the day lasts 23 hours.
        let d = parse("2026-03-08", 0, &la).unwrap();
        assert_eq!(time(d, &la), "2026-03-08 00:00 -08:00");
        assert_eq!(next_day(d, &la) - d, 23 * 3600);
        assert_eq!(time(next_day(d, &la), &la), "2026-03-09 00:00 -07:00");
        // 2026-11-01: 02:00 -> 01:00; 25 hours, and the repeated hour is
        // two hours.
        let d = parse("2026-11-01", 0, &la).unwrap();
        assert_eq!(next_day(d, &la) - d, 25 * 3600);
        let first_one = d + 3600; // 01:00 -07:00
        let second_one = d + 2 * 3600; // 01:00 -08:00
        assert_eq!(time(first_one, &la), "2026-11-01 01:00 -07:00");
        assert_eq!(time(second_one, &la), "2026-11-01 01:00 -08:00");
        assert_eq!(hour_floor(second_one + 1800, &la), second_one);
        assert_eq!(hour_floor(first_one + 1800, &la), first_one);
        assert_eq!(day_floor(second_one, &la), d);
        // Midnight skipped (America/Sao_Paulo, 2018-11-04 00:00 -> 01:00):
        // the day starts at 01:00.
        let sp = tz("America/Sao_Paulo");
        let d = parse("2018-11-04", 0, &sp).unwrap();
        assert_eq!(time(d, &sp), "2018-11-04 01:00 -02:00");
    }

    #[test]
    fn hours_of_half_hour_zones() {
        let kolkata = tz("Asia/Kolkata");
        // 10:20 UTC is 15:50 +05:30; its hour began at 15:00 local.
        assert_eq!(
            time(hour_floor(FLOOD, &kolkata), &kolkata),
            "2026-11-30 15:00 +05:30"
        );
        assert_eq!(hour_floor(FLOOD, &TimeZone::UTC), FLOOD - 20 * 60);
    }

    #[test]
    fn search_since_covers_every_server_zone() {
        for name in [
            "Pacific/Kiritimati",
            "America/Los_Angeles",
            "UTC",
            "Asia/Kolkata",
        ] {
            let z = tz(name);
            let start = parse("2026-12-01", FLOOD, &z).unwrap();
            let since = search_since(start);
            // The server's day of a message at `start`, in the westmost
            // (-12) and eastmost (+14) zone, is never before the date sent.
            for server in [-12 * 3600, 0, 14 * 3600] {
                assert!(
                    (start + server).div_euclid(86_400) * 86_400 >= since,
                    "{name} {server}"
                );
            }
            // And never more than two days early.
            assert!(start - since < 3 * 86_400, "{name}");
        }
    }

    #[test]
    fn not_dates() {
        for s in [
            "",
            "2026-11",
            "2026-11-31",
            "2026-13-01",
            "1969-12-31",
            "2026-11-30-1",
            "tomorrow",
            "30.11.2026",
        ] {
            let e = parse(s, FLOOD, &TimeZone::UTC).unwrap_err();
            assert!(e.starts_with(&format!("\"{s}\" is not a date")), "{e}");
        }
    }

    #[test]
    fn log_stamps() {
        let k = tz("Pacific/Kiritimati");
        assert_eq!(
            log_stamp(FLOOD + 5, 123_456_789, &k),
            "2026-12-01T00:20:05.123+14:00"
        );
        assert_eq!(
            log_stamp(FLOOD, 0, &TimeZone::UTC),
            "2026-11-30T10:20:00.000+00:00"
        );
    }

    #[test]
    fn zone_names() {
        assert_eq!(zone_name(&tz("Asia/Tokyo"), FLOOD), "Asia/Tokyo");
        let posix = TimeZone::posix("JST-9").unwrap();
        assert_eq!(zone_name(&posix, FLOOD), "+09:00");
        assert_eq!(offset(&tz("America/Los_Angeles"), FLOOD), "-08:00");
    }
}
