//! [`Runtime`]: the one owned thread-pool handle every parallel piece of a run uses, in the
//! manner of polars' runtime (STYLE.md): a rayon pool for CPU-bound batch work (map-reduce,
//! the normalisation fit and rewrite), and named dedicated threads for the engine's blocking
//! loops (readers, workers, the quarantine writer), which must not occupy pool threads
//! because they wait on channels.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use pipeline_core::{Error, Result};

/// A cheap-to-clone handle on a run's threads.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use pipeline_parallel::Runtime;
///
/// let rt = Runtime::new(2)?;
/// let squares = rt.map(&[1, 2, 3], 2, &AtomicBool::new(false), &|x: &i32| Ok(x * x))?;
/// assert_eq!(squares, Some(vec![1, 4, 9]));
/// let h = rt.spawn("tickpipe-example", || 40 + 2)?;
/// assert_eq!(h.join().unwrap(), 42);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    threads: usize,
    /// Started on first use: a run that never maps anything starts no pool threads.
    pool: Arc<OnceLock<std::result::Result<rayon::ThreadPool, String>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Runtime {
    /// A runtime whose pool has `threads` threads (at least one); the pool starts on first
    /// use.
    pub fn new(threads: usize) -> Result<Self> {
        Ok(Runtime {
            threads: threads.max(1),
            pool: Arc::new(OnceLock::new()),
        })
    }

    /// A runtime with one pool thread per core.
    pub fn per_core() -> Result<Self> {
        Runtime::new(pipeline_core::cores())
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn pool(&self) -> Result<&rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("tickpipe-pool-{i}"))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Internal(format!("cannot start the thread pool: {e}")))
    }

    /// Runs `f` inside the pool (rayon's parallel iterators inside it use the pool).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        Ok(self.pool()?.install(f))
    }

    /// Starts a dedicated, named thread for a blocking loop (a reader, a worker, a writer).
    pub fn spawn<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<T>> {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(f)
            .map_err(|e| Error::Internal(format!("cannot spawn thread `{name}`: {e}")))
    }

    /// Applies `f` to every item on the pool, at most `limit` at a time (a memory bound: each
    /// item may hold a row group), and returns the results in item order. The first error
    /// (in item order) is returned and stops the others after their current item; `None`
    /// when `cancel` was set before every item was done.
    pub fn map<T: Sync, R: Send>(
        &self,
        items: &[T],
        limit: usize,
        cancel: &AtomicBool,
        f: &(dyn Fn(&T) -> Result<R> + Sync),
    ) -> Result<Option<Vec<R>>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let slots: Vec<std::sync::Mutex<Option<Result<R>>>> =
            items.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let tasks = limit.clamp(1, items.len().max(1)).min(self.threads());
        self.pool()?.scope(|s| {
            for _ in 0..tasks {
                s.spawn(|_| {
                    while !cancel.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else { return };
                        let r = f(item);
                        if r.is_err() {
                            stop.store(true, Ordering::SeqCst);
                        }
                        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(items.len());
        // Items left undone (cancelled, or stopped by an error) have no result.
        for slot in slots {
            if let Some(r) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                out.push(r?);
            }
        }
        Ok((out.len() == items.len()).then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_and_respects_the_limit() {
        let rt = Runtime::new(4).unwrap();
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u64> = (0..64).collect();
        let out = rt
            .map(&items, 2, &AtomicBool::new(false), &|x: &u64| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(x * 2)
            })
            .unwrap()
            .unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 2);
    }

    #[test]
    fn first_error_in_item_order_and_cancel() {
        let rt = Runtime::new(2).unwrap();
        let e = rt
            .map(&[1, 2, 3], 1, &AtomicBool::new(false), &|x: &i32| {
                if *x >= 2 {
                    Err(Error::Usage(format!("bad {x}")))
                } else {
                    Ok(*x)
                }
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "bad 2");
        let none = rt
            .map(&[1, 2], 2, &AtomicBool::new(true), &|x: &i32| Ok(*x))
            .unwrap();
        assert!(none.is_none());
        assert_eq!(
            rt.map(&[] as &[i32], 2, &AtomicBool::new(false), &|x: &i32| Ok(*x))
                .unwrap(),
            Some(vec![])
        );
    }
}
