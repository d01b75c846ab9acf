//! Exchange-local time of day and trading date, from UTC nanoseconds.

use chrono_tz::Tz;
use pipeline_core::calendar::ZoneOffsets;
use pipeline_core::{Error, Result, parse_hhmm};

/// Session hours in a time zone, with the UTC offset cached ([`ZoneOffsets`]: exact); the
/// conversion is O(1) amortised for time-ordered input.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    offsets: ZoneOffsets,
    open: u32,
    close: u32,
}

impl Session {
    /// Parses `HH:MM` bounds and an IANA zone name.
    pub(crate) fn new(open: &str, close: &str, tz: &str) -> Result<Self> {
        let o = parse_hhmm(open).map_err(|m| Error::config("preprocessing.session_open", m))?;
        let c = parse_hhmm(close).map_err(|m| Error::config("preprocessing.session_close", m))?;
        let tz: Tz = tz.parse().map_err(|_| {
            Error::config(
                "preprocessing.session_timezone",
                format!("unknown time zone `{tz}`; use an IANA name such as America/New_York"),
            )
        })?;
        Ok(Session {
            offsets: ZoneOffsets::new(tz),
            open: o,
            close: c,
        })
    }

    /// Local nanoseconds since the epoch (UTC plus the zone's offset at `ts`).
    fn local_ns(&mut self, ts: i64) -> i64 {
        ts + self.offsets.at(ts)
    }

    /// Whether `ts` falls in `[open, close)` local time.
    pub(crate) fn in_session(&mut self, ts: i64) -> bool {
        let l = self.local_ns(ts);
        let min = (l.rem_euclid(86_400_000_000_000) / 60_000_000_000) as u32;
        min >= self.open && min < self.close
    }

    /// The local trading date as days since 1970-01-01.
    pub(crate) fn local_day(&mut self, ts: i64) -> i64 {
        self.local_ns(ts).div_euclid(86_400_000_000_000)
    }
}

/// Days since the epoch of a chrono date (for tests).
#[cfg(test)]
pub(crate) fn epoch_day(y: i32, m: u32, d: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .map(|d| i64::from(chrono::Datelike::num_days_from_ce(&d) - 719_163))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn ns(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn new_york_hours_follow_daylight_saving() {
        let mut s = Session::new("09:30", "16:00", "America/New_York").unwrap();
        // Winter: 09:30 EST is 14:30 UTC.
        assert!(!s.in_session(ns("2021-01-04T14:29:59Z")));
        assert!(s.in_session(ns("2021-01-04T14:30:00Z")));
        assert!(!s.in_session(ns("2021-01-04T21:00:00Z")));
        // Summer: 09:30 EDT is 13:30 UTC.
        assert!(s.in_session(ns("2021-07-06T13:30:00Z")));
        assert!(!s.in_session(ns("2021-07-06T20:00:00Z")));
        assert_eq!(
            s.local_day(ns("2021-07-06T23:00:00Z")),
            epoch_day(2021, 7, 6)
        );
        assert_eq!(
            s.local_day(ns("2021-07-07T03:00:00Z")),
            epoch_day(2021, 7, 6)
        );
        assert!(Session::new("09:30", "16:00", "Mars/Olympus").is_err());
    }
}
