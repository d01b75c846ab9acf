//! The NYSE trading calendar by rule: full-day holidays, early closes, and a [`Calendar`] of
//! trading days, shared by gen-data (pipeline-io), the validation rules (pipeline-validate)
//! and calendar-aware bars (pipeline-prep).
//!
//! ```
//! use chrono::NaiveDate;
//! use pipeline_core::calendar::{Calendar, CalendarKind, epoch_day, nyse_early_closes, nyse_holidays};
//! let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
//! assert!(nyse_holidays(2021).contains(&d(2021, 7, 5))); // July 4 was a Sunday
//! assert!(nyse_early_closes(2024).contains(&d(2024, 11, 29))); // the day after Thanksgiving
//! let cal = Calendar::new(CalendarKind::Nyse, &[]);
//! assert!(!cal.is_trading_day(epoch_day(d(2024, 12, 25))));
//! assert!(cal.is_early_close(epoch_day(d(2024, 12, 24))));
//! ```

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Weekday};
use chrono_tz::Tz;

use crate::{Error, Result};

/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const CE_TO_EPOCH: i32 = 719_163;

/// Days since 1970-01-01 of a date.
pub fn epoch_day(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - CE_TO_EPOCH
}

/// The date of a day number (days since 1970-01-01).
pub fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + CE_TO_EPOCH).unwrap_or_default()
}

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

/// NYSE early closes (13:00 New York) of `year`, by rule, sorted: July 3 when it is a Monday
/// to Thursday (Independence Day on a Tuesday to Friday), the Friday after Thanksgiving, and
/// December 24 when it is a Monday to Thursday. One-off early closes are not included.
pub fn nyse_early_closes(year: i32) -> Vec<NaiveDate> {
    let fixed = |month: u32, day: u32| NaiveDate::from_ymd_opt(year, month, day);
    let weekday_before_holiday = |d: NaiveDate| {
        matches!(
            d.weekday(),
            Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
        )
    };
    let mut days = Vec::with_capacity(3);
    days.extend(fixed(7, 3).filter(|d| weekday_before_holiday(*d)));
    days.extend(nth_weekday(year, 11, Weekday::Thu, 4).map(|t| t + chrono::Days::new(1)));
    days.extend(fixed(12, 24).filter(|d| weekday_before_holiday(*d)));
    days
}

/// Which days the market is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    /// Weekdays except NYSE full-day holidays (by rule), with NYSE early closes.
    Nyse,
    /// Every weekday.
    Weekdays,
    /// No calendar: every day is a trading day.
    None,
}

impl CalendarKind {
    /// Parses `nyse`, `weekdays` or `none`; an error names the config `key`.
    pub fn parse_key(key: &str, s: &str) -> Result<Self> {
        match s {
            "nyse" => Ok(CalendarKind::Nyse),
            "weekdays" => Ok(CalendarKind::Weekdays),
            "none" => Ok(CalendarKind::None),
            other => Err(Error::config(
                key,
                format!("unknown calendar `{other}`; expected nyse, weekdays or none"),
            )),
        }
    }
}

/// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
fn weekday_of(day: i32) -> i32 {
    (day + 4).rem_euclid(7)
}

/// Which days are trading days, and which close early.
#[derive(Debug, Clone)]
pub struct Calendar {
    kind: CalendarKind,
    closed: HashSet<i32>,
    early: HashSet<i32>,
}

impl Calendar {
    /// A calendar of `kind` with `extra` closed dates.
    pub fn new(kind: CalendarKind, extra: &[NaiveDate]) -> Self {
        let mut closed: HashSet<i32> = extra.iter().map(|d| epoch_day(*d)).collect();
        let mut early = HashSet::new();
        if kind == CalendarKind::Nyse {
            // By rule for every year a tick file can plausibly hold; about 1,700 dates,
            // computed once.
            for y in 1970..=2100 {
                closed.extend(nyse_holidays(y).into_iter().map(epoch_day));
                early.extend(nyse_early_closes(y).into_iter().map(epoch_day));
            }
        }
        Calendar {
            kind,
            closed,
            early,
        }
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

    /// Whether `day` is an early close (NYSE: 13:00).
    pub fn is_early_close(&self, day: i32) -> bool {
        self.early.contains(&day)
    }

    /// Trading days in `[from, to]`.
    pub fn trading_days(&self, from: i32, to: i32) -> Vec<i32> {
        (from..=to).filter(|d| self.is_trading_day(*d)).collect()
    }
}

/// Nanoseconds per day and per hour.
const DAY_NS: i64 = 86_400_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;

/// A time zone's UTC offset cached over a span of time, for converting time-ordered UTC
/// timestamps to local time with one comparison per row.
///
/// The zone lookup (`offset_at`: UTC nanoseconds in, the offset in any unit out) is asked at
/// both ends of the UTC day around a timestamp; when they agree the whole day is cached, else
/// its hour, else nothing (a change inside the hour, as zones that move by 30 minutes off the
/// hour do). Exact unless a zone changed its offset twice within one day or one hour and
/// changed it back, which no zone does. Caching a day, not an hour, matters: a session spans
/// about seven hours, and two zone lookups an hour were a quarter of the validation stage's
/// row loop.
///
/// ```
/// use pipeline_core::calendar::OffsetCache;
/// let mut c = OffsetCache::default();
/// // A zone five hours behind UTC, as a closure.
/// let est = |_ts: i64| -5 * 3_600_000_000_000;
/// assert_eq!(c.offset(18 * 3_600_000_000_000, est), -5 * 3_600_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OffsetCache {
    /// `[start, end)` in UTC nanoseconds, and the offset throughout.
    span: Option<(i64, i64, i64)>,
}

