//! Routing rows to workers: by key (every row of a symbol to one worker) or, when no stage
//! needs keys, whole chunks round-robin.
//!
//! Keys are assigned to workers by a [`KeyAssigner`]. The keys in the first chunk of the
//! run's first source are spread heaviest first over the workers (Graham's LPT rule on their
//! row counts in that chunk); keys first seen anywhere else are hashed
//! ([`pipeline_core::partition_of`]). Hashing alone, as this module first did, left the 20 symbols of a gen-data
//! file split 65/35 over two workers (measured with `perf report -s pid` on a 5M-row run: one
//! worker thread at 49.8% of the process's CPU, the other at 28.9%; with LPT 38.8/37.7), so
//! the busier worker bounded the run. Only that first chunk is used, and the other readers
//! wait for it, so that the assignment (and so each worker's files) is the same on every run
//! of the same input: readers run concurrently, and "least loaded so far" would depend on
//! their timing. Once assigned, a key keeps its worker for the whole run, and the assignment
//! is saved in the run manifest so a resumed run routes every key to the worker that holds
//! its stage state.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, UInt64Array};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, Result, partition_of as partition};

/// Which worker owns each key, shared by the readers of one run.
#[derive(Debug)]
pub(crate) struct KeyAssigner {
    workers: usize,
    inner: Mutex<Assignment>,
    seeded: Condvar,
}

#[derive(Debug)]
struct Assignment {
    /// Worker of each key seen so far.
    owner: HashMap<Vec<u8>, usize>,
    /// Whether the first chunk of the first source has been assigned (or that source ended
    /// without one); until then other readers wait.
    seeded: bool,
}

impl KeyAssigner {
    /// An assigner for `workers` workers, seeded with the assignment of an interrupted run
    /// (keys naming a worker out of range are refused). A saved assignment counts as the
    /// seed.
    pub fn new(workers: usize, saved: &[(String, usize)]) -> Result<Self> {
        let workers = workers.max(1);
        let mut owner = HashMap::with_capacity(saved.len());
        for (k, w) in saved {
            if *w >= workers {
                return Err(Error::Usage(format!(
                    "cannot resume: key `{k}` was assigned to worker {w} of {workers}"
                )));
            }
            owner.insert(k.as_bytes().to_vec(), *w);
        }
        Ok(KeyAssigner::with_owner(workers, owner))
    }

    /// An assigner seeded with each key's expected rows: heaviest first to the least loaded
    /// worker, the rule the first chunk seeds with otherwise. Keys not listed are hashed.
    pub fn weighted(workers: usize, weights: &[(String, u64)]) -> Self {
        let a = KeyAssigner::with_owner(workers.max(1), HashMap::with_capacity(weights.len()));
        let keys: Vec<(&[u8], u64)> = weights.iter().map(|(k, n)| (k.as_bytes(), *n)).collect();
        a.assign(&keys, true);
        a
    }

    /// An assigner with `owner` as its assignment so far; seeded when it holds any key.
    fn with_owner(workers: usize, owner: HashMap<Vec<u8>, usize>) -> Self {
        KeyAssigner {
            workers,
            inner: Mutex::new(Assignment {
                seeded: !owner.is_empty(),
                owner,
            }),
            seeded: Condvar::new(),
        }
    }

    /// The assignment so far, sorted by key (for the run manifest).
    pub fn snapshot(&self) -> Vec<(String, usize)> {
        let a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, usize)> = a
            .owner
            .iter()
            .map(|(k, w)| (String::from_utf8_lossy(k).into_owned(), *w))
            .collect();
        v.sort();
        v
    }

    /// Lets waiting readers go on without a seed: the first source ended (empty, failed or
    /// cancelled) before routing a chunk. Called when its reader finishes, whatever the
    /// outcome.
    pub fn release(&self) {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        a.seeded = true;
        self.seeded.notify_all();
    }

    /// Workers of the distinct keys of one chunk, given each key's row count in it. Known
    /// keys keep their worker. With `seeding` (the first source's reader) and no seed yet,
    /// the new keys go heaviest first to the least-loaded worker and become the seed;
    /// otherwise this waits for the seed and hashes new keys.
    fn assign(&self, keys: &[(&[u8], u64)], seeding: bool) -> Vec<usize> {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if seeding && !a.seeded {
            let mut order: Vec<usize> = (0..keys.len()).collect();
            // Heaviest first; ties by key so the result does not depend on dictionary order.
            order.sort_by(|&x, &y| keys[y].1.cmp(&keys[x].1).then(keys[x].0.cmp(keys[y].0)));
            let mut load = vec![0u64; self.workers];
            for i in order {
                let (k, n) = keys[i];
                // A value may sit in two dictionary slots of one chunk: the second finds
                // the first's worker.
                let w = match a.owner.get(k) {
                    Some(&w) => w,
                    None => {
                        let w = (0..self.workers).min_by_key(|&w| load[w]).unwrap_or(0);
                        a.owner.insert(k.to_vec(), w);
                        w
                    }
                };
                load[w] += n;
            }
            a.seeded = true;
            self.seeded.notify_all();
        }
        while !a.seeded {
            a = self.seeded.wait(a).unwrap_or_else(|p| p.into_inner());
        }
        keys.iter()
            .map(|(k, _)| match a.owner.get(*k) {
                Some(&w) => w,
                None => {
                    let w = partition(k, self.workers);
                    a.owner.insert(k.to_vec(), w);
                    w
                }
            })
            .collect()
    }
}

