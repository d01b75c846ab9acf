//! The public API over both tiers.

use std::sync::Arc;
use std::time::Duration;

use pipeline_cache::{CacheError, CacheKey, CacheManager, MemoryPolicy, Namespace, WriteBatch};

use crate::ticks;

fn key(i: u64) -> CacheKey {
    CacheKey::of([i.to_le_bytes()])
}

#[test]
fn seed_api_round_trips_batches_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(dir.path()).unwrap();
    let b = ticks(1, 1000);
    cache.put(key(1), &b).unwrap();
    cache.put_bytes(key(2), b"state").unwrap();
    assert_eq!(cache.get(key(1)).unwrap(), Some(b.clone()));
    assert_eq!(&*cache.get_bytes(key(2)).unwrap().unwrap(), b"state");
    // Asking for the wrong kind is an error, not a silent miss.
    assert!(matches!(
        cache.get_bytes(key(1)),
        Err(CacheError::Invalid(_))
    ));
    // Several batches come back concatenated from `get`, as they were from `get_batches`.
    let ns = cache.ns(Namespace::STAGE_OUTPUT);
    ns.put_batches(key(3), &[ticks(2, 10), ticks(3, 5)])
        .unwrap();
    assert_eq!(ns.get(key(3)).unwrap().unwrap().num_rows(), 15);
    assert_eq!(ns.get_batches(key(3)).unwrap().unwrap().len(), 2);
}

#[test]
fn disk_hits_are_promoted_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let b = ticks(7, 5000);
    {
        let cache = CacheManager::open(dir.path()).unwrap();
        cache.put(key(7), &b).unwrap();
    }
    let cache = CacheManager::open(dir.path()).unwrap();
    assert_eq!(cache.get(key(7)).unwrap(), Some(b.clone()));
    assert_eq!(cache.get(key(7)).unwrap(), Some(b));
    assert_eq!(cache.get(key(8)).unwrap(), None);
    let s = cache.get_stats().unwrap();
    let (m, d) = (s.memory.clone().unwrap(), s.disk.clone().unwrap());
    assert_eq!((s.lookups, s.hits, s.misses), (3, 2, 1));
    assert_eq!((m.hits, m.misses), (1, 2), "second read from memory");
    assert_eq!((d.tier.hits, d.tier.misses), (1, 1), "first read from disk");
    assert!((s.hit_rate - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(d.tier.entries, 1);
    assert!(d.tier.bytes > 0 && d.file_bytes >= d.tier.bytes);
    // The summary's `cache` object.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["disk"]["hits"], 1);
    assert_eq!(json["memory"]["policy"], "tinylfu");
    assert_eq!(json["disk"]["policy"], "lru");
}

#[test]
fn memory_tier_stays_under_its_byte_bound() {
    for policy in [MemoryPolicy::TinyLfu, MemoryPolicy::Lru] {
        let cache = CacheManager::builder()
            .memory_bytes(1 << 20)
            .memory_policy(policy)
            .build()
            .unwrap();
        let one = ticks(0, 2000).get_array_memory_size() as u64;
        for i in 0..64 {
            cache.put(key(i), &ticks(i, 2000)).unwrap();
        }
        let m = cache.get_stats().unwrap().memory.unwrap();
        assert!(m.bytes <= 1 << 20, "{policy:?}: {} bytes held", m.bytes);
        assert!(
            m.entries < 64 && m.entries * one <= 1 << 20,
            "{policy:?}: {m:?}"
        );
        assert!(m.evictions >= 64 - m.entries, "{policy:?}: {m:?}");
        if policy == MemoryPolicy::Lru {
            // LRU admits every entry, so the newest is always held.
            assert!(cache.get(key(63)).unwrap().is_some());
        }
    }
}

#[test]
fn memory_entries_expire_after_ttl_and_idle_time() {
    // moka's clock cannot be injected from outside, so these sleep: 0.3 s in all.
    let cache = CacheManager::builder()
        .memory_ttl(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    cache.put_bytes(key(1), b"x").unwrap();
    assert!(cache.get_bytes(key(1)).unwrap().is_some());
    std::thread::sleep(Duration::from_millis(150));
    assert!(cache.get_bytes(key(1)).unwrap().is_none(), "TTL passed");

    let cache = CacheManager::builder()
        .memory_tti(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    cache.put_bytes(key(1), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        cache.get_bytes(key(1)).unwrap().is_some(),
        "read within the idle time"
    );
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        cache.get_bytes(key(1)).unwrap().is_some(),
        "the read reset the idle time"
    );
    std::thread::sleep(Duration::from_millis(150));
    assert!(cache.get_bytes(key(1)).unwrap().is_none(), "idle too long");
    assert_eq!(cache.get_stats().unwrap().memory.unwrap().expirations, 1);
}

#[test]
fn write_batches_pins_and_namespaces_for_incremental_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::builder()
        .dir(dir.path())
        .disk_bytes(1 << 20)
        .build()
        .unwrap();
    let record = CacheKey::of(["run-record", "out/"]);
    let mut w = WriteBatch::new();
    w.put_batches(&Namespace::STAGE_OUTPUT, key(1), &[ticks(1, 100)])
        .put_bytes(&Namespace::STATE, key(1), b"state after file 1")
        .put_bytes(&Namespace::META, record, b"{\"inputs\": []}")
        .pin(&Namespace::META, record);
    assert_eq!(w.len(), 3);
    cache.write(w).unwrap();
    for ns in [Namespace::STAGE_OUTPUT, Namespace::STATE] {
        assert!(cache.ns(ns.clone()).contains(key(1)).unwrap());
        assert_eq!(cache.ns(ns).keys().unwrap(), vec![key(1)]);
    }
    let meta = cache.ns(Namespace::META);
    assert!(meta.entries().unwrap()[0].pinned);
    let r = cache.ns(Namespace::STATE).clear().unwrap();
    assert_eq!(r.removed, 1);
    assert!(cache.ns(Namespace::STATE).keys().unwrap().is_empty());
    assert!(cache.ns(Namespace::STAGE_OUTPUT).contains(key(1)).unwrap());
    // Fill the cache far past its bound: the pinned record stays.
    for i in 10..200 {
        cache
            .ns(Namespace::STAGE_OUTPUT)
            .put(key(i), &ticks(i, 3000))
            .unwrap();
    }
    let s = cache.get_stats().unwrap().disk.unwrap();
    assert!(s.tier.evictions > 0);
    assert!(s.tier.bytes <= 1 << 20);
    assert_eq!(
        &*meta.get_bytes(record).unwrap().unwrap(),
        b"{\"inputs\": []}"
    );
    assert!(meta.unpin(record).unwrap());
    assert!(meta.remove(record).unwrap());
    assert!(!meta.contains(record).unwrap());
}

#[test]
fn memory_only_cache_works_and_refuses_disk_operations() {
    let cache = CacheManager::builder().build().unwrap();
    assert!(cache.dir().is_none());
    cache.put_bytes(key(1), b"x").unwrap();
    assert!(cache.get_bytes(key(1)).unwrap().is_some());
    assert_eq!(cache.ns(Namespace::USER).keys().unwrap(), vec![key(1)]);
    assert!(cache.get_stats().unwrap().disk.is_none());
    assert!(cache.ns(Namespace::USER).pin(key(1)).is_err());
    assert!(cache.prune(&Default::default()).is_err());
    assert!(cache.ns(Namespace::USER).remove(key(1)).unwrap());
    assert!(cache.get_bytes(key(1)).unwrap().is_none());
}

#[test]
fn disk_only_cache_reads_from_disk_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::builder()
        .dir(dir.path())
        .memory_bytes(0)
        .build()
        .unwrap();
    cache.put(key(1), &ticks(1, 10)).unwrap();
    for _ in 0..3 {
        assert!(cache.get(key(1)).unwrap().is_some());
    }
    let s = cache.get_stats().unwrap();
    assert!(s.memory.is_none());
    assert_eq!(s.disk.unwrap().tier.hits, 3);
}

