//! The daemon's log: one readable line per event on stderr, as
//! `2026-11-29T05:20:01Z uvsd info: config applied (3 services)`.
//!
//! Only the control plane logs (start, configuration applied or refused,
//! backend chosen, errors); the packet path never does. A message that
//! holds several lines (a config file with several problems) is written
//! as one line per problem, each with the same prefix, so every line
//! stands alone in a journal or a grep.

use std::fmt::Display;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How much an event matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something the operator may want to act on; the daemon goes on.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

/// Write one event (one line per line of `message`).
pub fn event(level: Level, message: impl Display) {
    let text = message.to_string();
    let stamp = utc_timestamp(SystemTime::now());
    let mut out = std::io::stderr().lock();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // A closed stderr must not take the daemon down.
        let _ = writeln!(out, "{stamp} uvsd {}: {line}", level.name());
    }
}

/// Log an [`Level::Info`] event.
pub fn info(message: impl Display) {
    event(Level::Info, message);
}

/// Log a [`Level::Warn`] event.
pub fn warn(message: impl Display) {
    event(Level::Warn, message);
}

/// Log an [`Level::Error`] event.
pub fn error(message: impl Display) {
    event(Level::Error, message);
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `time` (UTC; before 1970 prints the epoch).
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day) 12:34:56.
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696);
        assert_eq!(utc_timestamp(t), "2000-02-29T12:34:56Z");
        // 2026-11-29 05:20:01.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_929_601);
        assert_eq!(utc_timestamp(t), "2026-11-29T05:20:01Z");
    }
}
