//! [`CacheKey`] (a 128-bit content hash) and [`Namespace`] (which family of entries a key
//! belongs to).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use twox_hash::XxHash3_128;

use crate::error::CacheError;

/// A content key: the 128-bit XXH3 hash of the parts that determine a value.
///
/// XXH3's output is fixed by its specification (frozen since xxHash 0.8.0), so the same parts
/// give the same key on every machine, build and run, which is what a cache that outlives its
/// process needs (`std`'s `DefaultHasher` is not stable across Rust releases). At 128 bits the
/// chance that two of even 10^12 different values collide is about 10^-15, so a key can stand
/// for its value's inputs without storing them. XXH3 is not a cryptographic hash: keys guard
/// against accidents, not against someone crafting collisions, which a local cache does not
/// face.
///
/// ```
/// use pipeline_cache::CacheKey;
/// let a = CacheKey::of(["trades_2024-01-02.csv|1234|5678", "clean:9f3a"]);
/// assert_eq!(a, CacheKey::of(["trades_2024-01-02.csv|1234|5678", "clean:9f3a"]));
/// // Parts are length-prefixed: moving bytes between parts changes the key.
/// assert_ne!(CacheKey::of(["ab", "c"]), CacheKey::of(["a", "bc"]));
/// assert_eq!(a.to_string().parse::<CacheKey>()?, a);
/// # Ok::<(), pipeline_cache::CacheError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub u128);

impl CacheKey {
    /// The key of `parts`: XXH3-128 over each part's length (u64, little endian) and bytes.
    pub fn of<I, P>(parts: I) -> CacheKey
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let mut h = XxHash3_128::new();
        for p in parts {
            let p = p.as_ref();
            h.write(&(p.len() as u64).to_le_bytes());
            h.write(p);
        }
        CacheKey(h.finish_128())
    }

    /// A key derived from this one and more `parts`, e.g. the key of a stage's output from the
    /// key of its input and the stage's configuration key.
    pub fn then<I, P>(&self, parts: I) -> CacheKey
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let mut h = XxHash3_128::new();
        let own = self.to_bytes();
        h.write(&(own.len() as u64).to_le_bytes());
        h.write(&own);
        for p in parts {
            let p = p.as_ref();
            h.write(&(p.len() as u64).to_le_bytes());
            h.write(p);
        }
        CacheKey(h.finish_128())
    }

    /// The key's 16 bytes, big endian (the order of its hex form).
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for CacheKey {
    type Err = CacheError;

    /// Parses the 32 hex digits [`CacheKey`]'s `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(CacheError::Invalid(format!(
                "`{s}` is not a cache key: expected 32 hex digits"
            )));
        }
        u128::from_str_radix(s, 16)
            .map(CacheKey)
            .map_err(|_| CacheError::Invalid(format!("`{s}` is not a cache key: not hex")))
    }
}

impl Serialize for CacheKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CacheKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A family of entries: keys are unique within a namespace, and a namespace can be listed,
/// counted and cleared on its own.
///
/// The constants are the namespaces tickpipe itself uses; users' own values go to
/// [`Namespace::USER`] (what [`CacheManager::put`](crate::CacheManager::put) uses). Names
/// are 1–64 characters of `a-z`, `0-9`, `-`, `_` and `.`.
///
/// ```
/// use pipeline_cache::Namespace;
/// assert_eq!(Namespace::STATE.as_str(), "state");
/// assert!(Namespace::new("my-features").is_ok());
/// assert!(Namespace::new("Bad Name").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Namespace(Cow<'static, str>);

impl Namespace {
    /// Stage outputs of one input file (the rows a stage chain produced from it).
    pub const STAGE_OUTPUT: Namespace = Namespace(Cow::Borrowed("stage-output"));
    /// Snapshots of per-symbol stage state at an input-file boundary.
    pub const STATE: Namespace = Namespace(Cow::Borrowed("state"));
    /// Small metadata: run records, pipeline-io's per-file sniffing results.
    pub const META: Namespace = Namespace(Cow::Borrowed("meta"));
    /// Values put by users through the seed's `put(key, batch)` API.
    pub const USER: Namespace = Namespace(Cow::Borrowed("user"));

    /// A namespace named `name`; [`CacheError::Invalid`] when the name is empty, longer than
    /// 64 bytes, or has characters other than `a-z`, `0-9`, `-`, `_`, `.`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Result<Namespace, CacheError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if ok {
            Ok(Namespace(name))
        } else {
            Err(CacheError::Invalid(format!(
                "`{name}` is not a namespace name: use 1-64 characters of a-z, 0-9, -, _ and ."
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Namespace::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_across_builds() {
        // XXH3-128 is specified, so this value must never change (every cache on disk would
        // be lost). Reference: Python's `xxhash.xxh3_128_intdigest(b"\x08" + 7 * b"\0" +
        // b"tickpipe")`, i.e. the length prefix then the bytes.
        assert_eq!(
            CacheKey::of(["tickpipe"]).to_string(),
            "94ebff9518f3bd71294fdd359962ebd3"
        );
        let k = CacheKey::of([b"a".as_slice(), b"b".as_slice()]);
        assert_eq!(k, CacheKey::of(["a", "b"]));
        assert_ne!(k, CacheKey::of(["a", "b", ""]));
        assert_ne!(k.then(["x"]), k.then(["y"]));
        assert_ne!(k.then(["x"]), CacheKey::of(["x"]));
    }

    #[test]
    fn key_text_round_trips_and_bad_text_is_an_error() {
        let k = CacheKey::of(["x"]);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), k);
        assert!("xyz".parse::<CacheKey>().is_err());
        assert!("g".repeat(32).parse::<CacheKey>().is_err());
    }

    #[test]
    fn namespace_names_are_checked() {
        for ok in ["state", "a", "x.y_z-1", &"a".repeat(64)] {
            assert!(Namespace::new(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a b", "é", &"a".repeat(65)] {
            assert!(Namespace::new(bad.to_string()).is_err(), "{bad}");
        }
    }
}
