//! Calendar-aware time bars: a session grid in the exchange's zone (hours, holidays, early
//! closes), an empty-bar policy, and `label` / `closed` edges.
//!
//! For each trading day `D` of the [`Calendar`], the session is `[open, close)` in local time
//! (`close` is the early close on early-close days), converted to UTC through the zone's
//! rules for that date, so a 09:30 open is 14:30 UTC in winter and 13:30 UTC in summer and
//! no bar straddles a daylight-saving change. Bin `k` of the day is
//! `[open + k·w, min(open + (k+1)·w, close))` (a shorter last bin when the session is not a
//! multiple of `w`). With `closed = right` the bins are `(start, end]` (a trade exactly at
//! the open then belongs to no bin). Trades outside every session (nights, weekends,
//! holidays, after an early close) join no bar and are counted as `bar_outside_session`.
//!
//! `label = left` stamps a bar with its bin start, `right` with its bin end. Empty bins inside
//! a session the symbol traded in are skipped ([`EmptyBars::Skip`]), carried forward (OHLC =
//! the previous close, volume 0, `trades` 0) or emitted with null OHLC; a session without any
//! trade of the symbol gives no bars.
//!
//! ```
//! use pipeline_prep::{BarSession, SessionGrid};
//! let mut g = SessionGrid::new(&BarSession::nyse(), 30 * 60 * 1_000_000_000).unwrap();
//! let ns = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_nanos_opt().unwrap();
//! // Friday before the March 2024 change: 09:30 EST = 14:30 UTC; Monday after: 13:30 UTC.
//! let fri = g.bin(ns("2024-03-08T14:45:00Z")).unwrap();
//! let mon = g.bin(ns("2024-03-11T13:45:00Z")).unwrap();
//! assert_eq!((fri.start, fri.index), (ns("2024-03-08T14:30:00Z"), 0));
//! assert_eq!((mon.start, mon.index), (ns("2024-03-11T13:30:00Z"), 0));
//! assert!(g.bin(ns("2024-07-04T15:00:00Z")).is_none()); // Independence Day
//! // July 3 closes at 13:00: the last 30-minute bin is 12:30-13:00 New York.
//! assert!(g.bin(ns("2024-07-03T17:10:00Z")).is_none());
//! ```

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use pipeline_core::calendar::{Calendar, CalendarKind, date_of, epoch_day};
use pipeline_core::{Error, Result, parse_hhmm};
use serde::{Deserialize, Serialize};

/// What an empty bin inside a session gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyBars {
    /// No bar.
    Skip,
    /// A bar at the previous close, volume 0.
    Carry,
    /// A bar with null OHLC, volume 0.
    Null,
}

/// An edge of a bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarEdge {
    /// The start.
    Left,
    /// The end.
    Right,
}

/// The session calendar of time bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarSession {
    /// The exchange's zone (IANA).
    pub zone: String,
    /// Session open, local `HH:MM`.
    pub open: String,
    /// Session close, local `HH:MM`.
    pub close: String,
    /// Close on early-close days, local `HH:MM`.
    pub early_close: String,
    /// Trading days: NYSE holidays and early closes, every weekday, or every day.
    pub calendar: CalendarKind,
    /// Extra closed dates, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Empty-bin policy.
    pub empty: EmptyBars,
    /// Which edge stamps the bar.
    pub label: BarEdge,
    /// Which edge a bin includes.
    pub closed: BarEdge,
}

impl BarSession {
    /// NYSE: 09:30–16:00 New York, 13:00 early closes, skip empty bins, left label and edge.
    pub fn nyse() -> Self {
        BarSession {
            zone: "America/New_York".into(),
            open: "09:30".into(),
            close: "16:00".into(),
            early_close: "13:00".into(),
            calendar: CalendarKind::Nyse,
            holidays: Vec::new(),
            empty: EmptyBars::Skip,
            label: BarEdge::Left,
            closed: BarEdge::Left,
        }
    }
}

/// One bin of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    /// Local trading day (days since 1970-01-01).
    pub day: i32,
    /// Bin index within the day's session.
    pub index: i64,
    /// Start (UTC ns).
    pub start: i64,
    /// End (UTC ns), the session close for the last bin.
    pub end: i64,
}

