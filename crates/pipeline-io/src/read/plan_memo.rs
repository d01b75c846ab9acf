//! Plans built while a run describes its inputs, kept for the sources that then open the
//! same files.
//!
//! A run sniffs every input twice: once to describe the dataset (the united schema, before
//! any row is read) and once when the input is opened. Building a [`CsvPlan`] splits its
//! whole sample and tests timestamp formats on it, which costs about as much as decoding the
//! sample: on the demo layout's day files (a few hundred rows each) the second build was
//! 8% of a run's instructions. [`ReadOptions::plans`] hands the first build to the open.
//!
//! The key is a hash of everything a plan is built from: the sample's bytes, whether the
//! sample is the whole input, the input's name and the read options [`CsvPlan::build`]
//! reads. A file changed between the two sniffs has another sample, misses, and gets a
//! plan of its own, as before. Each kept plan is handed out once.
//!
//! Plans are kept serialised, one after another in a single buffer reserved once (and
//! mapped lazily by the kernel), not as the hundred small blocks of a built plan: kept by
//! the sniffing threads between the samples they read and free, such blocks left holes
//! that no later sample fitted in, and the run's peak RSS grew by 36 KB per kept plan
//! (120 → 166 MB on 1,258 day files). At most [`PlanMemo::capacity`] plans and
//! [`STORE_BYTES`] are kept; inputs past them build their plan again when opened, so
//! memory stays bounded for folders of hundreds of thousands of files.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use twox_hash::XxHash3_64;

use super::ReadOptions;
use super::plan::CsvPlan;

/// Bytes of serialised plans a memo keeps at most (a plan of ten columns takes about 3 KB).
pub(crate) const STORE_BYTES: usize = 8 << 20;

/// The serialised plans and where each one is.
#[derive(Default)]
struct Store {
    bytes: Vec<u8>,
    at: HashMap<u64, (usize, usize)>,
}

/// Plans kept between describing and opening inputs (see the module docs). Clones share
/// the same store.
#[derive(Clone)]
pub struct PlanMemo {
    inner: Arc<Mutex<Store>>,
    capacity: usize,
}

impl PlanMemo {
    /// A memo keeping at most `capacity` plans, in at most 8 MiB.
    pub fn new(capacity: usize) -> PlanMemo {
        PlanMemo {
            inner: Arc::new(Mutex::new(Store::default())),
            capacity,
        }
    }

    /// The most plans kept at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Plans kept now.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |m| m.at.len())
    }

    /// Whether no plan is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `plan` under `key` unless the memo is full.
    pub(crate) fn keep(&self, key: u64, plan: &CsvPlan) {
        let Ok(blob) = serde_json::to_vec(plan) else {
            return;
        };
        let Ok(mut m) = self.inner.lock() else {
            return;
        };
        if m.at.len() >= self.capacity || m.bytes.len() + blob.len() > STORE_BYTES {
            return;
        }
        if m.bytes.capacity() == 0 {
            // Reserved whole, so the store never moves: a large block of its own, whose
            // pages are mapped as they are written.
            m.bytes.reserve_exact(STORE_BYTES);
        }
        let start = m.bytes.len();
        m.bytes.extend_from_slice(&blob);
        m.at.insert(key, (start, blob.len()));
    }

    /// Hands out the plan kept under `key`, once.
    pub(crate) fn take(&self, key: u64) -> Option<CsvPlan> {
        let mut m = self.inner.lock().ok()?;
        let (start, len) = m.at.remove(&key)?;
        let plan = serde_json::from_slice::<CsvPlan>(m.bytes.get(start..start + len)?)
            .ok()
            .map(|mut p| {
                p.restore_schemas();
                p
            });
        if m.at.is_empty() {
            // Every kept plan was taken: give the store back.
            m.bytes = Vec::new();
        }
        plan
    }

    /// The key of a plan built from `sample` (`all`: the sample is the whole input) of the
    /// input named `name` under `opts`.
    pub(crate) fn key(sample: &[u8], all: bool, name: &str, opts: &ReadOptions) -> u64 {
        let mut h = XxHash3_64::with_seed(0);
        // What `CsvPlan::build` reads of the options (not the target schema, the cache or
        // the thread counts, which only the open uses).
        let settings = format!(
            "{:?}|{:?}|{}|{}|{}|{}",
            opts.input, opts.columns, opts.strict, opts.require_timestamp, opts.max_line_bytes, all
        );
        for part in [settings.as_bytes(), name.as_bytes()] {
            h.write_usize(part.len());
            h.write(part);
        }
        h.write_usize(sample.len());
        h.write(sample);
        h.finish()
    }
}

impl fmt::Debug for PlanMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlanMemo({} of {})", self.len(), self.capacity)
    }
}

