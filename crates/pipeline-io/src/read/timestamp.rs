//! Timestamp parsing into UTC nanoseconds.
//!
//! Forms: RFC 3339 / ISO 8601 (`T` or space, up to 9 fractional digits, `Z` or `±HH:MM`);
//! `YYYYMMDD HH:MM:SS[.f]`; HistData's `YYYYMMDD HHMMSSfff`; epoch integers in s/ms/us/ns;
//! a date column plus a time-of-day column; and time of day alone (decimal seconds or integer
//! milliseconds after midnight) with the date from the config or the file name.
//!
//! Naive timestamps are local times in a [`Zone`]. The UTC offset is cached per local date
//! (one `chrono-tz` lookup per day instead of per row); on a day with a DST change every row
//! is resolved on its own, so times on both sides of the change are right.

use chrono::{NaiveDate, NaiveDateTime, Offset, TimeZone};
use pipeline_core::{Error, Result};

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

/// A time zone for naive timestamps (serialised with an IANA zone by its name).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Zone {
    /// UTC.
    Utc,
    /// A fixed offset east of UTC, in seconds (e.g. HistData's EST = -18000).
    Fixed(i32),
    /// An IANA zone with DST rules.
    Named(#[serde(with = "tz_name")] chrono_tz::Tz),
}

/// An IANA zone through serialisation: its name.
mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| D::Error::custom(format!("unknown time zone `{name}`")))
    }
}

impl Zone {
    /// Parses `UTC`, an IANA name (`America/New_York`), or a fixed offset (`-05:00`, `UTC+2`).
    pub fn parse(s: &str) -> Result<Zone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.is_empty() {
            return Ok(Zone::Utc);
        }
        let off = t
            .strip_prefix("UTC")
            .or_else(|| t.strip_prefix("GMT"))
            .unwrap_or(t);
        if let Some(secs) = parse_offset(off.as_bytes()) {
            return Ok(Zone::Fixed(secs));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            Error::config(
                "input.timezone",
                format!("unknown time zone `{s}`; use an IANA name such as America/New_York or an offset such as -05:00"),
            )
        })
    }
}

/// Parses `+HH:MM`, `-HHMM` or `+HH` into seconds east of UTC.
fn parse_offset(b: &[u8]) -> Option<i32> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let d = &b[1..];
    let (h, m) = match d.len() {
        1 => (u32::from(digit(d[0])?), 0),
        2 => (num2(d, 0)?, 0),
        4 => (num2(d, 0)?, num2(d, 2)?),
        5 if d[2] == b':' => (num2(d, 0)?, num2(d, 3)?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

#[inline]
fn num2(b: &[u8], at: usize) -> Option<u32> {
    let a = b.get(at)?.wrapping_sub(b'0');
    let c = b.get(at + 1)?.wrapping_sub(b'0');
    (a < 10 && c < 10).then_some(u32::from(a) * 10 + u32::from(c))
}

#[inline]
fn num4(b: &[u8], at: usize) -> Option<u32> {
    Some(num2(b, at)? * 100 + num2(b, at + 2)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), or `None`
/// for an invalid date.
#[inline]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Converts local date-times to UTC, caching the offset of the last local date seen.
#[derive(Debug, Clone)]
pub struct ZoneCache {
    zone: Zone,
    /// The last local day looked up and its offset in ns (`None`: the day has a transition).
    last: Option<(i64, Option<i64>)>,
}

impl ZoneCache {
    /// A cache for `zone`.
    pub fn new(zone: Zone) -> Self {
        ZoneCache { zone, last: None }
    }

    /// UTC ns of the local time `day` (days since epoch) + `nanos` (since local midnight).
    ///
    /// A local time that does not exist (in the spring-forward gap) is read with the offset
    /// before the change; an ambiguous one (in the repeated autumn hour) as its first
    /// occurrence.
    ///
    /// `None` when the result does not fit `i64` nanoseconds (before 1677-09-21 or after
    /// 2262-04-11): every step is checked, so no input can wrap around.
    #[inline]
    pub fn local_to_utc(&mut self, day: i64, nanos: i64) -> Option<i64> {
        match self.zone {
            Zone::Utc => combine(day, nanos, 0),
            Zone::Fixed(s) => combine(day, nanos, i64::from(s) * NS),
            Zone::Named(tz) => {
                let off = match self.last {
                    Some((d, off)) if d == day => off,
                    _ => {
                        let off = day_offset(tz, day);
                        self.last = Some((day, off));
                        off
                    }
                };
                match off {
                    Some(o) => combine(day, nanos, o),
                    None => combine(day, nanos, instant_offset(tz, day, nanos)),
                }
            }
        }
    }
}

/// `day × DAY + nanos − minus` in nanoseconds, or `None` when it does not fit `i64`. The sum
/// is taken in `i128` because its parts may overflow where the total does not (the first
/// representable instant, 1677-09-21T00:12:43.145224192Z, is on a day that starts before it).
#[inline]
fn combine(day: i64, nanos: i64, minus: i64) -> Option<i64> {
    let v = i128::from(day) * i128::from(DAY_NS) + i128::from(nanos) - i128::from(minus);
    i64::try_from(v).ok()
}

fn naive(day: i64, nanos: i64) -> Option<NaiveDateTime> {
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::TimeDelta::try_days(day)?)?;
    let secs = nanos.div_euclid(NS);
    let ns = nanos.rem_euclid(NS);
    let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
        u32::try_from(secs.min(86_399)).ok()?,
        u32::try_from(ns).ok()?,
    )?;
    Some(date.and_time(time))
}

/// The offset (ns) valid for the whole local day, or `None` when it changes that day.
fn day_offset(tz: chrono_tz::Tz, day: i64) -> Option<i64> {
    let a = offset_of_local(tz, day, 0)?;
    let b = offset_of_local(tz, day, DAY_NS - 1)?;
    (a == b).then_some(a)
}

fn offset_of_local(tz: chrono_tz::Tz, day: i64, nanos: i64) -> Option<i64> {
    match tz.from_local_datetime(&naive(day, nanos)?) {
        chrono::LocalResult::Single(t) => Some(i64::from(t.offset().fix().local_minus_utc()) * NS),
        _ => None,
    }
}

fn instant_offset(tz: chrono_tz::Tz, day: i64, nanos: i64) -> i64 {
    let Some(n) = naive(day, nanos) else {
        return 0;
    };
    let secs = match tz.from_local_datetime(&n) {
        chrono::LocalResult::Single(t) => t.offset().fix().local_minus_utc(),
        chrono::LocalResult::Ambiguous(first, _) => first.offset().fix().local_minus_utc(),
        // In the gap: the offset in force before the change, i.e. the one at local midnight
        // (zones change at most once a day, and not at midnight in the zones we know).
        chrono::LocalResult::None => tz
            .offset_from_utc_datetime(&(n - chrono::TimeDelta::hours(12)))
            .fix()
            .local_minus_utc(),
    };
    i64::from(secs) * NS
}

/// Unit of epoch integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl EpochUnit {
    /// Parses `s`, `ms`, `us` or `ns`.
    pub fn parse(s: &str) -> Option<EpochUnit> {
        match s {
            "s" => Some(EpochUnit::S),
            "ms" => Some(EpochUnit::Ms),
            "us" => Some(EpochUnit::Us),
            "ns" => Some(EpochUnit::Ns),
            _ => None,
        }
    }

    /// The unit implied by a value's magnitude: seconds up to 10^11 (year 5138), then
    /// milliseconds, microseconds and nanoseconds by factors of 1000.
    pub fn from_magnitude(v: i64) -> EpochUnit {
        let a = v.unsigned_abs();
        if a < 100_000_000_000 {
            EpochUnit::S
        } else if a < 100_000_000_000_000 {
            EpochUnit::Ms
        } else if a < 100_000_000_000_000_000 {
            EpochUnit::Us
        } else {
            EpochUnit::Ns
        }
    }

    fn nanos(self) -> i64 {
        match self {
            EpochUnit::S => NS,
            EpochUnit::Ms => 1_000_000,
            EpochUnit::Us => 1_000,
            EpochUnit::Ns => 1,
        }
    }
}

