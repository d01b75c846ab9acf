//! The row ledger: where every input row went.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Counts of rows read, written, quarantined (by reason) and removed (by rule).
///
/// Every worker keeps its own ledger; the engine merges them at the end and checks
/// `read = written + quarantined + removed` with [`Ledger::check_balance`].
///
/// ```
/// use pipeline_core::Ledger;
/// let mut a = Ledger::default();
/// a.add_read(10);
/// a.add_removed("dedupe_exact", 2);
/// a.add_written(7);
/// let mut b = Ledger::default();
/// b.add_quarantined("bad_number", 1);
/// a.merge(&b);
/// assert_eq!(a.removed_total() + a.quarantined_total() + a.written, a.read);
/// a.check_balance()?;
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Data rows read from inputs (header lines excluded).
    pub read: u64,
    /// Rows written to the main output.
    pub written: u64,
    /// Rows sent to quarantine, by reason (e.g. `wrong_field_count`, `late`).
    pub quarantined: BTreeMap<String, u64>,
    /// Rows removed by a cleaning rule, by rule name (e.g. `dedupe_exact`, `T3`).
    pub removed: BTreeMap<String, u64>,
    /// Values repaired in place (forward-filled, interpolated, winsorized), by rule name.
    /// Repaired rows are still written, so this is not part of the balance equation.
    #[serde(default)]
    pub repaired: BTreeMap<String, u64>,
    /// Rows a stage made that no input row became (empty bars of a session calendar), by
    /// rule: `read + added = written + quarantined + removed`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub added: BTreeMap<String, u64>,
}

impl Ledger {
    /// Adds `n` rows read.
    pub fn add_read(&mut self, n: u64) {
        self.read += n;
    }

    /// Adds `n` rows written.
    pub fn add_written(&mut self, n: u64) {
        self.written += n;
    }

    /// Adds `n` rows quarantined for `reason`.
    pub fn add_quarantined(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.quarantined.entry(reason.to_string()).or_default() += n;
        }
    }

    /// Adds `n` rows removed by `rule`.
    pub fn add_removed(&mut self, rule: &str, n: u64) {
        if n > 0 {
            *self.removed.entry(rule.to_string()).or_default() += n;
        }
    }

    /// Adds `n` rows made by `rule` (rows no input row became).
    pub fn add_added(&mut self, rule: &str, n: u64) {
        if n > 0 {
            *self.added.entry(rule.to_string()).or_default() += n;
        }
    }

    /// Total rows made by stages.
    pub fn added_total(&self) -> u64 {
        self.added.values().sum()
    }

    /// Adds `n` values repaired by `rule`.
    pub fn add_repaired(&mut self, rule: &str, n: u64) {
        if n > 0 {
            *self.repaired.entry(rule.to_string()).or_default() += n;
        }
    }

    /// Total rows quarantined.
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }

    /// Total rows removed by rules.
    pub fn removed_total(&self) -> u64 {
        self.removed.values().sum()
    }

    /// Adds another ledger's counts to this one.
    pub fn merge(&mut self, other: &Ledger) {
        self.read += other.read;
        self.written += other.written;
        for (k, v) in &other.quarantined {
            *self.quarantined.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.removed {
            *self.removed.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.repaired {
            *self.repaired.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.added {
            *self.added.entry(k.clone()).or_default() += v;
        }
    }

    /// Checks `read (+ added) = written + quarantined + removed`; an imbalance is a tickpipe
    /// bug.
    pub fn check_balance(&self) -> Result<()> {
        let out = self.written + self.quarantined_total() + self.removed_total();
        if out == self.read + self.added_total() {
            Ok(())
        } else {
            let added = match self.added_total() {
                0 => String::new(),
                n => format!(" + added {n}"),
            };
            Err(Error::Internal(format!(
                "row ledger does not balance: read {}{added} != written {} + quarantined {} + removed {}",
                self.read,
                self.written,
                self.quarantined_total(),
                self.removed_total()
            )))
        }
    }

    /// Share of the rows read that were quarantined (0 when nothing was read).
    pub fn quarantined_fraction(&self) -> f64 {
        if self.read == 0 {
            0.0
        } else {
            self.quarantined_total() as f64 / self.read as f64
        }
    }

    /// Fails with [`Error::TooManyQuarantined`] when more than `max_fraction` of the rows read
    /// were quarantined (`[pipeline] max_quarantine_fraction`): a run that loses most of its
    /// input (a shuffled file without `--sort`, a wrong `--timezone` or layout) must not look
    /// like a success. `max_fraction >= 1` never fails.
    ///
    /// ```
    /// use pipeline_core::Ledger;
    /// let mut l = Ledger::default();
    /// l.add_read(100);
    /// l.add_quarantined("late", 90);
    /// l.add_written(10);
    /// let e = l.check_quarantine_limit(0.5).unwrap_err();
    /// assert!(e.to_string().contains("90 of 100 rows"), "{e}");
    /// assert!(l.check_quarantine_limit(1.0).is_ok());
    /// ```
    pub fn check_quarantine_limit(&self, max_fraction: f64) -> Result<()> {
        if max_fraction >= 1.0 || self.quarantined_fraction() <= max_fraction {
            return Ok(());
        }
        let mut by: Vec<(&String, &u64)> = self.quarantined.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let reasons = by
            .iter()
            .take(3)
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::TooManyQuarantined {
            quarantined: self.quarantined_total(),
            read: self.read,
            max_fraction,
            reasons,
        })
    }

    /// The equation as a human-readable line.
    pub fn equation(&self) -> String {
        let added = match self.added_total() {
            0 => String::new(),
            n => format!(" + added {n}"),
        };
        format!(
            "read {}{added} = written {} + quarantined {} + removed {}",
            self.read,
            self.written,
            self.quarantined_total(),
            self.removed_total()
        )
    }
}

/// What one stage did: rows and bytes in and out, and time spent busy.
///
/// Monitoring (per-stage metrics) reads these; they merge across workers like the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    /// Rows handed to the stage.
    pub rows_in: u64,
    /// Rows the stage emitted.
    pub rows_out: u64,
    /// Arrow memory of the chunks handed to the stage, in bytes.
    pub bytes_in: u64,
    /// Arrow memory of the chunks it emitted, in bytes.
    pub bytes_out: u64,
    /// Chunks handed to the stage.
    pub chunks: u64,
    /// Time spent inside `process` and `finish`.
    #[serde(with = "duration_secs")]
    pub busy: Duration,
}

