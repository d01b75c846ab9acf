//! The collector every stage instance of a plan reports to at `finish`: counts add,
//! examples keep the smallest `(file, line)`, histograms and file fingerprints merge, so the
//! merged result does not depend on the worker count.

use std::collections::HashMap;

use pipeline_core::{FxBuildHasher, SourceId};

use crate::model::SymbolDay;
use crate::stage::Acc;

/// Results handed in by stage instances.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub acc: Option<Acc>,
    pub days: Vec<SymbolDay>,
    pub parts: usize,
    pub examples: usize,
}

impl Collector {
    /// A collector keeping `examples` examples per rule.
    pub(crate) fn new(examples: usize) -> Self {
        Collector {
            examples,
            ..Collector::default()
        }
    }

    /// Adds one stage instance's results.
    pub(crate) fn add(&mut self, acc: Acc, days: Vec<SymbolDay>) {
        self.parts += 1;
        self.days.extend(days);
        let Some(mine) = self.acc.as_mut() else {
            self.acc = Some(acc);
            return;
        };
        merge(mine, acc, self.examples);
    }

    /// Takes everything collected, leaving the collector empty.
    pub(crate) fn take(&mut self) -> (Option<Acc>, Vec<SymbolDay>, usize) {
        let parts = std::mem::take(&mut self.parts);
        (self.acc.take(), std::mem::take(&mut self.days), parts)
    }
}

/// The collector every stage instance of a plan and the plan itself share, with a signal
/// for each instance that hands its results in.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    collector: std::sync::Mutex<Collector>,
    handed_in: std::sync::Condvar,
}

impl Shared {
    /// A collector keeping `examples` examples per rule.
    pub(crate) fn new(examples: usize) -> Self {
        Shared {
            collector: std::sync::Mutex::new(Collector::new(examples)),
            handed_in: std::sync::Condvar::new(),
        }
    }

    /// Adds one stage instance's results and signals it.
    pub(crate) fn add(&self, acc: Acc, days: Vec<SymbolDay>) -> pipeline_core::Result<()> {
        lock(self)?.add(acc, days);
        self.handed_in.notify_all();
        Ok(())
    }

    /// Waits until `parts` stage instances have handed in (`true`) or `stop` is set
    /// (`false`; [`Shared::wake`] makes the waiter look at it at once).
    pub(crate) fn wait_for(
        &self,
        parts: usize,
        stop: &std::sync::atomic::AtomicBool,
    ) -> pipeline_core::Result<bool> {
        let mut c = lock(self)?;
        loop {
            if c.parts >= parts {
                return Ok(true);
            }
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(false);
            }
            c = self
                .handed_in
                .wait_timeout(c, std::time::Duration::from_millis(100))
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// Wakes a [`Shared::wait_for`] to look at its stop flag.
    pub(crate) fn wake(&self) {
        // Taken and released so that a waiter between its checks and its wait sees the
        // signal (it holds the lock there).
        drop(self.collector.lock());
        self.handed_in.notify_all();
    }
}

fn poisoned() -> pipeline_core::Error {
    pipeline_core::Error::Internal("validation collector poisoned".into())
}

/// Locks the collector of `s`.
pub(crate) fn lock(s: &Shared) -> pipeline_core::Result<std::sync::MutexGuard<'_, Collector>> {
    s.collector.lock().map_err(|_| poisoned())
}

/// Adds `b` into `a`.
pub(crate) fn merge(a: &mut Acc, b: Acc, examples: usize) {
    a.rows += b.rows;
    for (x, y) in a.failed.iter_mut().zip(&b.failed) {
        *x += y;
    }
    for (x, y) in a.checked.iter_mut().zip(&b.checked) {
        *x += y;
    }
    for (rule, exs) in b.examples.into_iter().enumerate() {
        for ex in std::sync::Arc::unwrap_or_clone(exs) {
            if a.wants(rule, ex.source, ex.line, examples) {
                a.keep(rule, ex, examples);
            }
        }
    }
    for (c, k) in b.col_nulls {
        match a.col_nulls.iter_mut().find(|(n, _)| *n == c) {
            Some(e) => e.1 += k,
            None => a.col_nulls.push((c, k)),
        }
    }
    for (c, t) in b.col_types {
        if !a.col_types.iter().any(|(n, _)| *n == c) {
            a.col_types.push((c, t));
        }
    }
    for (x, y) in [(&mut a.returns, b.returns), (&mut a.spreads, b.spreads)] {
        match (x.as_mut(), y) {
            (Some(h), Some(g)) => h.merge(&g),
            (None, Some(g)) => *x = Some(g),
            _ => {}
        }
    }
    // Indexed: a run over 100,000 files would otherwise compare 10^10 pairs here.
    let mut at: HashMap<SourceId, usize, FxBuildHasher> =
        a.files.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
    for (s, rows, sum) in b.files {
        match at.get(&s) {
            Some(&i) => {
                let f = &mut a.files[i];
                f.1 += rows;
                f.2 = f.2.wrapping_add(sum);
            }
            None => {
                at.insert(s, a.files.len());
                a.files.push((s, rows, sum));
            }
        }
    }
    for p in b.schema {
        if !a.schema.contains(&p) {
            a.schema.push(p);
        }
    }
}
