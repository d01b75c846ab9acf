//! The disk tier's value format: a 32-byte header with a checksum, then the payload (Arrow
//! IPC stream with zstd-compressed buffers, or a byte blob, zstd-compressed when that
//! helps).
//!
//! ```text
//! 0  magic  b"TPCV"
//! 4  format version (u16 LE), FORMAT_VERSION
//! 6  kind (u8): 0 bytes, 1 Arrow IPC stream
//! 7  codec of the payload (u8): 0 none, 1 zstd (IPC payloads compress their own buffers: 0)
//! 8  payload length (u64 LE)
//! 16 raw size (u64 LE): the value's size in memory (bytes, or Arrow buffers)
//! 24 checksum (u64 LE): XXH3-64 of bytes 0..24 followed by the payload
//! 32 payload
//! ```
//!
//! The checksum is XXH3-64 (twox-hash, already built for parquet's bloom filters): it detects
//! flipped and lost bytes like a CRC does, runs at memory speed (tens of GB/s, so it costs
//! nothing next to zstd), and the same crate gives the 128-bit cache keys. A cryptographic
//! hash (blake3) would only add protection against deliberate tampering, which a local cache
//! does not need.

use std::fmt;
use std::hash::Hasher;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use twox_hash::XxHash3_64;

use crate::error::{CacheError, Result};

/// Version of the disk value format; entries of another version are dropped as unreadable.
pub const FORMAT_VERSION: u16 = 1;

const MAGIC: &[u8; 4] = b"TPCV";
pub(crate) const HEADER_BYTES: usize = 32;

/// zstd level of byte blobs: level 1 is the fastest, and the blobs we store (stage-state
/// snapshots, JSON metadata) are small, so a higher level would buy few bytes for much time.
const BLOB_ZSTD_LEVEL: i32 = 1;

/// Blobs shorter than this are stored as they are: zstd's frame header (≥ 9 bytes) would eat
/// what it saves.
const BLOB_COMPRESS_MIN: usize = 64;

/// A cached value: Arrow record batches (one or many, sharing a schema) or a byte blob.
#[derive(Debug, Clone)]
pub enum CacheValue {
    /// Record batches; cloning shares the column buffers.
    Batches(Arc<[RecordBatch]>),
    /// An opaque byte blob (stage-state snapshots, manifests, JSON).
    Bytes(Arc<[u8]>),
}

impl CacheValue {
    /// The value's size in memory: the Arrow buffers' capacity for batches (what
    /// `RecordBatch::get_array_memory_size` reports), the length for bytes. This is what the
    /// memory tier's byte bound counts.
    pub fn memory_size(&self) -> u64 {
        match self {
            CacheValue::Batches(b) => b.iter().map(|b| b.get_array_memory_size() as u64).sum(),
            CacheValue::Bytes(b) => b.len() as u64,
        }
    }

    /// What kind of value this is.
    pub fn kind(&self) -> ValueKind {
        match self {
            CacheValue::Batches(_) => ValueKind::Batches,
            CacheValue::Bytes(_) => ValueKind::Bytes,
        }
    }
}

/// The kind of a cached value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Arrow record batches.
    Batches,
    /// A byte blob.
    Bytes,
}

impl ValueKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            ValueKind::Bytes => 0,
            ValueKind::Batches => 1,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<ValueKind> {
        match c {
            0 => Some(ValueKind::Bytes),
            1 => Some(ValueKind::Batches),
            _ => None,
        }
    }
}

/// A value in its stored form.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Header and payload.
    pub bytes: Vec<u8>,
    /// The value's size in memory.
    pub raw_size: u64,
    pub kind: ValueKind,
}

/// Why a stored value could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Corruption {
    /// Shorter than the header, or than the header says.
    Truncated { expected: u64, found: u64 },
    /// Not a value record at all.
    BadMagic,
    /// Written by another format version.
    Version(u16),
    /// The checksum does not match.
    Checksum,
    /// The checksum matched but the payload does not decode (or has an unknown kind or
    /// codec).
    Undecodable(String),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Truncated { expected, found } => {
                write!(f, "truncated: {found} of {expected} bytes")
            }
            Corruption::BadMagic => f.write_str("not a cache value (bad magic)"),
            Corruption::Version(v) => {
                write!(f, "format version {v} (this build reads {FORMAT_VERSION})")
            }
            Corruption::Checksum => f.write_str("checksum mismatch"),
            Corruption::Undecodable(m) => write!(f, "undecodable payload: {m}"),
        }
    }
}

