//! The trading calendar (NYSE full-day holidays by rule, weekdays, or none) and a clock that
//! turns UTC nanoseconds into the exchange's local date and time of day.
//!
//! The NYSE rules live in `pipeline_core::calendar` (gen-data and the bars use the same).

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
pub use pipeline_core::calendar::{Calendar, CalendarKind, date_of, epoch_day, nyse_holidays};
use pipeline_core::{Error, Result, parse_hhmm};

/// Nanoseconds per day.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;

/// `YYYY-MM-DD` of a day number.
pub(crate) fn day_string(day: i32) -> String {
    use chrono::Datelike;
    let d = date_of(day);
    if (0..=9999).contains(&d.year()) {
        // What `%Y-%m-%d` gives, without parsing the format string each time (a report
        // names every symbol-day).
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

/// Parses `YYYY-MM-DD` into a day number.
pub(crate) fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        // The usual form, by hand: chrono's format parser was 7% of an append's report.
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |a, &c| {
                c.is_ascii_digit().then(|| a * 10 + u32::from(c - b'0'))
            })
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d).map(epoch_day);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(epoch_day)
}

/// Session hours in a zone, and UTC → local conversion with a cached offset (exact: an hour is
/// cached only when the offset is the same at both ends) and a cached local day, so the
/// per-row cost for time-ordered input is two comparisons.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    tz: Tz,
    /// Session open and close as nanoseconds after local midnight.
    pub open: i64,
    pub close: i64,
    hour: Option<(i64, i64, i64)>,
    day: Option<(i64, i64, i32)>,
}

impl Clock {
    /// Parses `HH:MM` bounds and an IANA zone name (errors name the `[preprocessing]` keys
    /// they come from).
    pub(crate) fn new(open: &str, close: &str, tz: &str) -> Result<Self> {
        let o = parse_hhmm(open).map_err(|m| Error::config("preprocessing.session_open", m))?;
        let c = parse_hhmm(close).map_err(|m| Error::config("preprocessing.session_close", m))?;
        let tz: Tz = tz.parse().map_err(|_| {
            Error::config(
                "preprocessing.session_timezone",
                format!("unknown time zone `{tz}`; use an IANA name such as America/New_York"),
            )
        })?;
        Ok(Clock {
            tz,
            open: i64::from(o) * 60_000_000_000,
            close: i64::from(c) * 60_000_000_000,
            hour: None,
            day: None,
        })
    }

    fn offset_at(&self, ts: i64) -> i64 {
        let dt = DateTime::from_timestamp_nanos(ts);
        i64::from(
            self.tz
                .offset_from_utc_datetime(&dt.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * 1_000_000_000
    }

    /// Local nanoseconds since the epoch (UTC plus the zone's offset at `ts`).
    #[inline]
    pub(crate) fn local(&mut self, ts: i64) -> i64 {
        if let Some((s, e, off)) = self.hour
            && ts >= s
            && ts < e
        {
            return ts + off;
        }
        let start = ts.div_euclid(HOUR_NS) * HOUR_NS;
        let end = start.saturating_add(HOUR_NS);
        let off = self.offset_at(start);
        if self.offset_at(end - 1) == off {
            self.hour = Some((start, end, off));
            ts + off
        } else {
            ts + self.offset_at(ts)
        }
    }

    /// The local date (days since 1970-01-01) and time of day (ns after local midnight).
    #[inline]
    pub(crate) fn day_tod(&mut self, ts: i64) -> (i32, i64) {
        let l = self.local(ts);
        if let Some((s, e, d)) = self.day
            && l >= s
            && l < e
        {
            return (d, l - s);
        }
        let d = l.div_euclid(DAY_NS);
        let s = d * DAY_NS;
        let day = i32::try_from(d).unwrap_or(if d < 0 { i32::MIN } else { i32::MAX });
        self.day = Some((s, s.saturating_add(DAY_NS), day));
        (day, l - s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_strings_parse_back_as_chrono_reads_them() {
        for s in [
            "2024-02-29",
            "1999-12-31",
            "2023-01-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            let want = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(epoch_day);
            assert_eq!(parse_day(s), want, "{s}");
            assert_eq!(day_string(parse_day(s).unwrap()), s);
        }
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-1-011",
            "20x3-01-01",
            "",
            "2023/01/01",
        ] {
            let want = NaiveDate::parse_from_str(bad, "%Y-%m-%d")
                .ok()
                .map(epoch_day);
            assert_eq!(parse_day(bad), want, "{bad}");
        }
        assert_eq!(
            parse_day("2023-1-1"),
            NaiveDate::parse_from_str("2023-1-1", "%Y-%m-%d")
                .ok()
                .map(epoch_day)
        );
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn ns(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn days_print_and_parse() {
        assert_eq!(parse_day("2021-07-04"), Some(epoch_day(d(2021, 7, 4))));
        assert_eq!(day_string(epoch_day(d(2021, 7, 4))), "2021-07-04");
    }

    #[test]
    fn clock_follows_daylight_saving() {
        let mut c = Clock::new("09:30", "16:00", "America/New_York").unwrap();
        let (day, tod) = c.day_tod(ns("2021-01-04T14:30:00Z"));
        assert_eq!(day_string(day), "2021-01-04");
        assert_eq!(tod, c.open);
        let (_, tod) = c.day_tod(ns("2021-07-06T13:30:00Z"));
        assert_eq!(tod, c.open);
        let (day, _) = c.day_tod(ns("2021-07-07T03:00:00Z"));
        assert_eq!(day_string(day), "2021-07-06");
        assert!(Clock::new("09:30", "16:00", "Mars/Olympus").is_err());
    }
}
