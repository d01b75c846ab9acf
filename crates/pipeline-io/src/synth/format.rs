//! Hand-written number and timestamp formatting into a reused line buffer: no allocation and
//! no `fmt` machinery per row, which is most of what makes the generator fast.

use chrono::{Datelike, NaiveDate};

use super::config::TimestampFormat;

/// Nanoseconds per day.
pub(crate) const NS_PER_DAY: i64 = 86_400_000_000_000;

/// "00" … "99", so two digits are written with one copy.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the two digits of `v` (< 100).
#[inline]
fn push_pair(buf: &mut Vec<u8>, v: u64) {
    let i = (v as usize % 100) * 2;
    buf.extend_from_slice(&PAIRS[i..i + 2]);
}

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut pos = tmp.len();
    while v >= 100 {
        let i = (v % 100) as usize * 2;
        v /= 100;
        pos -= 2;
        tmp[pos..pos + 2].copy_from_slice(&PAIRS[i..i + 2]);
    }
    if v >= 10 {
        let i = v as usize * 2;
        pos -= 2;
        tmp[pos..pos + 2].copy_from_slice(&PAIRS[i..i + 2]);
    } else {
        pos -= 1;
        tmp[pos] = b'0' + v as u8;
    }
    buf.extend_from_slice(&tmp[pos..]);
}

/// Appends `v` in decimal, with a leading `-` when negative.
#[inline]
pub(crate) fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// Appends a price given in integer cents as `123.45` (`-0.05` when negative).
#[inline]
pub(crate) fn push_ticks(buf: &mut Vec<u8>, ticks: i64) {
    if ticks < 0 {
        buf.push(b'-');
    }
    let t = ticks.unsigned_abs();
    push_u64(buf, t / 100);
    buf.push(b'.');
    push_pair(buf, t % 100);
}

/// Appends the nine digits of `frac` (< 10⁹ nanoseconds).
#[inline]
fn push_nanos(buf: &mut Vec<u8>, frac: u64) {
    buf.push(b'0' + (frac / 100_000_000) as u8);
    push_pair(buf, frac / 1_000_000 % 100);
    push_pair(buf, frac / 10_000 % 100);
    push_pair(buf, frac / 100 % 100);
    push_pair(buf, frac % 100);
}

/// Appends the six digits of `micros` (< 10⁶ microseconds).
#[inline]
fn push_micros(buf: &mut Vec<u8>, micros: u64) {
    push_pair(buf, micros / 10_000);
    push_pair(buf, micros / 100 % 100);
    push_pair(buf, micros % 100);
}

/// Formats nanosecond UTC timestamps in one [`TimestampFormat`]. The date-time forms cache
/// the date prefix of the current day (`YYYY-MM-DDT`, or `YYYY-MM-DD ` for
/// [`TimestampFormat::SpaceMicros`]) so the calendar is consulted once per day, not once per
/// row; shorter forms truncate the nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct TsFormatter {
    format: TimestampFormat,
    day: i64,
    prefix: [u8; 11],
}

impl TsFormatter {
    /// A formatter for `format` with an empty cache.
    pub(crate) fn new(format: TimestampFormat) -> Self {
        TsFormatter {
            format,
            day: i64::MIN,
            prefix: *b"0000-00-00T",
        }
    }

    /// Appends `ts` (nanoseconds since the Unix epoch; years 0–9999 for the date-time forms).
    #[inline]
    pub(crate) fn push(&mut self, buf: &mut Vec<u8>, ts: i64) {
        match self.format {
            TimestampFormat::Iso => {
                let frac = self.push_date_time(buf, ts);
                push_nanos(buf, frac);
                buf.push(b'Z');
            }
            TimestampFormat::IsoMicros => {
                let frac = self.push_date_time(buf, ts);
                push_micros(buf, frac / 1_000);
                buf.push(b'Z');
            }
            TimestampFormat::SpaceMicros => {
                let frac = self.push_date_time(buf, ts);
                push_micros(buf, frac / 1_000);
            }
            TimestampFormat::EpochNs => push_i64(buf, ts),
            TimestampFormat::EpochMs => push_i64(buf, ts.div_euclid(1_000_000)),
        }
    }

    /// Appends the date prefix and `HH:MM:SS.` of `ts`; returns the nanoseconds of the second.
    #[inline]
    fn push_date_time(&mut self, buf: &mut Vec<u8>, ts: i64) -> u64 {
        let day = ts.div_euclid(NS_PER_DAY);
        if day != self.day {
            self.set_day(day);
        }
        buf.extend_from_slice(&self.prefix);
        let nod = ts.rem_euclid(NS_PER_DAY) as u64;
        let secs = nod / 1_000_000_000;
        push_pair(buf, secs / 3600);
        buf.push(b':');
        push_pair(buf, secs / 60 % 60);
        buf.push(b':');
        push_pair(buf, secs % 60);
        buf.push(b'.');
        nod % 1_000_000_000
    }

