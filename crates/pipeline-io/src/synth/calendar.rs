//! The trading calendar: NYSE full-day holidays computed by rule, trading days, and each day's
//! session bounds in UTC nanoseconds (DST handled by chrono-tz).

use chrono::{Datelike, Months, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use pipeline_core::{Error, Result};

use super::config::{GenConfig, Holidays};

/// The `n`-th (1-based) `weekday` of `month` in `year`.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month` in `year`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Easter Sunday (Gregorian), by the anonymous "Meeus/Jones/Butcher" algorithm.
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// A fixed-date holiday moved to Friday when it falls on Saturday and to Monday on Sunday.
fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date - chrono::Days::new(1),
        Weekday::Sun => date + chrono::Days::new(1),
        _ => date,
    }
}

/// NYSE full-day holidays of `year`, computed by rule, sorted.
///
/// New Year's Day (on a Saturday it is not observed: NYSE does not close on the Friday before,
/// which is the last trading day of the year), Martin Luther King Jr. Day (third Monday of
/// January), Washington's Birthday (third Monday of February), Good Friday, Memorial Day (last
/// Monday of May), Juneteenth (June 19, from 2022), Independence Day, Labor Day (first Monday
/// of September), Thanksgiving (fourth Thursday of November) and Christmas. Fixed-date holidays
/// falling on a Saturday are observed on Friday, on a Sunday on Monday. One-off closures
/// (national days of mourning, hurricanes) are not included.
///
/// ```
/// use chrono::NaiveDate;
/// let h = pipeline_io::nyse_holidays(2021);
/// assert!(h.contains(&NaiveDate::from_ymd_opt(2021, 7, 5).unwrap())); // July 4 was a Sunday
/// assert!(h.contains(&NaiveDate::from_ymd_opt(2021, 12, 24).unwrap())); // Christmas, a Saturday
/// assert_eq!(h.len(), 9); // New Year 2022 fell on a Saturday: not observed in 2021
/// ```
pub fn nyse_holidays(year: i32) -> Vec<NaiveDate> {
    let fixed = |month: u32, day: u32| NaiveDate::from_ymd_opt(year, month, day);
    let mut days = Vec::with_capacity(10);
    if let Some(new_year) = fixed(1, 1) {
        match new_year.weekday() {
            Weekday::Sat => {}
            Weekday::Sun => days.push(new_year + chrono::Days::new(1)),
            _ => days.push(new_year),
        }
    }
    days.extend(nth_weekday(year, 1, Weekday::Mon, 3));
    days.extend(nth_weekday(year, 2, Weekday::Mon, 3));
    days.extend(easter(year).map(|e| e - chrono::Days::new(2)));
    days.extend(last_weekday(year, 5, Weekday::Mon));
    if year >= 2022 {
        days.extend(fixed(6, 19).map(observed));
    }
    days.extend(fixed(7, 4).map(observed));
    days.extend(nth_weekday(year, 9, Weekday::Mon, 1));
    days.extend(nth_weekday(year, 11, Weekday::Thu, 4));
    days.extend(fixed(12, 25).map(observed));
    days.sort_unstable();
    days
}

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
    fn easter_dates() {
        assert_eq!(easter(2019), Some(d(2019, 4, 21)));
        assert_eq!(easter(2021), Some(d(2021, 4, 4)));
        assert_eq!(easter(2024), Some(d(2024, 3, 31)));
    }

    #[test]
    fn nyse_2022_matches_the_published_calendar() {
        let expected = vec![
            d(2022, 1, 17),
            d(2022, 2, 21),
            d(2022, 4, 15),
            d(2022, 5, 30),
            d(2022, 6, 20),
            d(2022, 7, 4),
            d(2022, 9, 5),
            d(2022, 11, 24),
            d(2022, 12, 26),
        ];
        assert_eq!(nyse_holidays(2022), expected);
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