/// A timestamp layout, detected from sample values or set by a vendor layout.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsFormat {
    /// `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z|±HH:MM]`, also a bare `YYYY-MM-DD`.
    Iso,
    /// `YYYYMMDD HH:MM:SS[.f…]`.
    CompactColon,
    /// `YYYYMMDD HHMMSSfff` (HistData).
    CompactDigits,
    /// Integer (or decimal, for seconds) time since the Unix epoch.
    Epoch(EpochUnit),
    /// Decimal seconds after local midnight of `day` (days since epoch).
    SecondsOfDay(i64),
    /// Integer milliseconds after local midnight of `day`.
    MillisOfDay(i64),
    /// A time of day `HH:MM:SS[.f…]` on local `day` (the date from the file name or
    /// `input.date`).
    TimeOfDay(i64),
}

/// Why a timestamp field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsError {
    /// The text does not have the column's format (or is not a valid date or time).
    Malformed,
    /// The text is a valid date and time, but outside what `i64` nanoseconds since 1970 can
    /// hold (1677-09-21 to 2262-04-11). `sentinel` is true for dates that are placeholders
    /// rather than times (9999-12-31, 0001-01-01, …).
    OutOfRange {
        /// The date is a well-known placeholder for "no date".
        sentinel: bool,
    },
}

impl TsError {
    /// What a valid field would have been, for quarantine details and strict-mode errors.
    pub fn expected(self) -> &'static str {
        match self {
            TsError::Malformed => "a timestamp",
            TsError::OutOfRange { sentinel: false } => RANGE_EXPECTED,
            TsError::OutOfRange { sentinel: true } => SENTINEL_EXPECTED,
        }
    }
}

/// The representable range, as [`TsError::expected`] says it.
const RANGE_EXPECTED: &str =
    "a time between 1677-09-21 and 2262-04-11 (the range of nanosecond timestamps)";
/// The same for a placeholder date.
const SENTINEL_EXPECTED: &str = "a real time, not a placeholder date such as 9999-12-31 or \
     0001-01-01 (nanosecond timestamps span 1677-09-21 to 2262-04-11)";

/// Whether a date is one of the placeholders systems write for "no date" or "never": the
/// first and last days of the 4-digit calendar (0000/0001, 9999) and 2999-12-31/3000-01-01.
/// All of them lie outside the nanosecond range, so they are only named, never accepted.
fn is_sentinel(y: i64, m: u32, d: u32) -> bool {
    y <= 1 || y >= 9999 || (y, m, d) == (2999, 12, 31) || (y, m, d) == (3000, 1, 1)
}

/// The out-of-range error for a civil date `(y, m, d)`.
fn range_error(y: i64, m: u32, d: u32) -> TsError {
    TsError::OutOfRange {
        sentinel: is_sentinel(y, m, d),
    }
}

/// The out-of-range error for `days` since 1970-01-01.
fn range_error_days(days: i128) -> TsError {
    match i64::try_from(days) {
        Ok(d) => {
            let (y, m, dd) = civil_from_days(d);
            range_error(y, m, dd)
        }
        Err(_) => TsError::OutOfRange { sentinel: false },
    }
}

/// The out-of-range error for a time `days` days after 1970-01-01 (for readers that rescale
/// integers themselves).
pub(crate) fn out_of_range_at(days: i128) -> TsError {
    range_error_days(days)
}

/// The civil date of `days` since 1970-01-01 (H. Hinnant's inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era.saturating_mul(400) + i64::from(m <= 2);
    (y, m, d)
}

/// Parses timestamps of one column into UTC nanoseconds.
///
/// Every form's arithmetic is checked: a value outside the `i64` nanosecond range is
/// [`TsError::OutOfRange`], never a wrapped-around time (and never a panic in debug builds).
#[derive(Debug, Clone)]
pub struct TsParser {
    format: TsFormat,
    zone: ZoneCache,
    last_date: Option<([u8; 10], i64)>,
}