/// Encodes `batches` as an Arrow IPC stream with zstd-compressed buffers.
pub(crate) fn encode_batches(batches: &[RecordBatch]) -> Result<Encoded> {
    let Some(first) = batches.first() else {
        return Err(CacheError::Invalid(
            "cannot cache an empty list of batches (the schema would be lost); cache one empty batch instead"
                .into(),
        ));
    };
    let raw_size: u64 = batches
        .iter()
        .map(|b| b.get_array_memory_size() as u64)
        .sum();
    let mut out = vec![0u8; HEADER_BYTES];
    let enc = |e: arrow_schema::ArrowError| CacheError::Encode(e.to_string());
    let opts = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::ZSTD))
        .map_err(enc)?;
    {
        let mut w =
            StreamWriter::try_new_with_options(&mut out, &first.schema(), opts).map_err(enc)?;
        for b in batches {
            w.write(b).map_err(enc)?;
        }
        w.finish().map_err(enc)?;
    }
    seal(&mut out, ValueKind::Batches, 0, raw_size);
    Ok(Encoded {
        bytes: out,
        raw_size,
        kind: ValueKind::Batches,
    })
}

thread_local! {
    /// zstd contexts kept per thread: creating one per value (`zstd::bulk::compress` and
    /// `decompress` do) was half the cost of a cache read, 7% of an append run that looks
    /// up 1,258 file descriptions.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's compressor at [`BLOB_ZSTD_LEVEL`].
fn with_compressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(BLOB_ZSTD_LEVEL)?);
        }
        match c.as_mut() {
            Some(c) => f(c),
            None => Err(std::io::Error::other("no zstd compressor")),
        }
    })
}

/// Runs `f` with this thread's decompressor.
fn with_decompressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        match d.as_mut() {
            Some(d) => f(d),
            None => Err(std::io::Error::other("no zstd decompressor")),
        }
    })
}

/// Encodes a byte blob, zstd-compressed when that makes it smaller.
pub(crate) fn encode_bytes(bytes: &[u8]) -> Result<Encoded> {
    let mut out = Vec::with_capacity(HEADER_BYTES + bytes.len());
    out.resize(HEADER_BYTES, 0);
    let mut codec = 0;
    if bytes.len() >= BLOB_COMPRESS_MIN {
        let z = with_compressor(|c| c.compress(bytes))
            .map_err(|e| CacheError::Encode(e.to_string()))?;
        if z.len() < bytes.len() {
            out.extend_from_slice(&z);
            codec = 1;
        }
    }
    if codec == 0 {
        out.extend_from_slice(bytes);
    }
    seal(&mut out, ValueKind::Bytes, codec, bytes.len() as u64);
    Ok(Encoded {
        bytes: out,
        raw_size: bytes.len() as u64,
        kind: ValueKind::Bytes,
    })
}

