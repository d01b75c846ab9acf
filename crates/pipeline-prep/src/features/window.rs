//! Monotonic deques: rolling minimum and maximum in O(1) amortised per row.
//!
//! A window keyed by a non-decreasing position (a row counter, or a timestamp) keeps only the
//! candidates that can still become the extreme; each value is pushed and popped at most once.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Whether a [`MonoDeque`] tracks the minimum or the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extreme {
    /// The smallest value in the window.
    Min,
    /// The largest value in the window.
    Max,
}

/// Rolling minimum or maximum over positions `(newest - width, newest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonoDeque {
    kind: Extreme,
    items: VecDeque<(i64, f64)>,
}

impl MonoDeque {
    /// An empty window tracking `kind`.
    pub fn new(kind: Extreme) -> Self {
        MonoDeque {
            kind,
            items: VecDeque::new(),
        }
    }

    /// Adds `x` at position `pos` (positions must not decrease).
    pub fn push(&mut self, pos: i64, x: f64) {
        while let Some(&(_, back)) = self.items.back() {
            let dominated = match self.kind {
                Extreme::Min => back >= x,
                Extreme::Max => back <= x,
            };
            if !dominated {
                break;
            }
            self.items.pop_back();
        }
        self.items.push_back((pos, x));
    }

    /// Drops values at positions `<= oldest_excluded`.
    pub fn expire(&mut self, oldest_excluded: i64) {
        while let Some(&(p, _)) = self.items.front() {
            if p > oldest_excluded {
                break;
            }
            self.items.pop_front();
        }
    }

    /// The current extreme, if the window holds any value.
    pub fn get(&self) -> Option<f64> {
        self.items.front().map(|&(_, x)| x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_min_and_max_of_a_sliding_window() {
        let xs = [5.0, 3.0, 4.0, 4.0, 9.0, 1.0, 2.0, 2.0, 7.0];
        let mut lo = MonoDeque::new(Extreme::Min);
        let mut hi = MonoDeque::new(Extreme::Max);
        for (i, &x) in xs.iter().enumerate() {
            let i = i as i64;
            lo.push(i, x);
            hi.push(i, x);
            lo.expire(i - 3);
            hi.expire(i - 3);
            let w = &xs[(i - 2).max(0) as usize..=i as usize];
            assert_eq!(lo.get(), w.iter().copied().reduce(f64::min));
            assert_eq!(hi.get(), w.iter().copied().reduce(f64::max));
        }
    }
}
