//! The trading calendar (NYSE full-day holidays by rule, weekdays, or none) and a clock that
//! turns UTC nanoseconds into the exchange's local date and time of day.
//!
//! The NYSE rules live in `pipeline_core::calendar` (gen-data and the bars use the same).

use chrono::NaiveDate;
use chrono_tz::Tz;
use pipeline_core::calendar::ZoneOffsets;
pub use pipeline_core::calendar::{Calendar, CalendarKind, date_of, epoch_day, nyse_holidays};
use pipeline_core::{Error, Result, parse_hhmm};

/// Nanoseconds per day.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;

/// `YYYY-MM-DD` of a day number.
pub(crate) fn day_string(day: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    if (0..=9999).contains(&y) {
        // What `%Y-%m-%d` gives, without chrono's date arithmetic and formatter (a report
        // names every symbol-day: 1,500 instructions a day before, a third of closing one).
        let mut b = [b'-'; 10];
        let y = y as u32;
        for (i, v) in [(0, y / 100), (2, y % 100), (5, m), (8, d)] {
            b[i] = b'0' + (v / 10) as u8;
            b[i + 1] = b'0' + (v % 10) as u8;
        }
        b.iter().map(|c| *c as char).collect()
    } else {
        date_of(day).format("%Y-%m-%d").to_string()
    }
}

/// The proleptic Gregorian `(year, month, day)` of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

/// Session hours in a zone, and UTC → local conversion with a cached offset
/// ([`ZoneOffsets`]) and a cached local day, so the per-row cost for time-ordered input is
/// two comparisons.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    offsets: ZoneOffsets,
    /// Session open and close as nanoseconds after local midnight.
    pub open: i64,
    pub close: i64,
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
            offsets: ZoneOffsets::new(tz),
            open: i64::from(o) * 60_000_000_000,
            close: i64::from(c) * 60_000_000_000,
            day: None,
        })
    }

    /// Local nanoseconds since the epoch (UTC plus the zone's offset at `ts`).
    #[inline]
    pub(crate) fn local(&mut self, ts: i64) -> i64 {
        ts + self.offsets.at(ts)
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
    use chrono::DateTime;
    use pipeline_core::calendar::utc_offset_ns;

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
    fn day_strings_are_chronos_on_every_day() {
        // Every day of years 0 to 9999, and a few beyond (chrono's own form there).
        let first = epoch_day(d(0, 1, 1));
        let last = epoch_day(d(9999, 12, 31));
        for day in (first - 3..=last + 3).chain([i32::MIN / 2, -800_000, 3_000_000]) {
            assert_eq!(
                day_string(day),
                date_of(day).format("%Y-%m-%d").to_string(),
                "day {day}"
            );
        }
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

    #[test]
    fn cached_offsets_match_the_zone_across_clock_changes() {
        // Every 7 minutes over the days around both 2021 changes in New York and London
        // (the cached span is a UTC day, an hour, or nothing on the change itself), going
        // forward and, for the cache's sake, jumping back now and then.
        for zone in ["America/New_York", "Europe/London", "UTC", "Asia/Kolkata"] {
            let mut c = Clock::new("09:30", "16:00", zone).unwrap();
            let tz: Tz = zone.parse().unwrap();
            for day in ["2021-03-13", "2021-03-27", "2021-11-06", "2021-10-30"] {
                let t0 = ns(&format!("{day}T00:00:00Z"));
                let step = 7 * 60 * 1_000_000_000i64;
                for i in 0..(3 * 24 * 60 / 7) {
                    let t = t0 + i * step;
                    assert_eq!(c.local(t), t + utc_offset_ns(tz, t), "{zone} at {t}");
                    if i % 97 == 0 {
                        let back = t - 26 * 3_600_000_000_000;
                        assert_eq!(c.local(back), back + utc_offset_ns(tz, back), "{zone}");
                    }
                }
            }
        }
    }
}
