//! Session-local time of each row: hour, minute, weekday, seconds since the session opened,
//! the in-session flag and cyclical encodings, in the session's time zone (DST-correct).
//!
//! Converting every timestamp through the zone database would cost more than all other
//! features together, so the UTC offset is cached over a UTC day, or an hour on the days the
//! clocks change ([`ZoneOffsets`], exact). Before, a lookup per 15-minute slot was about 26
//! lookups a session day.

use chrono_tz::Tz;
use pipeline_core::calendar::ZoneOffsets;
use pipeline_core::{Error, Result, parse_hhmm};

const NS_PER_S: i64 = 1_000_000_000;
const DAY_S: i64 = 86_400;

/// A row's session-local time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalTime {
    /// Local calendar day, as days since 1970-01-01 (local).
    pub day: i64,
    /// Nanoseconds since local midnight.
    pub ns_of_day: i64,
    /// Day of week, Monday = 0 … Sunday = 6.
    pub weekday: u32,
}

impl LocalTime {
    /// Hour of day, 0–23.
    pub fn hour(&self) -> u32 {
        (self.ns_of_day / (3600 * NS_PER_S)) as u32
    }

    /// Minute of the hour, 0–59.
    pub fn minute(&self) -> u32 {
        ((self.ns_of_day / (60 * NS_PER_S)) % 60) as u32
    }

    /// Seconds since local midnight, with the fraction.
    pub fn seconds_of_day(&self) -> f64 {
        self.ns_of_day as f64 / 1e9
    }
}

/// Converts UTC nanosecond timestamps to session-local time and session flags.
#[derive(Debug, Clone)]
pub struct SessionClock {
    offsets: ZoneOffsets,
    open_s: i64,
    close_s: i64,
}

impl SessionClock {
    /// A clock for session hours `open`–`close` (`HH:MM`, local) in zone `timezone` (IANA).
    pub fn new(open: &str, close: &str, timezone: &str) -> Result<Self> {
        let tz: Tz = timezone.parse().map_err(|_| {
            Error::config(
                "preprocessing.session_timezone",
                format!("`{timezone}` is not an IANA time zone (e.g. America/New_York)"),
            )
        })?;
        let open_m =
            parse_hhmm(open).map_err(|m| Error::config("preprocessing.session_open", m))?;
        let close_m =
            parse_hhmm(close).map_err(|m| Error::config("preprocessing.session_close", m))?;
        Ok(SessionClock {
            offsets: ZoneOffsets::new(tz),
            open_s: i64::from(open_m) * 60,
            close_s: i64::from(close_m) * 60,
        })
    }

    /// Local time of UTC timestamp `ts_ns`.
    pub fn local(&mut self, ts_ns: i64) -> LocalTime {
        let s = ts_ns.div_euclid(NS_PER_S);
        let sub = ts_ns.rem_euclid(NS_PER_S);
        // Offsets are whole seconds.
        let local_s = s + self.offsets.at(ts_ns) / NS_PER_S;
        let day = local_s.div_euclid(DAY_S);
        let sod = local_s.rem_euclid(DAY_S);
        LocalTime {
            day,
            ns_of_day: sod * NS_PER_S + sub,
            // 1970-01-01 was a Thursday (weekday 3 counting from Monday = 0).
            weekday: (day + 3).rem_euclid(7) as u32,
        }
    }

    /// Seconds since the session opened (negative before the open).
    pub fn since_open(&self, t: &LocalTime) -> f64 {
        (t.ns_of_day - self.open_s * NS_PER_S) as f64 / 1e9
    }

    /// True from the open (inclusive) to the close (exclusive) on weekdays.
    pub fn in_session(&self, t: &LocalTime) -> bool {
        let s = t.ns_of_day / NS_PER_S;
        t.weekday < 5 && s >= self.open_s && s < self.close_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn new_york_hours_follow_daylight_saving() {
        let mut c = SessionClock::new("09:30", "16:00", "America/New_York").unwrap();
        // 14:30 UTC is 09:30 EST in winter and 10:30 EDT in summer.
        let w = c.local(ts("2021-01-04T14:30:00Z"));
        assert_eq!((w.hour(), w.minute(), w.weekday), (9, 30, 0));
        assert!(c.in_session(&w));
        assert_eq!(c.since_open(&w), 0.0);
        let s = c.local(ts("2021-07-06T14:30:00.5Z"));
        assert_eq!((s.hour(), s.minute(), s.weekday), (10, 30, 1));
        assert_eq!(c.since_open(&s), 3600.5);
        // Across the spring-forward night (2021-03-14, 02:00 EST -> 03:00 EDT).
        let before = c.local(ts("2021-03-14T06:59:59Z"));
        let after = c.local(ts("2021-03-14T07:00:00Z"));
        assert_eq!((before.hour(), before.minute()), (1, 59));
        assert_eq!((after.hour(), after.minute()), (3, 0));
        assert_eq!(after.weekday, 6);
        assert!(!c.in_session(&after));
    }

    #[test]
    fn bad_zone_and_hours_are_config_errors() {
        assert!(SessionClock::new("09:30", "16:00", "Mars/Olympus").is_err());
        assert!(SessionClock::new("9h30", "16:00", "UTC").is_err());
    }
}