/// Fills the header of `out` (whose payload follows the first `HEADER_BYTES`).
fn seal(out: &mut [u8], kind: ValueKind, codec: u8, raw_size: u64) {
    let payload_len = (out.len() - HEADER_BYTES) as u64;
    out[0..4].copy_from_slice(MAGIC);
    out[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[6] = kind.code();
    out[7] = codec;
    out[8..16].copy_from_slice(&payload_len.to_le_bytes());
    out[16..24].copy_from_slice(&raw_size.to_le_bytes());
    let sum = checksum(&out[..24], &out[HEADER_BYTES..]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
}

fn checksum(head: &[u8], payload: &[u8]) -> u64 {
    let mut h = XxHash3_64::with_seed(0);
    h.write(head);
    h.write(payload);
    h.finish()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks the header and checksum of a stored record; returns the kind, codec and payload.
pub(crate) fn verify(b: &[u8]) -> std::result::Result<(ValueKind, u8, &[u8]), Corruption> {
    if b.len() < HEADER_BYTES {
        return Err(Corruption::Truncated {
            expected: HEADER_BYTES as u64,
            found: b.len() as u64,
        });
    }
    if &b[0..4] != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version != FORMAT_VERSION {
        return Err(Corruption::Version(version));
    }
    let payload_len = u64_at(b, 8);
    let found = (b.len() - HEADER_BYTES) as u64;
    if found != payload_len {
        return Err(Corruption::Truncated {
            expected: payload_len + HEADER_BYTES as u64,
            found: b.len() as u64,
        });
    }
    let payload = &b[HEADER_BYTES..];
    if checksum(&b[..24], payload) != u64_at(b, 24) {
        return Err(Corruption::Checksum);
    }
    let kind = ValueKind::from_code(b[6])
        .ok_or_else(|| Corruption::Undecodable(format!("unknown value kind {}", b[6])))?;
    Ok((kind, b[7], payload))
}

/// Decodes a stored record; any damage is a [`Corruption`], never a panic.
pub(crate) fn decode(b: &[u8]) -> std::result::Result<CacheValue, Corruption> {
    let (kind, codec, payload) = verify(b)?;
    let raw_size = u64_at(b, 16);
    match (kind, codec) {
        (ValueKind::Bytes, 0) => Ok(CacheValue::Bytes(Arc::from(payload))),
        (ValueKind::Bytes, 1) => {
            // The raw size bounds the allocation; a damaged size was caught by the checksum.
            let v = with_decompressor(|d| d.decompress(payload, raw_size as usize))
                .map_err(|e| Corruption::Undecodable(e.to_string()))?;
            if v.len() as u64 != raw_size {
                return Err(Corruption::Undecodable(format!(
                    "blob decompressed to {} bytes, header says {raw_size}",
                    v.len()
                )));
            }
            Ok(CacheValue::Bytes(Arc::from(v)))
        }
        (ValueKind::Batches, 0) => {
            let bad = |e: arrow_schema::ArrowError| Corruption::Undecodable(e.to_string());
            let reader = StreamReader::try_new(Cursor::new(payload), None).map_err(bad)?;
            let batches = reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(bad)?;
            if batches.is_empty() {
                return Err(Corruption::Undecodable("IPC stream without batches".into()));
            }
            Ok(CacheValue::Batches(Arc::from(batches)))
        }
        (_, c) => Err(Corruption::Undecodable(format!("unknown codec {c}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};

    fn batch(n: i64) -> RecordBatch {
        arrow_array::record_batch!(
            ("ts", Int64, (0..n).collect::<Vec<_>>()),
            (
                "price",
                Float64,
                (0..n).map(|i| 100.0 + i as f64 / 8.0).collect::<Vec<_>>()
            )
        )
        .unwrap()
    }

    fn batches_eq(a: &CacheValue, b: &[RecordBatch]) -> bool {
        matches!(a, CacheValue::Batches(x) if x.as_ref() == b)
    }

    #[test]
    fn batches_and_blobs_round_trip() {
        let bs = vec![batch(1000), batch(3)];
        let e = encode_batches(&bs).unwrap();
        assert_eq!(e.kind, ValueKind::Batches);
        assert!(batches_eq(&decode(&e.bytes).unwrap(), &bs));
        for blob in [
            vec![],
            b"tiny".to_vec(),
            vec![7u8; 10_000],
            (0..=255u8).collect(),
        ] {
            let e = encode_bytes(&blob).unwrap();
            match decode(&e.bytes).unwrap() {
                CacheValue::Bytes(b) => assert_eq!(&b[..], &blob[..]),
                other => panic!("{other:?}"),
            }
        }
        // A repetitive blob is stored compressed.
        assert!(encode_bytes(&[7u8; 10_000]).unwrap().bytes.len() < 1_000);
    }

    #[test]
    fn strings_and_nulls_round_trip() {
        let b = RecordBatch::try_from_iter([
            (
                "symbol",
                Arc::new(StringArray::from(vec![Some("AAPL"), None, Some("MSFT")])) as _,
            ),
            (
                "size",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as _,
            ),
            (
                "px",
                Arc::new(Float64Array::from(vec![None, Some(1.5), Some(2.5)])) as _,
            ),
        ])
        .unwrap();
        let e = encode_batches(std::slice::from_ref(&b)).unwrap();
        assert!(batches_eq(&decode(&e.bytes).unwrap(), &[b]));
    }

    #[test]
    fn checksum_is_xxh3_64() {
        // Reference: Python's `xxhash.xxh3_64_intdigest(b"abc")`.
        assert_eq!(checksum(b"ab", b"c"), 0x78af5f94892f3950);
    }

    #[test]
    fn empty_batch_list_is_refused() {
        assert!(matches!(encode_batches(&[]), Err(CacheError::Invalid(_))));
    }

    #[test]
    fn every_kind_of_damage_is_detected() {
        let good = encode_batches(&[batch(500)]).unwrap().bytes;
        // Any single flipped byte, header or payload, is caught.
        for at in [
            0,
            5,
            6,
            9,
            17,
            25,
            HEADER_BYTES,
            HEADER_BYTES + 100,
            good.len() - 1,
        ] {
            let mut b = good.clone();
            b[at] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {at} not detected");
        }
        assert!(matches!(
            decode(&good[..good.len() - 10]),
            Err(Corruption::Truncated { .. })
        ));
        assert!(matches!(
            decode(&good[..10]),
            Err(Corruption::Truncated { .. })
        ));
        let mut other_version = good.clone();
        other_version[4] = 9;
        assert!(matches!(
            decode(&other_version),
            Err(Corruption::Version(9))
        ));
        // A payload that is not IPC but carries a valid checksum is undecodable, not a panic.
        let mut fake = vec![0u8; HEADER_BYTES];
        fake.extend_from_slice(b"definitely not an arrow ipc stream");
        seal(&mut fake, ValueKind::Batches, 0, 100);
        assert!(matches!(decode(&fake), Err(Corruption::Undecodable(_))));
        let mut bad_zstd = vec![0u8; HEADER_BYTES];
        bad_zstd.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        seal(&mut bad_zstd, ValueKind::Bytes, 1, 100);
        assert!(matches!(decode(&bad_zstd), Err(Corruption::Undecodable(_))));
    }
}
