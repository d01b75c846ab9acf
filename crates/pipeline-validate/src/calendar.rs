//! The trading calendar (NYSE full-day holidays by rule, weekdays, or none) and a clock that
//! turns UTC nanoseconds into the exchange's local date and time of day.
//!
//! The NYSE rules are the ones gen-data uses (`pipeline_io::nyse_holidays`), copied here
//! rather than depended on: stage crates depend only on pipeline-core. A test in
//! `tests/it` checks both give the same dates.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Weekday};
use chrono_tz::Tz;
use pipeline_core::{Error, Result, parse_hhmm};
use serde::{Deserialize, Serialize};

/// Nanoseconds per day.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;
/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const CE_TO_EPOCH: i32 = 719_163;

/// Which days the market is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    /// Weekdays except NYSE full-day holidays (computed by rule, as gen-data does).
    Nyse,
    /// Every weekday.
    Weekdays,
    /// No calendar: the session and trading-day rules do not run.
    None,
}

impl CalendarKind {
    /// Parses `nyse`, `weekdays` or `none`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "nyse" => Ok(CalendarKind::Nyse),
            "weekdays" => Ok(CalendarKind::Weekdays),
            "none" => Ok(CalendarKind::None),
            other => Err(Error::config(
                "validation.calendar",
                format!("unknown calendar `{other}`; expected nyse, weekdays or none"),
            )),
        }
    }
}

/// The `n`-th (1-based) `weekday` of `month`, or the last one when `n` is 5 and there are four.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
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

/// NYSE full-day holidays of `year`, by rule (New Year's Day, unless on a Saturday; MLK Day;
/// Washington's Birthday; Good Friday; Memorial Day; Juneteenth from 2022; Independence Day;
/// Labor Day; Thanksgiving; Christmas), sorted. Early closes (13:00) and one-off closures
/// are not modelled, as in gen-data.
///
/// ```
/// use chrono::NaiveDate;
/// let h = pipeline_validate::nyse_holidays(2021);
/// assert!(h.contains(&NaiveDate::from_ymd_opt(2021, 7, 5).unwrap()));
/// assert_eq!(h.len(), 9);
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
    days.extend(
        nth_weekday(year, 5, Weekday::Mon, 5).or_else(|| nth_weekday(year, 5, Weekday::Mon, 4)),
    );
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

/// Days since 1970-01-01 of a date.
pub(crate) fn epoch_day(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - CE_TO_EPOCH
}

/// The date of a day number (days since 1970-01-01).
pub(crate) fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + CE_TO_EPOCH).unwrap_or_default()
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn day_string(day: i32) -> String {
    date_of(day).format("%Y-%m-%d").to_string()
}

/// Parses `YYYY-MM-DD` into a day number.
pub(crate) fn parse_day(s: &str) -> Option<i32> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(epoch_day)
}

/// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
fn weekday_of(day: i32) -> i32 {
    (day + 4).rem_euclid(7)
}

/// Which days are trading days.
#[derive(Debug, Clone)]
pub struct Calendar {
    kind: CalendarKind,
    closed: HashSet<i32>,
}

impl Calendar {
    /// A calendar of `kind` with `extra` closed dates.
    pub fn new(kind: CalendarKind, extra: &[NaiveDate]) -> Self {
        let mut closed: HashSet<i32> = extra.iter().map(|d| epoch_day(*d)).collect();
        if kind == CalendarKind::Nyse {
            // Holidays by rule for every year a tick file can plausibly hold; about 1,300
            // dates, computed once per stage.
            for y in 1970..=2100 {
                closed.extend(nyse_holidays(y).into_iter().map(epoch_day));
            }
        }
        Calendar { kind, closed }
    }

    /// The calendar's kind.
    pub fn kind(&self) -> CalendarKind {
        self.kind
    }

    /// Whether `day` (days since 1970-01-01) is a trading day. Always true for
    /// [`CalendarKind::None`].
    pub fn is_trading_day(&self, day: i32) -> bool {
        match self.kind {
            CalendarKind::None => true,
            _ => {
                let wd = weekday_of(day);
                wd != 0 && wd != 6 && !self.closed.contains(&day)
            }
        }
    }

    /// Trading days in `[from, to]`.
    pub fn trading_days(&self, from: i32, to: i32) -> Vec<i32> {
        (from..=to).filter(|d| self.is_trading_day(*d)).collect()
    }
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
    fn trading_days_skip_weekends_holidays_and_extra_dates() {
        let cal = Calendar::new(CalendarKind::Nyse, &[d(2021, 7, 6)]);
        let days = cal.trading_days(epoch_day(d(2021, 7, 1)), epoch_day(d(2021, 7, 8)));
        let got: Vec<String> = days.into_iter().map(day_string).collect();
        assert_eq!(
            got,
            ["2021-07-01", "2021-07-02", "2021-07-07", "2021-07-08"]
        );
        let wk = Calendar::new(CalendarKind::Weekdays, &[]);
        assert!(wk.is_trading_day(epoch_day(d(2021, 7, 5))));
        assert!(!wk.is_trading_day(epoch_day(d(2021, 7, 4))));
        assert!(Calendar::new(CalendarKind::None, &[]).is_trading_day(epoch_day(d(2021, 7, 4))));
        assert_eq!(parse_day("2021-07-04"), Some(epoch_day(d(2021, 7, 4))));
        assert!(CalendarKind::parse("lse").is_err());
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