/// How deliveries are spread over workers.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// Rows go to the worker their key's [`KeyAssigner`] names; null keys go to worker 0.
    ByKey(String, Arc<KeyAssigner>),
    /// Delivery `d` goes whole to worker `d % workers`.
    RoundRobin,
}

/// Splits `chunk` (delivery number `d`) into one part per worker (`None` = no rows).
/// `seeding`: the chunk comes from the run's first source (see [`KeyAssigner`]).
pub(crate) fn split(
    chunk: Chunk,
    d: u64,
    route: &Route,
    workers: usize,
    seeding: bool,
) -> Result<Vec<Option<Chunk>>> {
    let mut parts: Vec<Option<Chunk>> = vec![None; workers];
    if workers == 1 {
        parts[0] = Some(chunk);
        return Ok(parts);
    }
    let key = match route {
        Route::RoundRobin => {
            parts[(d % workers as u64) as usize] = Some(chunk);
            return Ok(parts);
        }
        Route::ByKey(k, assigner) => (k, assigner),
    };
    let dest = destinations(&chunk, key.0, key.1, seeding)?;
    let mut idx: Vec<Vec<u64>> = vec![Vec::new(); workers];
    for (row, w) in dest.iter().enumerate() {
        idx[*w].push(row as u64);
    }
    let n = chunk.num_rows();
    for (w, rows) in idx.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        parts[w] = Some(if rows.len() == n {
            chunk.clone()
        } else {
            chunk.take(&UInt64Array::from(rows))?
        });
    }
    Ok(parts)
}