/// Memos are equal when they share one store (read options compare so).
impl PartialEq for PlanMemo {
    fn eq(&self, other: &PlanMemo) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Whether a sniff keeps the plan it builds for a later open, or takes one kept earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanUse {
    /// Describing: keep the plan for the open.
    Keep,
    /// Opening: use the kept plan if there is one.
    Take,
    /// Neither (`inspect`, LOBSTER order books).
    Own,
}

/// The plan of `sample` from `opts.plans` when `usage` takes one kept earlier, else built
/// (and kept when `usage` says so).
pub(crate) fn plan_for(
    sample: &[u8],
    all: bool,
    name: &str,
    opts: &ReadOptions,
    usage: PlanUse,
) -> pipeline_core::Result<Arc<CsvPlan>> {
    let memo = opts.plans.as_ref().filter(|_| usage != PlanUse::Own);
    let key = memo.map(|_| PlanMemo::key(sample, all, name, opts));
    if let (Some(m), Some(k), PlanUse::Take) = (memo, key, usage)
        && let Some(p) = m.take(k)
    {
        return Ok(Arc::new(p));
    }
    let plan = CsvPlan::build(sample, all, name, opts)?;
    if let (Some(m), Some(k), PlanUse::Keep) = (memo, key, usage) {
        m.keep(k, &plan);
    }
    Ok(Arc::new(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] =
        b"ts,symbol,price,size,venue_code\n2024-01-02T14:30:00Z,AAPL,185.5,100,7\n\
        2024-01-02T14:30:01Z,AAPL,185.25,200,9\n";

    fn opts(memo: &PlanMemo) -> ReadOptions {
        ReadOptions {
            plans: Some(memo.clone()),
            ..ReadOptions::default()
        }
    }

    /// A plan in full: every field, floats to their bits (`Debug` prints the shortest
    /// decimal that reads back as the same bits).
    fn shown(p: &CsvPlan) -> String {
        format!("{p:?}")
    }

    #[test]
    fn a_plan_kept_while_describing_is_handed_to_the_open_once_as_built() {
        let memo = PlanMemo::new(8);
        let o = opts(&memo);
        let built = plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Keep).unwrap();
        assert_eq!(memo.len(), 1);
        let taken = plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Take).unwrap();
        assert_eq!(shown(&taken), shown(&built));
        assert!(memo.is_empty());
        assert_eq!(
            memo.inner.lock().unwrap().bytes.capacity(),
            0,
            "store given back"
        );
        // A second open builds its own, the same again.
        let again = plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Take).unwrap();
        assert_eq!(shown(&again), shown(&built));
    }

    #[test]
    fn plans_of_every_kind_read_back_as_built() {
        // Zones (a fixed offset, an IANA name), scales, time formats and vendor layouts.
        /// A sample, its file name, and `[input]` settings.
        type Case<'a> = (&'a [u8], &'a str, &'a [(&'a str, &'a str)]);
        let cases: [Case; 4] = [
            (SAMPLE, "a.csv", &[("timezone", "America/New_York")]),
            (
                b"20200101 170000065,1.1,1.2,0\n20200101 170001065,1.1,1.3,0\n",
                "DAT_ASCII_EURUSD_T_202001.csv",
                &[],
            ),
            (
                b"34200.0042,1,1,100,1859300,1\n34200.5,1,2,100,1859400,-1\n",
                "AAPL_2012-06-21_34200000_57600000_message_1.csv",
                &[],
            ),
            (
                SAMPLE,
                "b.csv",
                &[("timezone", "+05:30"), ("price_scale", "0.0001")],
            ),
        ];
        for (sample, name, settings) in cases {
            let memo = PlanMemo::new(8);
            let mut o = opts(&memo);
            for (k, v) in settings {
                match *k {
                    "timezone" => o.input.timezone = (*v).to_string(),
                    "price_scale" => o.input.price_scale = v.parse().unwrap(),
                    _ => unreachable!(),
                }
            }
            let built = plan_for(sample, true, name, &o, PlanUse::Keep).unwrap();
            let taken = plan_for(sample, true, name, &o, PlanUse::Take).unwrap();
            assert_eq!(shown(&taken), shown(&built), "{name}");
            assert!(memo.is_empty(), "{name}: kept and taken");
        }
    }

    #[test]
    fn another_sample_name_or_setting_misses() {
        let memo = PlanMemo::new(8);
        let o = opts(&memo);
        plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Keep).unwrap();
        let changed = b"ts,symbol,price,size\n2024-01-02T14:30:00Z,AAPL,185.5,200\n";
        let p = plan_for(changed, true, "a.csv", &o, PlanUse::Take).unwrap();
        assert_eq!(p.names.len(), 4, "built from its own sample");
        assert_eq!(memo.len(), 1);
        plan_for(SAMPLE, false, "a.csv", &o, PlanUse::Take).unwrap();
        plan_for(SAMPLE, true, "b.csv", &o, PlanUse::Take).unwrap();
        let strict = ReadOptions {
            strict: true,
            ..o.clone()
        };
        let p = plan_for(SAMPLE, true, "a.csv", &strict, PlanUse::Take).unwrap();
        assert!(p.strict);
        assert_eq!(memo.len(), 1, "no miss took the kept plan");
        // The kept plan is still there for the open that matches it.
        plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Take).unwrap();
        assert!(memo.is_empty());
    }

    #[test]
    fn a_full_memo_keeps_no_more_and_own_sniffs_never_touch_it() {
        let memo = PlanMemo::new(2);
        let o = opts(&memo);
        for name in ["a.csv", "b.csv", "c.csv"] {
            plan_for(SAMPLE, true, name, &o, PlanUse::Keep).unwrap();
        }
        assert_eq!(memo.len(), 2);
        let c = plan_for(SAMPLE, true, "c.csv", &o, PlanUse::Take).unwrap();
        assert_eq!(memo.len(), 2, "c.csv was not kept, so nothing was taken");
        assert_eq!(c.file, "c.csv");
        plan_for(SAMPLE, true, "a.csv", &o, PlanUse::Own).unwrap();
        assert_eq!(memo.len(), 2);
        // Without a memo every sniff builds.
        let none = ReadOptions::default();
        plan_for(SAMPLE, true, "a.csv", &none, PlanUse::Keep).unwrap();
        assert_eq!(memo.len(), 2);
    }
}
