//! The wall clock, in one place: Unix seconds for the journal, the sent
//! index's windows and the notices. The pure core takes the time as an
//! argument; only the shell reads the clock.

/// Now, in Unix seconds (0 if the system clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