impl TsParser {
    /// A parser for `format`, reading naive times in `zone`.
    pub fn new(format: TsFormat, zone: Zone) -> Self {
        TsParser {
            format,
            zone: ZoneCache::new(zone),
            last_date: None,
        }
    }

    /// The format.
    pub fn format(&self) -> TsFormat {
        self.format
    }

    /// Parses one field; `None` when it does not have the format or is out of range (see
    /// [`TsParser::parse_checked`] for which).
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        self.parse_checked(b).ok()
    }

    /// Parses one field into UTC nanoseconds, telling a malformed field from one out of the
    /// representable range.
    #[inline]
    pub fn parse_checked(&mut self, b: &[u8]) -> Result<i64, TsError> {
        use TsError::Malformed;
        match self.format {
            TsFormat::Iso => self.parse_iso(b),
            TsFormat::CompactColon => {
                let day = compact_date(b).ok_or(Malformed)?;
                if b.get(8) != Some(&b' ') {
                    return Err(Malformed);
                }
                let (nanos, rest) = time_colon(&b[9..]).ok_or(Malformed)?;
                if !rest.is_empty() {
                    return Err(Malformed);
                }
                self.zone
                    .local_to_utc(day, nanos)
                    .ok_or_else(|| compact_range_error(b))
            }
            TsFormat::CompactDigits => {
                let day = compact_date(b).ok_or(Malformed)?;
                if b.len() != 18 || b[8] != b' ' {
                    return Err(Malformed);
                }
                let field = |at| num2(b, at).ok_or(Malformed);
                let (h, m, s) = (field(9)?, field(11)?, field(13)?);
                let ms = field(15)? * 10 + u32::from(digit(b[17]).ok_or(Malformed)?);
                if h > 23 || m > 59 || s > 60 {
                    return Err(Malformed);
                }
                let nanos = i64::from(h * 3600 + m * 60 + s) * NS + i64::from(ms) * 1_000_000;
                self.zone
                    .local_to_utc(day, nanos)
                    .ok_or_else(|| compact_range_error(b))
            }
            TsFormat::Epoch(unit) => {
                let per = unit.nanos();
                if let Some(v) = super::number::parse_i64(b) {
                    return v.checked_mul(per).ok_or_else(|| {
                        range_error_days(i128::from(v) * i128::from(per) / i128::from(DAY_NS))
                    });
                }
                // Decimal epoch seconds (`1582329602.111`); the fraction is below one unit,
                // so `frac * per / NS` stays below `per` and cannot overflow.
                let (int, frac) = split_decimal(b).ok_or(Malformed)?;
                int.checked_mul(per)
                    .and_then(|v| v.checked_add(frac * per / NS))
                    .ok_or_else(|| {
                        range_error_days(i128::from(int) * i128::from(per) / i128::from(DAY_NS))
                    })
            }
            TsFormat::SecondsOfDay(day) => {
                let (int, frac) = split_decimal(b).ok_or(Malformed)?;
                int.checked_mul(NS)
                    .and_then(|n| n.checked_add(frac))
                    .and_then(|n| self.zone.local_to_utc(day, n))
                    .ok_or(TsError::OutOfRange { sentinel: false })
            }
            TsFormat::MillisOfDay(day) => {
                let ms = super::number::parse_i64(b).ok_or(Malformed)?;
                ms.checked_mul(1_000_000)
                    .and_then(|n| self.zone.local_to_utc(day, n))
                    .ok_or(TsError::OutOfRange { sentinel: false })
            }
            TsFormat::TimeOfDay(day) => match time_colon(b) {
                Some((nanos, [])) => self
                    .zone
                    .local_to_utc(day, nanos)
                    .ok_or(TsError::OutOfRange { sentinel: false }),
                _ => Err(Malformed),
            },
        }
    }

    /// Parses a date field plus a time-of-day field (`HH:MM:SS[.f]`, or decimal seconds).
    pub fn parse_date_time(&mut self, date: &[u8], time: &[u8]) -> Option<i64> {
        self.parse_date_time_checked(date, time).ok()
    }

    /// [`TsParser::parse_date_time`], telling a malformed field from one out of range.
    pub fn parse_date_time_checked(&mut self, date: &[u8], time: &[u8]) -> Result<i64, TsError> {
        let day = parse_date(date).ok_or(TsError::Malformed)?;
        let nanos = match time_colon(time) {
            Some((n, [])) => n,
            _ => {
                let (int, frac) = split_decimal(time).ok_or(TsError::Malformed)?;
                int.checked_mul(NS)
                    .and_then(|n| n.checked_add(frac))
                    .ok_or(TsError::OutOfRange { sentinel: false })?
            }
        };
        self.zone
            .local_to_utc(day, nanos)
            .ok_or_else(|| range_error_days(i128::from(day)))
    }

    /// The day of a date prefix, remembering the last one: rows of one file mostly share a
    /// date, and the calendar arithmetic showed up in profiles.
    #[inline]
    fn day_of(&mut self, prefix: &[u8], compute: impl FnOnce(&[u8]) -> Option<i64>) -> Option<i64> {
        if let Some((p, d)) = &self.last_date
            && p.as_slice() == prefix
        {
            return Some(*d);
        }
        let d = compute(prefix)?;
        let mut key = [0u8; 10];
        key[..prefix.len()].copy_from_slice(prefix);
        self.last_date = Some((key, d));
        Some(d)
    }

    #[inline]
    fn parse_iso(&mut self, b: &[u8]) -> Result<i64, TsError> {
        use TsError::Malformed;
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(Malformed);
        }
        let day = self
            .day_of(&b[..10], |d| {
                days_from_civil(i64::from(num4(d, 0)?), num2(d, 5)?, num2(d, 8)?)
            })
            .ok_or(Malformed)?;
        let out_of_range = || range_error_days(i128::from(day));
        if b.len() == 10 {
            return self.zone.local_to_utc(day, 0).ok_or_else(out_of_range);
        }
        if b[10] != b'T' && b[10] != b' ' && b[10] != b't' {
            return Err(Malformed);
        }
        let (nanos, rest) = time_colon(&b[11..]).ok_or(Malformed)?;
        match rest {
            [] => self.zone.local_to_utc(day, nanos).ok_or_else(out_of_range),
            [b'Z' | b'z'] => combine(day, nanos, 0).ok_or_else(out_of_range),
            _ => {
                let off = parse_offset(rest).ok_or(Malformed)?;
                combine(day, nanos, i64::from(off) * NS).ok_or_else(out_of_range)
            }
        }
    }
}