    /// Recomputes the date prefix for `day` days after 1970-01-01.
    #[cold]
    fn set_day(&mut self, day: i64) {
        self.day = day;
        let date = i32::try_from(day)
            .ok()
            .and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163))
            .unwrap_or_default();
        let mut p = Vec::with_capacity(11);
        let year = date.year().clamp(0, 9999) as u64;
        push_pair(&mut p, year / 100);
        push_pair(&mut p, year % 100);
        p.push(b'-');
        push_pair(&mut p, u64::from(date.month()));
        p.push(b'-');
        push_pair(&mut p, u64::from(date.day()));
        p.push(if self.format == TimestampFormat::SpaceMicros {
            b' '
        } else {
            b'T'
        });
        self.prefix.copy_from_slice(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(mut f: impl FnMut(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn integers_match_std() {
        for v in [0u64, 7, 10, 99, 100, 101, 999, 1000, 123_456_789, u64::MAX] {
            assert_eq!(s(|b| push_u64(b, v)), v.to_string());
        }
        for v in [0i64, -1, -100, 42, i64::MIN, i64::MAX] {
            assert_eq!(s(|b| push_i64(b, v)), v.to_string());
        }
    }

    #[test]
    fn ticks_have_two_decimals() {
        assert_eq!(s(|b| push_ticks(b, 13245)), "132.45");
        assert_eq!(s(|b| push_ticks(b, 5)), "0.05");
        assert_eq!(s(|b| push_ticks(b, 0)), "0.00");
        assert_eq!(s(|b| push_ticks(b, -1200)), "-12.00");
    }

    #[test]
    fn timestamps_match_chrono() {
        let mut f = TsFormatter::new(TimestampFormat::Iso);
        for ts in [
            0i64,
            1_609_770_600_000_123_456,
            1_615_815_000_999_999_999,
            4_102_444_799_999_999_999,
        ] {
            let want = chrono::DateTime::from_timestamp_nanos(ts)
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string();
            assert_eq!(s(|b| f.push(b, ts)), want);
        }
        assert_eq!(
            s(|b| f.push(b, 1_609_770_600_000_123_456)),
            "2021-01-04T14:30:00.000123456Z"
        );
    }

    /// Every format against chrono, at times whose dropped digits are all nines (truncation,
    /// not rounding, must show) and across a day change (the cached prefix).
    #[test]
    fn every_format_truncates_and_matches_chrono() {
        let times = [
            1_546_433_597_784_433_219i64,
            1_546_473_599_999_999_999,
            1_546_473_600_000_000_000,
            1_615_815_000_000_999_999,
        ];
        let chrono_fmt = |f: TimestampFormat| match f {
            TimestampFormat::Iso => Some("%Y-%m-%dT%H:%M:%S%.9fZ"),
            TimestampFormat::IsoMicros => Some("%Y-%m-%dT%H:%M:%S%.6fZ"),
            TimestampFormat::SpaceMicros => Some("%Y-%m-%d %H:%M:%S%.6f"),
            TimestampFormat::EpochNs | TimestampFormat::EpochMs => None,
        };
        for format in TimestampFormat::ALL {
            let mut f = TsFormatter::new(format);
            for ts in times {
                let got = s(|b| f.push(b, ts));
                let cut = ts - ts.rem_euclid(format.resolution_ns());
                let want = match chrono_fmt(format) {
                    // chrono's `%.6f` truncates too, but format the cut time so the test
                    // does not lean on that.
                    Some(pattern) => chrono::DateTime::from_timestamp_nanos(cut)
                        .format(pattern)
                        .to_string(),
                    None => (cut / format.resolution_ns()).to_string(),
                };
                assert_eq!(got, want, "{format:?} {ts}");
            }
        }
        let mut f = TsFormatter::new(TimestampFormat::IsoMicros);
        assert_eq!(
            s(|b| f.push(b, 1_546_433_597_784_433_999)),
            "2019-01-02T12:53:17.784433Z"
        );
        let mut f = TsFormatter::new(TimestampFormat::SpaceMicros);
        assert_eq!(
            s(|b| f.push(b, 1_546_433_597_784_433_999)),
            "2019-01-02 12:53:17.784433"
        );
        let mut f = TsFormatter::new(TimestampFormat::EpochMs);
        assert_eq!(s(|b| f.push(b, 1_546_433_597_784_999_999)), "1546433597784");
    }
}