#[test]
fn one_manager_is_shared_by_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(
        CacheManager::builder()
            .dir(dir.path())
            .memory_bytes(256 << 10)
            .build()
            .unwrap(),
    );
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let cache = cache.clone();
            s.spawn(move || {
                for i in 0..40u64 {
                    let k = key(t * 1000 + i);
                    cache.put(k, &ticks(t * 1000 + i, 200)).unwrap();
                    // Everybody also reads everybody's early keys.
                    let shared = key((i % 4) * 1000);
                    if let Some(b) = cache.get(shared).unwrap() {
                        assert_eq!(b, ticks((i % 4) * 1000, 200));
                    }
                    assert_eq!(cache.get(k).unwrap(), Some(ticks(t * 1000 + i, 200)));
                }
            });
        }
    });
    let s = cache.get_stats().unwrap();
    assert_eq!(s.lookups, 4 * 40 * 2);
    assert_eq!(s.disk.as_ref().unwrap().tier.entries, 160);
    assert_eq!(cache.verify().unwrap().corrupt, 0);
    assert_eq!(cache.ns(Namespace::USER).keys().unwrap().len(), 160);
}

#[test]
fn pipeline_io_metadata_lives_in_the_meta_namespace() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = Arc::new(CacheManager::open(dir.path()).unwrap());
        let meta = pipeline_core::MetaCache::new(cache.clone());
        assert_eq!(meta.get("day1.csv|1|2"), None);
        meta.put("day1.csv|1|2", b"{\"rows\":10}");
        assert_eq!(
            meta.get("day1.csv|1|2").as_deref(),
            Some(&b"{\"rows\":10}"[..])
        );
        assert_eq!(cache.ns(Namespace::META).keys().unwrap().len(), 1);
    }
    // It persists with the cache, and a cache clear removes it.
    let cache = Arc::new(CacheManager::open(dir.path()).unwrap());
    let meta = pipeline_core::MetaCache::new(cache.clone());
    assert!(meta.get("day1.csv|1|2").is_some());
    cache.clear().unwrap();
    assert!(meta.get("day1.csv|1|2").is_none());
}