/// The worker of each row. Keys are looked up once per distinct value of the chunk.
fn destinations(
    chunk: &Chunk,
    key: &str,
    assigner: &KeyAssigner,
    seeding: bool,
) -> Result<Vec<usize>> {
    let col = chunk
        .column_by_name(key)
        .ok_or_else(|| Error::Schema(format!("key column `{key}` is missing")))?;
    match col.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let dict = col.as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            let mut count = vec![0u64; values.len()];
            for i in 0..dict.len() {
                if let Some(c) = count.get_mut(dict.keys().value(i) as usize)
                    && !dict.is_null(i)
                {
                    *c += 1;
                }
            }
            let used: Vec<usize> = (0..values.len()).filter(|&v| count[v] > 0).collect();
            let keys: Vec<(&[u8], u64)> = used
                .iter()
                .map(|&v| (values.value(v).as_bytes(), count[v]))
                .collect();
            let workers = assigner.assign(&keys, seeding);
            let mut of_value = vec![0usize; values.len()];
            for (&v, &w) in used.iter().zip(&workers) {
                of_value[v] = w;
            }
            Ok((0..dict.len())
                .map(|i| {
                    if dict.is_null(i) {
                        0
                    } else {
                        of_value
                            .get(dict.keys().value(i) as usize)
                            .copied()
                            .unwrap_or(0)
                    }
                })
                .collect())
        }
        DataType::Utf8 => {
            let s = col.as_string::<i32>();
            let mut index: HashMap<&[u8], usize> = HashMap::new();
            let mut keys: Vec<(&[u8], u64)> = Vec::new();
            let slots: Vec<Option<usize>> = (0..s.len())
                .map(|i| {
                    if s.is_null(i) {
                        return None;
                    }
                    let k = s.value(i).as_bytes();
                    let slot = *index.entry(k).or_insert_with(|| {
                        keys.push((k, 0));
                        keys.len() - 1
                    });
                    keys[slot].1 += 1;
                    Some(slot)
                })
                .collect();
            let workers = assigner.assign(&keys, seeding);
            Ok(slots
                .into_iter()
                .map(|slot| slot.map_or(0, |k| workers[k]))
                .collect())
        }
        other => Err(Error::Schema(format!(
            "key column `{key}` must be Dictionary(Int32, Utf8) or Utf8, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};

    fn chunk(syms: &[Option<&str>]) -> Chunk {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "symbol",
            DataType::Utf8,
            true,
        )]));
        let b =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(syms.to_vec()))]).unwrap();
        Chunk::with_first_line(b, 0, 0, 1).unwrap()
    }

    fn owners(parts: &[Option<Chunk>]) -> HashMap<Option<String>, usize> {
        let mut m = HashMap::new();
        for (w, p) in parts.iter().enumerate() {
            if let Some(c) = p {
                let s = c.column_by_name("symbol").unwrap().as_string::<i32>();
                for i in 0..s.len() {
                    let k = (!s.is_null(i)).then(|| s.value(i).to_string());
                    assert_eq!(*m.entry(k).or_insert(w), w, "a key reached two workers");
                }
            }
        }
        m
    }

    #[test]
    fn every_row_goes_to_its_keys_worker_in_every_chunk() {
        let route = Route::ByKey("symbol".into(), Arc::new(KeyAssigner::new(3, &[]).unwrap()));
        let syms = [Some("AAPL"), Some("MSFT"), None, Some("AAPL"), Some("IBM")];
        let first = owners(&split(chunk(&syms), 0, &route, 3, true).unwrap());
        assert_eq!(first[&None], 0, "null keys go to worker 0");
        let mut later = syms;
        later.reverse();
        let second = owners(&split(chunk(&later), 1, &route, 3, false).unwrap());
        assert_eq!(first, second);
        let total: usize = split(chunk(&syms), 2, &route, 3, false)
            .unwrap()
            .iter()
            .flatten()
            .map(|p| p.num_rows())
            .sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn the_first_chunk_is_spread_heaviest_first_and_later_keys_are_hashed() {
        let a = KeyAssigner::new(2, &[]).unwrap();
        let keys: Vec<(&[u8], u64)> =
            vec![(b"E", 10), (b"A", 50), (b"C", 20), (b"B", 30), (b"D", 20)];
        let w = a.assign(&keys, true);
        let mut load = [0u64; 2];
        for ((_, n), w) in keys.iter().zip(&w) {
            load[*w] += n;
        }
        // LPT: A→0, B→1, C→1 (30 < 50), D→0 (tie 50/50: lowest worker), E→1.
        assert_eq!(w, vec![1, 0, 1, 1, 0]);
        assert_eq!(load, [70, 60]);
        // Known keys keep their worker whatever the new counts; the first source's later
        // chunks do not seed again; new keys are hashed.
        assert_eq!(a.assign(&[(b"A", 1000), (b"E", 1)], true), vec![0, 1]);
        for k in [&b"ZZ"[..], b"Q", b"MSFT"] {
            assert_eq!(a.assign(&[(k, 1_000_000)], true), vec![partition(k, 2)]);
        }
        // One new value in two dictionary slots gets one worker.
        let b = KeyAssigner::new(2, &[]).unwrap();
        assert_eq!(b.assign(&[(b"F", 5), (b"F", 3)], true), vec![0, 0]);
    }

    #[test]
    fn known_weights_seed_the_assignment_and_the_first_chunk_does_not() {
        let weights: Vec<(String, u64)> = [("E", 10), ("A", 50), ("C", 20), ("B", 30), ("D", 20)]
            .iter()
            .map(|(k, n)| ((*k).to_string(), *n))
            .collect();
        let a = KeyAssigner::weighted(2, &weights);
        // LPT as for a first chunk: A→0, B→1, C→1, D→0, E→1; a first chunk with other
        // counts (E heaviest) changes nothing, and readers need not wait for it.
        let keys: Vec<(&[u8], u64)> = vec![(b"E", 900), (b"A", 1), (b"C", 1), (b"B", 1), (b"D", 1)];
        assert_eq!(a.assign(&keys, false), vec![1, 0, 1, 1, 0]);
        assert_eq!(a.assign(&[(b"MSFT", 5)], true), vec![partition(b"MSFT", 2)]);
        assert_eq!(a.snapshot().len(), 6);
    }

    #[test]
    fn other_readers_wait_for_the_seed_or_its_release() {
        for release in [false, true] {
            let a = Arc::new(KeyAssigner::new(2, &[]).unwrap());
            let a2 = a.clone();
            let waiter = std::thread::spawn(move || a2.assign(&[(b"B", 1)], false));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!waiter.is_finished(), "a reader went on before the seed");
            if release {
                a.release();
                assert_eq!(waiter.join().unwrap(), vec![partition(b"B", 2)]);
            } else {
                // B in the first chunk (lighter than A) goes to worker 1, not its hash.
                assert_eq!(a.assign(&[(b"A", 9), (b"B", 1)], true), vec![0, 1]);
                assert_eq!(waiter.join().unwrap(), vec![1]);
            }
        }
    }

    #[test]
    fn a_resumed_run_keeps_the_saved_assignment() {
        let a = KeyAssigner::new(2, &[]).unwrap();
        a.assign(&[(b"MSFT", 5), (b"AAPL", 9)], true);
        let saved = a.snapshot();
        assert_eq!(saved, vec![("AAPL".into(), 0), ("MSFT".into(), 1)]);
        let b = KeyAssigner::new(2, &saved).unwrap();
        assert_eq!(b.assign(&[(b"MSFT", 100), (b"AAPL", 1)], true), vec![1, 0]);
        assert!(KeyAssigner::new(1, &saved).is_err());
    }
}