/// Maps instants to session bins (see the module docs); caches the current day.
#[derive(Debug, Clone)]
pub struct SessionGrid {
    tz: Tz,
    open: NaiveTime,
    close: NaiveTime,
    early: NaiveTime,
    calendar: Calendar,
    width: i64,
    right_closed: bool,
    /// `(day, open_utc, close_utc)` of the last day looked up.
    cache: Option<(i32, Option<(i64, i64)>)>,
}

fn hhmm(key: &str, t: &str) -> Result<NaiveTime> {
    let m = parse_hhmm(t).map_err(|m| Error::config(key, m))?;
    NaiveTime::from_hms_opt(m / 60, m % 60, 0)
        .ok_or_else(|| Error::config(key, format!("`{t}` is not a time of day")))
}

impl SessionGrid {
    /// The grid of `s` for bins of `width` nanoseconds.
    pub fn new(s: &BarSession, width: i64) -> Result<Self> {
        let tz: Tz = s.zone.parse().map_err(|_| {
            Error::config(
                "bars.zone",
                format!(
                    "`{}` is not an IANA time zone (e.g. America/New_York)",
                    s.zone
                ),
            )
        })?;
        let open = hhmm("bars.session", &s.open)?;
        let close = hhmm("bars.session", &s.close)?;
        let early = hhmm("bars.early_close", &s.early_close)?;
        if close <= open || early <= open {
            return Err(Error::config(
                "bars.session",
                format!(
                    "the close ({} / early {}) must come after the open ({})",
                    s.close, s.early_close, s.open
                ),
            ));
        }
        let extra = s
            .holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    Error::config("bars.holidays", format!("`{d}` is not a YYYY-MM-DD date"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if width <= 0 {
            return Err(Error::config("bars", "the bar width must be positive"));
        }
        Ok(SessionGrid {
            tz,
            open,
            close,
            early,
            calendar: Calendar::new(s.calendar, &extra),
            width,
            right_closed: s.closed == BarEdge::Right,
            cache: None,
        })
    }

    fn local_ns(&self, day: i32, t: NaiveTime) -> Option<i64> {
        let local = date_of(day).and_time(t);
        // A time skipped by a DST change does not exist; the first valid instant after it is
        // the local wall clock's meaning (chrono gives none), so step an hour forward.
        let dt = self.tz.from_local_datetime(&local).earliest().or_else(|| {
            self.tz
                .from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })?;
        dt.timestamp_nanos_opt()
    }

    /// The session `(open, close)` of `day` in UTC ns, `None` when it is not a trading day.
    pub fn session(&mut self, day: i32) -> Option<(i64, i64)> {
        if let Some((d, s)) = self.cache
            && d == day
        {
            return s;
        }
        let s = if self.calendar.is_trading_day(day) {
            let close = if self.calendar.is_early_close(day) {
                self.early
            } else {
                self.close
            };
            match (self.local_ns(day, self.open), self.local_ns(day, close)) {
                (Some(o), Some(c)) if c > o => Some((o, c)),
                _ => None,
            }
        } else {
            None
        };
        self.cache = Some((day, s));
        s
    }

    /// Bins in `day`'s session.
    pub fn bins_in(&mut self, day: i32) -> i64 {
        match self.session(day) {
            Some((o, c)) => (c - o + self.width - 1) / self.width,
            None => 0,
        }
    }

    /// Bin `index` of `day` (which must be a trading day).
    pub fn bin_of(&mut self, day: i32, index: i64) -> Option<Bin> {
        let (o, c) = self.session(day)?;
        let start = o + index * self.width;
        (start < c).then(|| Bin {
            day,
            index,
            start,
            end: (start + self.width).min(c),
        })
    }

    /// The bin holding an instant, `None` outside every session.
    pub fn bin(&mut self, ts: i64) -> Option<Bin> {
        // Inside the cached day's session the local date is that day: no zone conversion on
        // the hot path.
        let day = match self.cache {
            Some((d, Some((o, c)))) if ts >= o && ts <= c => d,
            _ => epoch_day(self.tz.timestamp_nanos(ts).date_naive()),
        };
        let (o, c) = self.session(day)?;
        let inside = if self.right_closed {
            ts > o && ts <= c
        } else {
            ts >= o && ts < c
        };
        if !inside {
            return None;
        }
        let off = ts - o;
        let index = if self.right_closed {
            (off - 1).div_euclid(self.width)
        } else {
            off.div_euclid(self.width)
        };
        self.bin_of(day, index)
    }

    /// The trading day after `day` (within ten years), for walking empty bins.
    pub fn next_day(&mut self, day: i32) -> Option<i32> {
        (day + 1..day + 3660).find(|&d| self.session(d).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn bins_follow_the_new_york_clock_across_both_dst_changes() {
        let mut g = SessionGrid::new(&BarSession::nyse(), 60 * MIN).unwrap();
        // 6.5 hours: six full bins and a half one.
        let day = epoch_day(NaiveDate::from_ymd_opt(2024, 3, 8).unwrap());
        assert_eq!(g.bins_in(day), 7);
        for (t, start, end) in [
            (
                "2024-03-08T20:59:59Z",
                "2024-03-08T20:30:00Z",
                "2024-03-08T21:00:00Z",
            ),
            (
                "2024-03-11T19:59:00Z",
                "2024-03-11T19:30:00Z",
                "2024-03-11T20:00:00Z",
            ),
            (
                "2024-11-01T13:30:00Z",
                "2024-11-01T13:30:00Z",
                "2024-11-01T14:30:00Z",
            ),
            (
                "2024-11-04T14:30:00Z",
                "2024-11-04T14:30:00Z",
                "2024-11-04T15:30:00Z",
            ),
        ] {
            let b = g.bin(ns(t)).unwrap();
            assert_eq!((b.start, b.end), (ns(start), ns(end)), "{t}");
        }
        // Before the open, after the close, a weekend, a holiday.
        for t in [
            "2024-03-11T13:29:59Z",
            "2024-03-11T20:00:00Z",
            "2024-03-09T15:00:00Z",
            "2024-12-25T15:00:00Z",
        ] {
            assert!(g.bin(ns(t)).is_none(), "{t}");
        }
    }

    #[test]
    fn early_closes_holidays_and_right_closed_bins() {
        let mut s = BarSession::nyse();
        s.holidays = vec!["2024-07-05".into()];
        s.closed = BarEdge::Right;
        let mut g = SessionGrid::new(&s, 30 * MIN).unwrap();
        let jul3 = epoch_day(NaiveDate::from_ymd_opt(2024, 7, 3).unwrap());
        assert_eq!(g.bins_in(jul3), 7); // 09:30-13:00
        // (12:30, 13:00]: the early close itself is in the last bin when right-closed.
        let b = g.bin(ns("2024-07-03T17:00:00Z")).unwrap();
        assert_eq!((b.index, b.end), (6, ns("2024-07-03T17:00:00Z")));
        // The open itself is in no right-closed bin; a minute later is bin 0.
        assert!(g.bin(ns("2024-07-03T13:30:00Z")).is_none());
        assert_eq!(g.bin(ns("2024-07-03T13:31:00Z")).unwrap().index, 0);
        assert!(g.bin(ns("2024-07-05T15:00:00Z")).is_none(), "extra holiday");
        assert_eq!(g.next_day(jul3), Some(jul3 + 5)); // July 4 holiday, 5 extra, weekend
        assert!(
            SessionGrid::new(
                &BarSession {
                    zone: "Mars/Olympus".into(),
                    ..BarSession::nyse()
                },
                MIN
            )
            .is_err()
        );
    }

    #[test]
    fn a_24_hour_market_has_23_and_25_hour_days_in_its_zone() {
        let s = BarSession {
            zone: "Europe/London".into(),
            open: "00:00".into(),
            close: "23:59".into(),
            early_close: "23:59".into(),
            calendar: CalendarKind::None,
            ..BarSession::nyse()
        };
        let mut g = SessionGrid::new(&s, 60 * MIN).unwrap();
        let d = |y, m, dd| epoch_day(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        assert_eq!(g.bins_in(d(2024, 3, 31)), 23); // clocks forward: 00:00-23:59 is 22h59m
        assert_eq!(g.bins_in(d(2024, 10, 27)), 25); // clocks back: 24h59m
        assert_eq!(g.bins_in(d(2024, 6, 1)), 24);
        // 01:30 London on the change day does not exist; 02:30 BST is bin 1 (01:00 UTC).
        let b = g.bin(ns("2024-03-31T01:30:00Z")).unwrap();
        assert_eq!((b.index, b.start), (1, ns("2024-03-31T01:00:00Z")));
    }
}