/// The out-of-range error of a compact (`YYYYMMDD …`) field whose date parsed.
fn compact_range_error(b: &[u8]) -> TsError {
    match (num4(b, 0), num2(b, 4), num2(b, 6)) {
        (Some(y), Some(m), Some(d)) => range_error(i64::from(y), m, d),
        _ => TsError::OutOfRange { sentinel: false },
    }
}

#[inline]
fn digit(c: u8) -> Option<u8> {
    let d = c.wrapping_sub(b'0');
    (d < 10).then_some(d)
}

/// `YYYYMMDD` at the start of `b`.
#[inline]
fn compact_date(b: &[u8]) -> Option<i64> {
    days_from_civil(i64::from(num4(b, 0)?), num2(b, 4)?, num2(b, 6)?)
}

/// A date: `YYYY-MM-DD`, `YYYYMMDD` or `YYYY/MM/DD`.
pub fn parse_date(b: &[u8]) -> Option<i64> {
    match b.len() {
        8 => compact_date(b),
        10 if (b[4] == b'-' && b[7] == b'-') || (b[4] == b'/' && b[7] == b'/') => {
            days_from_civil(i64::from(num4(b, 0)?), num2(b, 5)?, num2(b, 8)?)
        }
        _ => None,
    }
}

/// `HH:MM:SS[.f…]` at the start of `b` (also `H:MM:SS`, as WRDS TAQ exports write
/// `TIME_M`): nanoseconds since midnight and the rest of `b`.
#[inline]
fn time_colon(b: &[u8]) -> Option<(i64, &[u8])> {
    if b.len() >= 7 && b[1] == b':' {
        let mut padded = [b'0'; 40];
        let n = b.len().min(39);
        padded[1..=n].copy_from_slice(&b[..n]);
        let (nanos, rest) = time_colon(&padded[..=n])?;
        let used = n + 1 - rest.len();
        return Some((nanos, &b[used - 1..]));
    }
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (num2(b, 0)?, num2(b, 3)?, num2(b, 6)?);
    if h > 24 || m > 59 || s > 60 {
        return None;
    }
    let mut nanos = i64::from(h * 3600 + m * 60 + s) * NS;
    let mut rest = &b[8..];
    if let [b'.' | b',', tail @ ..] = rest {
        // Eight digits at once when there are (microsecond and nanosecond stamps), then one
        // pass over the rest: digits past the ninth are dropped.
        let (mut v, mut n) = match eight_digits(tail) {
            Some(v8) => (i64::from(v8), 8),
            None => (0, 0),
        };
        while n < tail.len() {
            let d = tail[n].wrapping_sub(b'0');
            if d >= 10 {
                break;
            }
            if n < 9 {
                v = v * 10 + i64::from(d);
            }
            n += 1;
        }
        if n == 0 {
            return None;
        }
        if n < 9 {
            v *= 10i64.pow(9 - n as u32);
        }
        nanos += v;
        rest = &tail[n..];
    }
    Some((nanos, rest))
}

/// The value of the first eight bytes of `b` when all eight are ASCII digits.
#[inline(always)]
fn eight_digits(b: &[u8]) -> Option<u32> {
    let w = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    u32::try_from(super::number::digits8(w)?).ok()
}

/// Fractional-second digits to nanoseconds (digits beyond the ninth are dropped).
#[inline]
fn frac_nanos(d: &[u8]) -> i64 {
    let mut v: i64 = 0;
    for i in 0..9 {
        v = v * 10 + d.get(i).map_or(0, |c| i64::from(c - b'0'));
    }
    v
}

/// A non-negative decimal `int[.frac]` as (integer part, fraction in ns).
fn split_decimal(b: &[u8]) -> Option<(i64, i64)> {
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    if int.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let i = super::number::parse_i64(int)?;
    if i < 0 {
        return None;
    }
    Some((i, frac_nanos(frac)))
}

/// Finds a date in a file name: `YYYY-MM-DD` or `YYYYMMDD` (years 1900–2199), as days since
/// the epoch.
pub fn date_from_file_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    let plausible = |y: u32| (1900..2200).contains(&y);
    for i in 0..b.len() {
        let before_ok = i == 0 || !b[i - 1].is_ascii_digit();
        if !before_ok {
            continue;
        }
        if i + 10 <= b.len()
            && b[i + 4] == b'-'
            && b[i + 7] == b'-'
            && b.get(i + 10).is_none_or(|c| !c.is_ascii_digit())
            && let Some(y) = num4(b, i)
            && plausible(y)
            && let Some(d) = days_from_civil(i64::from(y), num2(b, i + 5)?, num2(b, i + 8)?)
        {
            return Some(d);
        }
        if i + 8 <= b.len()
            && b[i..i + 8].iter().all(u8::is_ascii_digit)
            && b.get(i + 8).is_none_or(|c| !c.is_ascii_digit())
            && let Some(y) = num4(b, i)
            && plausible(y)
            && let Some(d) = compact_date(&b[i..])
        {
            return Some(d);
        }
    }
    None
}