impl StageMetrics {
    /// Adds another worker's metrics for the same stage.
    pub fn merge(&mut self, other: &StageMetrics) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.chunks += other.chunks;
        self.busy += other.busy;
    }

    /// Rows in per busy second (0 when the stage was never busy).
    pub fn rows_per_second(&self) -> f64 {
        let s = self.busy.as_secs_f64();
        if s > 0.0 {
            self.rows_in as f64 / s
        } else {
            0.0
        }
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imbalance_is_reported() {
        let mut l = Ledger::default();
        l.add_read(5);
        l.add_written(3);
        l.add_removed("T1", 1);
        let e = l.check_balance().unwrap_err().to_string();
        assert!(
            e.contains("read 5 != written 3 + quarantined 0 + removed 1"),
            "{e}"
        );
        l.add_added("bar_empty", 2);
        let e = l.check_balance().unwrap_err().to_string();
        assert!(e.contains("read 5 + added 2 != written 3"), "{e}");
        l.add_written(3);
        l.check_balance().unwrap();
        assert!(l.equation().starts_with("read 5 + added 2 = written 6"));
        l.written -= 3;
        l.added.clear();
        l.add_quarantined("late", 1);
        l.check_balance().unwrap();
        assert_eq!(
            l.equation(),
            "read 5 = written 3 + quarantined 1 + removed 1"
        );
    }

    #[test]
    fn quarantine_limit_names_the_reasons() {
        let mut l = Ledger::default();
        assert_eq!(l.quarantined_fraction(), 0.0);
        l.add_read(3_000_000);
        l.add_quarantined("late", 2_996_782);
        l.add_quarantined("bad_number", 3);
        l.add_written(3_215);
        let e = l.check_quarantine_limit(0.5).unwrap_err().to_string();
        assert!(e.contains("2996785 of 3000000 rows (99.9%)"), "{e}");
        assert!(e.contains("late 2996782, bad_number 3"), "{e}");
        assert!(e.contains("max_quarantine_fraction"), "{e}");
        assert!(l.check_quarantine_limit(0.9995).is_ok());
        assert!(l.check_quarantine_limit(1.0).is_ok());
    }

    #[test]
    fn zero_counts_leave_no_keys() {
        let mut l = Ledger::default();
        l.add_removed("x", 0);
        assert!(l.removed.is_empty());
    }

    #[test]
    fn metrics_merge() {
        let mut a = StageMetrics {
            rows_in: 2,
            busy: Duration::from_secs(1),
            ..Default::default()
        };
        a.merge(&a.clone());
        assert_eq!(a.rows_in, 4);
        assert_eq!(a.rows_per_second(), 2.0);
    }
}