impl OffsetCache {
    /// The offset at `ts` (UTC nanoseconds), asking `offset_at` only outside the cached span.
    #[inline]
    pub fn offset(&mut self, ts: i64, offset_at: impl Fn(i64) -> i64) -> i64 {
        if let Some((s, e, off)) = self.span
            && ts >= s
            && ts < e
        {
            return off;
        }
        self.fill(ts, offset_at)
    }

    #[inline(never)]
    fn fill(&mut self, ts: i64, offset_at: impl Fn(i64) -> i64) -> i64 {
        for len in [DAY_NS, HOUR_NS] {
            let start = ts.div_euclid(len).saturating_mul(len);
            let end = start.saturating_add(len);
            let off = offset_at(start);
            if offset_at(end - 1) == off {
                self.span = Some((start, end, off));
                return off;
            }
        }
        offset_at(ts)
    }
}

/// The UTC offset (local minus UTC) of zone `tz` at UTC nanosecond `ts`, in nanoseconds,
/// from the zone database (uncached: see [`ZoneOffsets`]).
pub fn utc_offset_ns(tz: Tz, ts: i64) -> i64 {
    let dt = DateTime::from_timestamp_nanos(ts);
    i64::from(
        tz.offset_from_utc_datetime(&dt.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1_000_000_000
}

/// A zone's UTC offsets at time-ordered UTC timestamps: [`utc_offset_ns`] through an
/// [`OffsetCache`]. The session filter, the time features and the validation clock convert
/// every row's time with it.
///
/// ```
/// use pipeline_core::calendar::ZoneOffsets;
/// let mut ny = ZoneOffsets::new(chrono_tz::America::New_York);
/// // 2021-01-04T14:30:00Z is 09:30 EST, five hours behind.
/// assert_eq!(ny.at(1_609_770_600_000_000_000), -5 * 3_600_000_000_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ZoneOffsets {
    tz: Tz,
    cache: OffsetCache,
}

impl ZoneOffsets {
    /// Offsets of zone `tz`, nothing cached yet.
    pub fn new(tz: Tz) -> Self {
        ZoneOffsets {
            tz,
            cache: OffsetCache::default(),
        }
    }

    /// The offset (local minus UTC) in nanoseconds at UTC nanosecond `ts`.
    #[inline]
    pub fn at(&mut self, ts: i64) -> i64 {
        let tz = self.tz;
        self.cache.offset(ts, |t| utc_offset_ns(tz, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_cache_is_the_zone_at_every_step() {
        const H: i64 = 3_600_000_000_000;
        // A zone +1h until 1000.25 hours, +1h30 after (a change off the hour), then +1h
        // again from 1030 hours (on the hour).
        let zone = |t: i64| {
            if !(1000 * H + H / 4..1030 * H).contains(&t) {
                H
            } else {
                H + H / 2
            }
        };
        let mut c = OffsetCache::default();
        let step = 7 * 60 * 1_000_000_000i64;
        for i in 0..(2000 * H / step) {
            let t = i * step - 17;
            assert_eq!(c.offset(t, zone), zone(t), "at {t}");
            // Jumping back refills the span.
            let back = t - 30 * H;
            assert_eq!(c.offset(back, zone), zone(back), "back at {back}");
        }
    }

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
    fn early_closes_match_the_published_ones() {
        // NYSE's published early closes (nyse.com, holidays and trading hours).
        assert_eq!(
            nyse_early_closes(2019),
            [d(2019, 7, 3), d(2019, 11, 29), d(2019, 12, 24)]
        );
        assert_eq!(nyse_early_closes(2020), [d(2020, 11, 27), d(2020, 12, 24)]);
        assert_eq!(nyse_early_closes(2021), [d(2021, 11, 26)]);
        assert_eq!(nyse_early_closes(2022), [d(2022, 11, 25)]);
        assert_eq!(nyse_early_closes(2023), [d(2023, 7, 3), d(2023, 11, 24)]);
        assert_eq!(
            nyse_early_closes(2024),
            [d(2024, 7, 3), d(2024, 11, 29), d(2024, 12, 24)]
        );
    }

    #[test]
    fn trading_days_skip_weekends_holidays_and_extra_dates() {
        let cal = Calendar::new(CalendarKind::Nyse, &[d(2021, 7, 6)]);
        let days = cal.trading_days(epoch_day(d(2021, 7, 1)), epoch_day(d(2021, 7, 8)));
        let got: Vec<NaiveDate> = days.into_iter().map(date_of).collect();
        assert_eq!(
            got,
            [d(2021, 7, 1), d(2021, 7, 2), d(2021, 7, 7), d(2021, 7, 8)]
        );
        let wk = Calendar::new(CalendarKind::Weekdays, &[]);
        assert!(wk.is_trading_day(epoch_day(d(2021, 7, 5))));
        assert!(!wk.is_trading_day(epoch_day(d(2021, 7, 4))));
        assert!(Calendar::new(CalendarKind::None, &[]).is_trading_day(epoch_day(d(2021, 7, 4))));
        assert!(CalendarKind::parse_key("k", "lse").is_err());
    }
}