/// Detects the format of a timestamp column from sample values.
///
/// `date` is the day for time-of-day-only columns (from the config or the file name); without
/// it such columns are read as epoch values. `unit` forces the epoch unit.
pub fn detect_format(
    samples: &[&[u8]],
    date: Option<i64>,
    unit: Option<EpochUnit>,
) -> Option<TsFormat> {
    let samples: Vec<&[u8]> = samples.iter().copied().filter(|s| !s.is_empty()).collect();
    let first = *samples.first()?;
    let mut candidates = vec![
        TsFormat::Iso,
        TsFormat::CompactColon,
        TsFormat::CompactDigits,
    ];
    let all_int = samples
        .iter()
        .all(|s| super::number::parse_i64(s).is_some());
    let all_dec = samples.iter().all(|s| split_decimal(s).is_some());
    let first = if all_int || all_dec {
        first
    } else {
        samples
            .iter()
            .copied()
            .find(|s| super::number::parse_i64(s).is_some())
            .unwrap_or(first)
    };
    if let Some(u) = unit {
        candidates.push(TsFormat::Epoch(u));
    }
    if let Some(day) = date {
        if all_int
            && samples
                .iter()
                .all(|s| super::number::parse_i64(s).is_some_and(|v| (0..=86_400_000).contains(&v)))
            && !first.contains(&b'.')
        {
            // Integers below one day in ms: milliseconds after midnight (LEAN).
            candidates.push(TsFormat::MillisOfDay(day));
        }
        if all_dec
            && samples
                .iter()
                .all(|s| split_decimal(s).is_some_and(|(i, _)| i <= 86_400))
        {
            candidates.push(TsFormat::SecondsOfDay(day));
        }
        candidates.push(TsFormat::TimeOfDay(day));
    }
    if unit.is_none() {
        if all_int {
            let v = super::number::parse_i64(first)?;
            candidates.push(TsFormat::Epoch(EpochUnit::from_magnitude(v)));
        } else if all_dec {
            candidates.push(TsFormat::Epoch(EpochUnit::S));
        }
    }
    // The format that reads the most samples wins (ties: the order above); a few malformed
    // values must not hide the format, so half the samples are enough.
    best_of(&candidates, &samples)
        .filter(|(n, _)| n * 2 >= samples.len())
        .map(|(_, f)| f)
}

