//! The trading calendar: NYSE full-day holidays computed by rule, trading days, and each day's
//! session bounds in UTC nanoseconds (DST handled by chrono-tz).

use chrono::{Datelike, Months, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use pipeline_core::{Error, Result};

use super::config::{GenConfig, Holidays};

pub use pipeline_core::calendar::nyse_holidays;

/// The last date (exclusive) covered by `cfg`: `start_date` plus `years` years.
fn end_date(cfg: &GenConfig) -> Result<NaiveDate> {
    cfg.start_date
        .checked_add_months(Months::new(cfg.years.saturating_mul(12)))
        .ok_or_else(|| Error::Config {
            key: "years".into(),
            message: format!(
                "{} years from {} is out of range",
                cfg.years, cfg.start_date
            ),
        })
}

/// The trading days of `cfg`: weekdays in `[start_date, start_date + years)` minus holidays,
/// truncated to the first `days` when that is set.
pub fn trading_days(cfg: &GenConfig) -> Result<Vec<NaiveDate>> {
    let end = end_date(cfg)?;
    let mut holidays: Vec<NaiveDate> = match &cfg.holidays {
        Holidays::Nyse => (cfg.start_date.year()..=end.year())
            .flat_map(nyse_holidays)
            .collect(),
        Holidays::Custom(list) => list.clone(),
    };
    holidays.sort_unstable();
    let limit = cfg.days.map_or(usize::MAX, |d| d as usize);
    let mut out = Vec::new();
    let mut day = cfg.start_date;
    while day < end && out.len() < limit {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        if !weekend && holidays.binary_search(&day).is_err() {
            out.push(day);
        }
        day = day
            .succ_opt()
            .ok_or_else(|| Error::Internal("date overflow".into()))?;
    }
    Ok(out)
}

/// Nanoseconds since the Unix epoch of local `date` at `time` in `tz` (the earlier instant
/// when the local time is ambiguous).
pub(crate) fn local_to_utc_ns(tz: Tz, date: NaiveDate, time: NaiveTime) -> Result<i64> {
    let local = date.and_time(time);
    let instant = tz
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(|| Error::Config {
            key: "session_open".into(),
            message: format!("{local} does not exist in {tz} (a DST gap)"),
        })?;
    instant
        .timestamp_nanos_opt()
        .ok_or_else(|| Error::Internal(format!("{local} is out of the nanosecond range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn nyse_2023_has_new_year_on_monday() {
        let h = nyse_holidays(2023);
        assert_eq!(h[0], d(2023, 1, 2));
        assert!(h.contains(&d(2023, 6, 19)));
        assert_eq!(h.len(), 10);
    }

    #[test]
    fn trading_days_skip_weekends_and_holidays() {
        let cfg = GenConfig {
            start_date: d(2021, 7, 1),
            days: Some(3),
            ..GenConfig::default()
        };
        let days = trading_days(&cfg).unwrap();
        assert_eq!(days, vec![d(2021, 7, 1), d(2021, 7, 2), d(2021, 7, 6)]);
    }

    #[test]
    fn five_years_have_about_252_days_each() {
        let days = trading_days(&GenConfig::default()).unwrap();
        assert_eq!(days.first(), Some(&d(2019, 1, 2)));
        assert!(days.last().unwrap() < &d(2024, 1, 2));
        assert!((1255..=1262).contains(&days.len()), "{}", days.len());
    }

    #[test]
    fn dst_moves_the_utc_open() {
        let tz = chrono_tz::America::New_York;
        let open = NaiveTime::from_hms_opt(9, 30, 0).unwrap();
        let ns = local_to_utc_ns(tz, d(2021, 3, 12), open).unwrap();
        assert_eq!(
            ns % 86_400_000_000_000,
            14 * 3_600_000_000_000 + 30 * 60_000_000_000
        );
        let ns = local_to_utc_ns(tz, d(2021, 3, 15), open).unwrap();
        assert_eq!(
            ns % 86_400_000_000_000,
            13 * 3_600_000_000_000 + 30 * 60_000_000_000
        );
    }
}
