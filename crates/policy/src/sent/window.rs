//! The sent mail an automated response is judged against: the `sent-days`
//! before it **arrived**, whenever the judging happens. A response that
//! arrived at T is judged against the sent mail of
//! `[T - lookback, T + SKEW_SECS]` ([`Window::for_arrival`]), which is what
//! `watch` would have judged it against had it been running at T, so that
//! a sweep today, next month or after `sent-days` changed gives one
//! verdict per message.
//!
//! T is the message's IMAP INTERNALDATE (RFC 3501 section 2.3.3: when the
//! server received it), never its `Date:` header, which the sender writes
//! and a forger picks. Only where the arrival is unknown (a message file)
//! does the caller fall back on the `Date:` header.
//!
//! Also here: how far back the sent index must reach for a set of
//! arrivals ([`cover_from`]) and the `SEARCH BEFORE` date that finds the
//! messages a given reach cannot judge ([`uncovered_before`]). Pure: the
//! shell reads the dates and the clock.

/// One day, in seconds.
const DAY: i64 = 86_400;

/// Clock skew allowed between the user's mail client (a sent message's
/// `Date:`), the user's server (INTERNALDATE) and the responder, in
/// seconds: one day, which also absorbs a mis-set time zone.
pub const SKEW_SECS: i64 = DAY;

/// Extra reach of a widened sent index beyond what its oldest arrival
/// needs, in seconds: four days, twice the day granularity and time-zone
/// fuzz of IMAP `SEARCH SINCE/BEFORE` (RFC 3501 section 6.4.4 compares
/// dates in the server's zone), so that the next sweep's
/// [`uncovered_before`] search finds nothing and no second widening
/// follows.
pub const COVER_MARGIN_SECS: i64 = 4 * DAY;

/// How far before its arrival a response's original can have been sent,
/// in seconds: `sent_days` days, never less than
/// [`super::RESPONSE_WINDOW_SECS`] (an MTA retries for up to 5 days
/// before it bounces), plus [`SKEW_SECS`].
pub fn lookback_secs(sent_days: u32) -> i64 {
    (i64::from(sent_days) * DAY).max(super::RESPONSE_WINDOW_SECS) + SKEW_SECS
}

/// The sent mail one response is judged against, in Unix seconds,
/// both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// For a response that arrived at `arrived` (Unix seconds): from
    /// [`lookback_secs`] before it to [`SKEW_SECS`] after it.
    pub fn for_arrival(arrived: i64, sent_days: u32) -> Window {
        Window {
            from: arrived.saturating_sub(lookback_secs(sent_days)),
            to: arrived.saturating_add(SKEW_SECS),
        }
    }

    /// Does a sent message with this `Date:` (`date`) and this time saved
    /// in Sent (`saved`, INTERNALDATE), both Unix seconds, fall in the
    /// window? Either one inside does (a Sent folder imported last week
    /// keeps old `Date:`s; a client with a wrong clock writes wrong
    /// ones); a message with neither counts, as it always has.
    pub fn holds(&self, date: Option<i64>, saved: Option<i64>) -> bool {
        let inside = |t: i64| t >= self.from && t <= self.to;
        match (date, saved) {
            (None, None) => true,
            (d, s) => d.is_some_and(inside) || s.is_some_and(inside),
        }
    }

    /// The window's length in whole days (what reasons name).
    pub fn days_before(sent_days: u32) -> i64 {
        (i64::from(sent_days) * DAY).max(super::RESPONSE_WINDOW_SECS) / DAY
    }
}

/// Where a sent index must start (Unix seconds) to judge every response
/// that arrived at `oldest_arrival` or later: its window's start, less
/// [`COVER_MARGIN_SECS`], at the start of a UTC day.
pub fn cover_from(oldest_arrival: i64, sent_days: u32) -> i64 {
    let t = oldest_arrival
        .saturating_sub(lookback_secs(sent_days))
        .saturating_sub(COVER_MARGIN_SECS);
    t.div_euclid(DAY) * DAY
}

/// The responses an index starting at `covered_from` (Unix seconds) may
/// not judge are among those an IMAP `SEARCH BEFORE` this moment's date
/// finds (Unix seconds; the caller formats the date): every one that
/// arrived before `covered_from + lookback`, and a day or two more for
/// the server's time zone. A superset; the caller reads their
/// INTERNALDATEs before widening anything.
pub fn uncovered_before(covered_from: i64, sent_days: u32) -> i64 {
    covered_from
        .saturating_add(lookback_secs(sent_days))
        .saturating_add(2 * DAY)
}

/// Can an index starting at `covered_from` judge a response that arrived
/// at `arrived` (both Unix seconds)?
pub fn covers(covered_from: i64, arrived: i64, sent_days: u32) -> bool {
    Window::for_arrival(arrived, sent_days).from >= covered_from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_judged_against_the_days_before_it_arrived() {
        let t = 1_000 * DAY;
        let w = Window::for_arrival(t, 30);
        assert_eq!(w.from, t - 31 * DAY);
        assert_eq!(w.to, t + DAY);
        // Sent 29 days before it arrived: inside, however long ago that is.
        assert!(w.holds(Some(t - 29 * DAY), Some(t - 29 * DAY)));
        // 40 days before: outside.
        assert!(!w.holds(Some(t - 40 * DAY), Some(t - 40 * DAY)));
        // A Sent folder imported later: the Date header is inside.
        assert!(w.holds(Some(t - 2 * DAY), Some(t + 300 * DAY)));
        // A client clock a year off: saved in Sent inside.
        assert!(w.holds(Some(t - 365 * DAY), Some(t - DAY)));
        // Sent after the response arrived (beyond the skew): not its original.
        assert!(!w.holds(Some(t + 2 * DAY), Some(t + 2 * DAY)));
        // Undated: counts.
        assert!(w.holds(None, None));
        // A small sent-days never cuts below the MTA's retry time.
        let short = Window::for_arrival(t, 1);
        assert_eq!(short.from, t - 8 * DAY);
        assert_eq!(Window::days_before(1), 7);
        assert_eq!(Window::days_before(30), 30);
    }

    #[test]
    fn the_reach_needed_is_found_once_and_then_holds() {
        let now = 20_000 * DAY + 3_600;
        // The default reach of a fresh index judges only mail of now.
        let default = now - lookback_secs(30);
        assert!(covers(default, now, 30));
        assert!(!covers(default, now - DAY, 30));
        // A mailbox whose oldest message came 400 days ago.
        let oldest = now - 400 * DAY;
        let from = cover_from(oldest, 30);
        assert_eq!(from % DAY, 0);
        assert!(covers(from, oldest, 30));
        assert!(from >= oldest - lookback_secs(30) - COVER_MARGIN_SECS - DAY);
        // The search for what such a reach cannot judge ends before the
        // oldest message's day, with two days to spare for the server's
        // zone: a second sweep widens nothing.
        let before = uncovered_before(from, 30);
        assert!(before <= oldest - DAY, "{before} {oldest}");
        // And everything it cannot judge is before that date.
        for t in [from, from + lookback_secs(30) - 1] {
            assert!(covers(from, t, 30) || t < before);
        }
    }
}