/// The candidate that reads the most samples, with that count (ties: the earlier one);
/// `None` when none reads any.
fn best_of(candidates: &[TsFormat], samples: &[&[u8]]) -> Option<(usize, TsFormat)> {
    let mut best: Option<(usize, TsFormat)> = None;
    for &f in candidates {
        let mut p = TsParser::new(f, Zone::Utc);
        let n = samples.iter().filter(|s| p.parse(s).is_some()).count();
        if n > best.map_or(0, |b| b.0) {
            best = Some((n, f));
        }
        if n == samples.len() {
            // No later candidate can read more, and ties go to the earlier one: after an
            // ISO test that read every sample, three more read none, a sixth of a plan's
            // cost on a file of a few hundred rows.
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    proptest! {
        /// Stopping at a candidate that reads every sample picks what trying them all
        /// picks: the most samples read, ties to the earlier candidate.
        #[test]
        fn the_first_format_reading_every_sample_is_the_one_a_full_scan_picks(
            order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
            take in 1..7usize,
            picks in proptest::collection::vec(0..8usize, 0..12),
        ) {
            let all = [
                TsFormat::Iso,
                TsFormat::CompactColon,
                TsFormat::CompactDigits,
                TsFormat::Epoch(EpochUnit::Ms),
                TsFormat::MillisOfDay(18_000),
                TsFormat::SecondsOfDay(18_000),
                TsFormat::TimeOfDay(18_000),
            ];
            let pool: [&[u8]; 8] = [
                b"2021-01-04T14:30:00.000123456Z",
                b"2021-01-04 14:30:00",
                b"20200101 170000065",
                b"20200101 17:00:00.065",
                b"1582329602111",
                b"34200.0042",
                b"09:30:00.5",
                b"garbage",
            ];
            let candidates: Vec<TsFormat> = order[..take].iter().map(|&i| all[i]).collect();
            let samples: Vec<&[u8]> = picks.iter().map(|&i| pool[i]).collect();
            let mut full: Option<(usize, TsFormat)> = None;
            for &f in &candidates {
                let mut p = TsParser::new(f, Zone::Utc);
                let n = samples.iter().filter(|s| p.parse(s).is_some()).count();
                if n > full.map_or(0, |b| b.0) {
                    full = Some((n, f));
                }
            }
            prop_assert_eq!(best_of(&candidates, &samples), full);
        }
    }

    #[test]
    fn every_form() {
        let mut p = TsParser::new(TsFormat::Iso, Zone::Utc);
        let want = utc("2021-01-04T14:30:00.000123456Z");
        assert_eq!(p.parse(b"2021-01-04T14:30:00.000123456Z"), Some(want));
        assert_eq!(p.parse(b"2021-01-04 14:30:00.000123456"), Some(want));
        assert_eq!(p.parse(b"2021-01-04T09:30:00.000123456-05:00"), Some(want));
        assert_eq!(p.parse(b"2021-01-04T15:30:00.000123456+0100"), Some(want));
        assert_eq!(
            p.parse(b"2021-01-04T14:30:00.5Z"),
            Some(utc("2021-01-04T14:30:00.5Z"))
        );
        assert_eq!(p.parse(b"2021-01-04"), Some(utc("2021-01-04T00:00:00Z")));
        assert_eq!(p.parse(b"2021-02-30T00:00:00Z"), None);
        assert_eq!(p.parse(b"2021-01-04T14:30:00Q"), None);
        assert_eq!(p.parse(b"garbage"), None);

        let mut c = TsParser::new(TsFormat::CompactColon, Zone::Utc);
        assert_eq!(
            c.parse(b"20210104 14:30:00.123"),
            Some(utc("2021-01-04T14:30:00.123Z"))
        );
        let mut h = TsParser::new(TsFormat::CompactDigits, Zone::Fixed(-5 * 3600));
        assert_eq!(
            h.parse(b"20200101 170000065"),
            Some(utc("2020-01-01T22:00:00.065Z"))
        );

        for (v, unit) in [
            ("1582329602", EpochUnit::S),
            ("1582329602111", EpochUnit::Ms),
            ("1582329602111000", EpochUnit::Us),
            ("1582329602111000000", EpochUnit::Ns),
        ] {
            assert_eq!(EpochUnit::from_magnitude(v.parse().unwrap()), unit);
            let mut e = TsParser::new(TsFormat::Epoch(unit), Zone::Utc);
            let t = e.parse(v.as_bytes()).unwrap();
            assert_eq!(t / NS, 1_582_329_602);
        }
        let mut e = TsParser::new(TsFormat::Epoch(EpochUnit::S), Zone::Utc);
        assert_eq!(e.parse(b"1582329602.111"), Some(1_582_329_602_111_000_000));

        let day = date_from_file_name("AAPL_2012-06-21_34200000_57600000_message_1.csv").unwrap();
        let ny = Zone::parse("America/New_York").unwrap();
        let mut l = TsParser::new(TsFormat::SecondsOfDay(day), ny);
        assert_eq!(
            l.parse(b"34200.004241176"),
            Some(utc("2012-06-21T13:30:00.004241176Z"))
        );
        let day = date_from_file_name("20140508_eurusd_tick_quote.csv").unwrap();
        let mut m = TsParser::new(TsFormat::MillisOfDay(day), Zone::Utc);
        assert_eq!(m.parse(b"8715"), Some(utc("2014-05-08T00:00:08.715Z")));

        let mut d = TsParser::new(TsFormat::Iso, ny);
        assert_eq!(
            d.parse_date_time(b"2021-01-04", b"09:30:00.000123456"),
            Some(want)
        );
        assert_eq!(
            d.parse_date_time(b"20210104", b"34200.000123456"),
            Some(want)
        );
    }

    #[test]
    fn dst_new_york() {
        let ny = Zone::parse("America/New_York").unwrap();
        let mut p = TsParser::new(TsFormat::Iso, ny);
        let cases = [
            // Spring forward on 2021-03-14 at 02:00 EST -> 03:00 EDT.
            ("2021-03-13 12:00:00", "2021-03-13T17:00:00Z"),
            ("2021-03-14 01:59:59", "2021-03-14T06:59:59Z"),
            ("2021-03-14 03:00:00", "2021-03-14T07:00:00Z"),
            // In the gap: read with the offset before the change (EST).
            ("2021-03-14 02:30:00", "2021-03-14T07:30:00Z"),
            ("2021-03-14 12:00:00", "2021-03-14T16:00:00Z"),
            ("2021-03-15 09:30:00", "2021-03-15T13:30:00Z"),
            // Fall back on 2021-11-07 at 02:00 EDT -> 01:00 EST; 01:30 is ambiguous: first.
            ("2021-11-06 09:30:00", "2021-11-06T13:30:00Z"),
            ("2021-11-07 00:30:00", "2021-11-07T04:30:00Z"),
            ("2021-11-07 01:30:00", "2021-11-07T05:30:00Z"),
            ("2021-11-07 02:30:00", "2021-11-07T07:30:00Z"),
            ("2021-11-07 12:00:00", "2021-11-07T17:00:00Z"),
            ("2021-11-08 09:30:00", "2021-11-08T14:30:00Z"),
        ];
        for (local, want) in cases {
            assert_eq!(p.parse(local.as_bytes()), Some(utc(want)), "{local}");
        }
        // The cache must not leak across days in either direction.
        for (local, want) in cases.iter().rev() {
            assert_eq!(p.parse(local.as_bytes()), Some(utc(want)), "{local}");
        }
    }

    #[test]
    fn zones_and_detection() {
        assert_eq!(Zone::parse("-05:00").unwrap(), Zone::Fixed(-18000));
        assert_eq!(Zone::parse("UTC+2").unwrap(), Zone::Fixed(7200));
        assert!(Zone::parse("Mars/Olympus").is_err());
        let d = Some(15_000);
        assert_eq!(
            detect_format(&[b"2021-01-04T14:30:00Z"], None, None),
            Some(TsFormat::Iso)
        );
        assert_eq!(
            detect_format(&[b"20200101 170000065"], None, None),
            Some(TsFormat::CompactDigits)
        );
        assert_eq!(
            detect_format(&[b"20200101 17:00:00.065"], None, None),
            Some(TsFormat::CompactColon)
        );
        assert_eq!(
            detect_format(&[b"8715", b"15681"], d, None),
            Some(TsFormat::MillisOfDay(15_000))
        );
        assert_eq!(
            detect_format(&[b"34200.0042", b"34200.5"], d, None),
            Some(TsFormat::SecondsOfDay(15_000))
        );
        assert_eq!(
            detect_format(&[b"1582329602111000"], None, None),
            Some(TsFormat::Epoch(EpochUnit::Us))
        );
        assert_eq!(
            detect_format(&[b"1582329602"], None, Some(EpochUnit::Ms)),
            Some(TsFormat::Epoch(EpochUnit::Ms))
        );
        assert_eq!(detect_format(&[b"hello"], None, None), None);
        assert_eq!(
            date_from_file_name("x_2012-06-21_y"),
            days_from_civil(2012, 6, 21)
        );
        assert_eq!(date_from_file_name("quote_tick_data.csv"), None);
    }

    /// The parts of UTC nanoseconds `t`: date, time of day, nanoseconds.
    fn parts(t: i64) -> ((i64, u32, u32), (i64, i64, i64), i64) {
        let day = t.div_euclid(DAY_NS);
        let rem = t.rem_euclid(DAY_NS);
        let secs = rem / NS;
        (
            civil_from_days(day),
            (secs / 3600, secs / 60 % 60, secs % 60),
            rem % NS,
        )
    }

    /// The reference: `days·DAY + nanos − offset` in i128, `Ok` when it fits i64.
    fn reference(days: i64, nanos: i64, offset_s: i64) -> std::result::Result<i64, ()> {
        let v = i128::from(days) * i128::from(DAY_NS) + i128::from(nanos)
            - i128::from(offset_s) * i128::from(NS);
        i64::try_from(v).map_err(|_| ())
    }

    #[test]
    fn out_of_range_times_are_errors_not_wrapped() {
        let mut p = TsParser::new(TsFormat::Iso, Zone::Utc);
        let cases: [(&[u8], bool); 6] = [
            (b"1600-01-01T00:00:00Z", false),
            (b"2300-01-01", false),
            (b"9999-12-31T23:59:59Z", true),
            (b"0001-01-01 00:00:00", true),
            (b"1677-09-21T00:12:43.145224191Z", false),
            (b"2262-04-11T23:47:16.854775808Z", false),
        ];
        for (text, sentinel) in cases {
            assert_eq!(
                p.parse_checked(text),
                Err(TsError::OutOfRange { sentinel }),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // The first and last representable instants still parse.
        assert_eq!(
            p.parse_checked(b"1677-09-21T00:12:43.145224192Z"),
            Ok(i64::MIN)
        );
        assert_eq!(
            p.parse_checked(b"2262-04-11T23:47:16.854775807Z"),
            Ok(i64::MAX)
        );
        let ny = Zone::parse("America/New_York").unwrap();
        let mut z = TsParser::new(TsFormat::Iso, ny);
        assert!(matches!(
            z.parse_checked(b"2300-01-01 09:30:00"),
            Err(TsError::OutOfRange { .. })
        ));
        let mut c = TsParser::new(TsFormat::CompactColon, Zone::Utc);
        assert_eq!(
            c.parse_checked(b"99991231 00:00:00"),
            Err(TsError::OutOfRange { sentinel: true })
        );
        let mut e = TsParser::new(TsFormat::Epoch(EpochUnit::S), Zone::Utc);
        // 9999-12-31 in epoch seconds.
        assert_eq!(
            e.parse_checked(b"253402214400"),
            Err(TsError::OutOfRange { sentinel: true })
        );
        assert_eq!(e.parse_checked(b"x"), Err(TsError::Malformed));
        let mut d = TsParser::new(TsFormat::Iso, Zone::Utc);
        assert_eq!(
            d.parse_date_time_checked(b"9999-12-31", b"12:00:00"),
            Err(TsError::OutOfRange { sentinel: true })
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            civil_from_days(days_from_civil(9999, 12, 31).unwrap()),
            (9999, 12, 31)
        );
    }

    proptest! {
        /// Any instant of the whole i64 range, written in each form, reads back exactly (to
        /// the form's precision).
        #[test]
        fn every_form_round_trips_the_whole_i64_range(t: i64) {
            let ((y, mo, d), (h, mi, s), ns) = parts(t);
            let day = t.div_euclid(DAY_NS);
            let mut iso = TsParser::new(TsFormat::Iso, Zone::Utc);
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ns:09}Z");
            prop_assert_eq!(iso.parse_checked(text.as_bytes()), Ok(t), "{}", text);
            let naive = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ns:09}");
            prop_assert_eq!(iso.parse_checked(naive.as_bytes()), Ok(t), "{}", naive);
            let mut cc = TsParser::new(TsFormat::CompactColon, Zone::Utc);
            let text = format!("{y:04}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}.{ns:09}");
            prop_assert_eq!(cc.parse_checked(text.as_bytes()), Ok(t), "{}", text);
            let mut cd = TsParser::new(TsFormat::CompactDigits, Zone::Utc);
            let text = format!("{y:04}{mo:02}{d:02} {h:02}{mi:02}{s:02}{:03}", ns / 1_000_000);
            let ms = t - ns % 1_000_000;
            prop_assert_eq!(cd.parse_checked(text.as_bytes()), Ok(ms), "{}", text);
            for unit in [EpochUnit::S, EpochUnit::Ms, EpochUnit::Us, EpochUnit::Ns] {
                let per = unit.nanos();
                let mut e = TsParser::new(TsFormat::Epoch(unit), Zone::Utc);
                let v = t.div_euclid(per);
                prop_assert_eq!(e.parse_checked(v.to_string().as_bytes()), Ok(v * per));
            }
            let rem = t.rem_euclid(DAY_NS);
            let mut sod = TsParser::new(TsFormat::SecondsOfDay(day), Zone::Utc);
            let text = format!("{}.{:09}", rem / NS, rem % NS);
            prop_assert_eq!(sod.parse_checked(text.as_bytes()), Ok(t), "{}", text);
            let mut mod_ = TsParser::new(TsFormat::MillisOfDay(day), Zone::Utc);
            let text = (rem / 1_000_000).to_string();
            prop_assert_eq!(mod_.parse_checked(text.as_bytes()), Ok(t - rem % 1_000_000));
            let mut dt = TsParser::new(TsFormat::Iso, Zone::Utc);
            let date = format!("{y:04}-{mo:02}-{d:02}");
            let time = format!("{h:02}:{mi:02}:{s:02}.{ns:09}");
            prop_assert_eq!(dt.parse_date_time_checked(date.as_bytes(), time.as_bytes()), Ok(t));
        }

        /// Every 4-digit date and time, with any offset or zone, parses to the i128 reference
        /// when that fits i64 and is `OutOfRange` otherwise: nothing wraps, nothing panics.
        #[test]
        fn dates_of_every_year_are_checked(
            y in 0i64..=9999, mo in 1u32..=12, d in 1u32..=28, h in 0i64..24, mi in 0i64..60,
            s in 0i64..60, ns in 0i64..1_000_000_000, off_min in -720i64..=840, form in 0u8..6,
        ) {
            let days = days_from_civil(y, mo, d).unwrap();
            let nanos = (h * 3600 + mi * 60 + s) * NS + ns;
            let (text, zone, off) = match form {
                0 => (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ns:09}Z"), Zone::Utc, 0),
                1 => {
                    let sign = if off_min < 0 { '-' } else { '+' };
                    let a = off_min.abs();
                    (format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ns:09}{sign}{:02}:{:02}", a / 60, a % 60), Zone::Utc, off_min * 60)
                }
                2 => (format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ns:09}"), Zone::Fixed((off_min * 60) as i32), off_min * 60),
                3 => (format!("{y:04}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}.{ns:09}"), Zone::Fixed((off_min * 60) as i32), off_min * 60),
                4 => (format!("{y:04}{mo:02}{d:02} {h:02}{mi:02}{s:02}{:03}", ns / 1_000_000), Zone::Utc, 0),
                _ => (format!("{y:04}-{mo:02}-{d:02}"), Zone::Utc, 0),
            };
            let nanos = match form {
                4 => nanos - ns % 1_000_000,
                5 => 0,
                _ => nanos,
            };
            let format = match form {
                3 => TsFormat::CompactColon,
                4 => TsFormat::CompactDigits,
                _ => TsFormat::Iso,
            };
            let mut p = TsParser::new(format, zone);
            let got = p.parse_checked(text.as_bytes());
            match reference(days, nanos, off) {
                Ok(v) => prop_assert_eq!(got, Ok(v), "{}", text),
                Err(()) => prop_assert!(matches!(got, Err(TsError::OutOfRange { .. })), "{} -> {:?}", text, got),
            }
            if y == 9999 || y <= 1 {
                prop_assert!(got.is_err());
                prop_assert_eq!(got, Err(TsError::OutOfRange { sentinel: true }));
            }
        }

        /// Epoch integers of any i64 value in any unit, and time-of-day values of any size.
        #[test]
        fn epoch_and_time_of_day_values_of_any_size(v: i64, unit in 0usize..4, day in -200_000i64..200_000) {
            let unit = [EpochUnit::S, EpochUnit::Ms, EpochUnit::Us, EpochUnit::Ns][unit];
            let mut e = TsParser::new(TsFormat::Epoch(unit), Zone::Utc);
            let got = e.parse_checked(v.to_string().as_bytes());
            match v.checked_mul(unit.nanos()) {
                Some(want) => prop_assert_eq!(got, Ok(want)),
                None => prop_assert!(matches!(got, Err(TsError::OutOfRange { .. })), "{:?}", got),
            }
            let a = v.unsigned_abs() as i64 / 2;
            let mut m = TsParser::new(TsFormat::MillisOfDay(day), Zone::Utc);
            let got = m.parse_checked(a.to_string().as_bytes());
            let want = a.checked_mul(1_000_000).map(|n| reference(day, n, 0));
            match want {
                Some(Ok(w)) => prop_assert_eq!(got, Ok(w)),
                _ => prop_assert!(matches!(got, Err(TsError::OutOfRange { .. })), "{:?}", got),
            }
            let mut sd = TsParser::new(TsFormat::SecondsOfDay(day), Zone::Utc);
            let got = sd.parse_checked(format!("{a}.5").as_bytes());
            let want = a.checked_mul(NS).and_then(|n| n.checked_add(NS / 2)).map(|n| reference(day, n, 0));
            match want {
                Some(Ok(w)) => prop_assert_eq!(got, Ok(w)),
                _ => prop_assert!(matches!(got, Err(TsError::OutOfRange { .. })), "{:?}", got),
            }
        }

        #[test]
        fn iso_matches_chrono(secs in -2_000_000_000i64..4_000_000_000, ns in 0u32..1_000_000_000, digits in 0usize..10, off_min in -720i32..840, zulu: bool) {
            let dt = chrono::DateTime::from_timestamp(secs, ns).unwrap();
            let frac = format!("{ns:09}");
            let truncated: i64 = if digits == 0 { 0 } else { frac[..digits].parse::<i64>().unwrap() * 10i64.pow(9 - digits as u32) };
            let want = secs * NS + truncated;
            let frac_txt = if digits == 0 { String::new() } else { format!(".{}", &frac[..digits]) };
            let text = if zulu {
                format!("{}{}Z", dt.format("%Y-%m-%dT%H:%M:%S"), frac_txt)
            } else {
                let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
                let local = dt.with_timezone(&off);
                let sign = if off_min < 0 { '-' } else { '+' };
                let a = off_min.abs();
                format!("{}{}{}{:02}:{:02}", local.format("%Y-%m-%d %H:%M:%S"), frac_txt, sign, a / 60, a % 60)
            };
            let mut p = TsParser::new(TsFormat::Iso, Zone::Utc);
            prop_assert_eq!(p.parse(text.as_bytes()), Some(want), "{}", text);
        }

        #[test]
        fn naive_new_york_matches_chrono_tz(secs in 1_500_000_000i64..1_700_000_000) {
            let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
            let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&tz);
            let text = dt.format("%Y-%m-%d %H:%M:%S").to_string();
            let mut p = TsParser::new(TsFormat::Iso, Zone::Named(tz));
            let got = p.parse(text.as_bytes()).unwrap();
            // Ambiguous local times resolve to the first occurrence, one hour earlier.
            prop_assert!(got == secs * NS || got == (secs - 3600) * NS, "{} -> {}", text, got);
        }
    }

    /// Eight digits read at once equal the digit-by-digit value; a word with any other byte
    /// (including those next to `0` and `9`) or fewer than eight bytes is refused.
    #[test]
    fn eight_digits_at_once_match_one_at_a_time() {
        for text in [
            "00000000",
            "12345678",
            "99999999",
            "07560000",
            "12345678999",
        ] {
            let want: u32 = text[..8].parse().unwrap();
            assert_eq!(eight_digits(text.as_bytes()), Some(want), "{text}");
        }
        for bad in [b'/', b':', b'.', b'Z', b' ', 0, 0xB0, 0x39 + 0x80] {
            for at in 0..8 {
                let mut b = *b"12345678";
                b[at] = bad;
                assert_eq!(eight_digits(&b), None, "{b:?}");
            }
        }
        assert_eq!(eight_digits(b"1234567"), None);
        // A fraction of 6, 8, 9 and 12 digits parses to the same nanoseconds as before.
        for (frac, nanos) in [
            ("756846", 756_846_000),
            ("75684627", 756_846_270),
            ("756846270", 756_846_270),
            ("756846270999", 756_846_270),
        ] {
            let t = format!("12:32:16.{frac}Z");
            let (got, rest) = time_colon(t.as_bytes()).unwrap();
            assert_eq!(got, (12 * 3600 + 32 * 60 + 16) * NS + nanos, "{t}");
            assert_eq!(rest, b"Z");
        }
    }
}
