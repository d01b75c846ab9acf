//! Large stage states in the run manifest, kept as content-addressed pieces.
//!
//! The manifest stores every worker's stage states at each segment end it keeps (up to 48).
//! A state of [`PACK_AT`] bytes or more (the validation stage's, which holds every closed
//! symbol-day) is cut into pieces of [`PIECE`] bytes; each piece is stored once, compressed,
//! under the 128-bit xxh3 hash of its bytes, and the state under its key with `#p` as the
//! list of its pieces. A stage that puts what only grows at the front of its state (the
//! validation stage's closed days) shares every whole piece of it with the segment end
//! before: on a one-day append to five years of days, committing the new segment end
//! compressed and wrote all 521 KB of the two validation states (4.6 ms while the workers
//! flushed), where now it writes the pieces that changed.
//!
//! A piece no list names any more (its segment ends were dropped or rewritten) is deleted in
//! the same transaction ([`collect_garbage`]). A piece that does not decompress, or whose
//! bytes no longer hash to its name, is an error, never a state.

use std::collections::HashSet;

use redb::{ReadableTable, TableDefinition};

/// The pieces, by the hash of their bytes: a flag byte (`0` as they are, `1` packed by
/// [`pack`]), then the bytes.
pub(crate) const PIECES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_pieces");

/// States of at least this many bytes are stored in pieces (smaller ones as they are).
pub(crate) const PACK_AT: usize = 64 << 10;

/// The size of a piece (the last one of a state may be shorter).
pub(crate) const PIECE: usize = 64 << 10;

type StorageResult<T> = std::result::Result<T, redb::StorageError>;

fn bad(m: String) -> redb::StorageError {
    redb::StorageError::Io(std::io::Error::other(m))
}

/// Where a state in pieces is listed: its key with `#p`.
pub(crate) fn pieces_key(key: &str) -> String {
    format!("{key}#p")
}

/// A piece's name: the 128-bit xxh3 hash of its bytes.
fn piece_id(bytes: &[u8]) -> [u8; 16] {
    twox_hash::XxHash3_128::oneshot(bytes).to_le_bytes()
}

/// A state cut into pieces: its list (length, then the pieces' names) and the pieces.
pub(crate) struct Cut<'a> {
    pub list: Vec<u8>,
    pub pieces: Vec<([u8; 16], &'a [u8])>,
}

/// Cuts `bytes` into pieces of [`PIECE`] bytes.
pub(crate) fn cut(bytes: &[u8]) -> Cut<'_> {
    let pieces: Vec<([u8; 16], &[u8])> = bytes.chunks(PIECE).map(|c| (piece_id(c), c)).collect();
    let mut list = Vec::with_capacity(8 + 16 * pieces.len());
    list.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    for (id, _) in &pieces {
        list.extend_from_slice(id);
    }
    Cut { list, pieces }
}

/// Stores the pieces of `cuts` the table does not hold yet, packed on up to as many threads
/// as there are cores.
pub(crate) fn store(table: &mut redb::Table<&[u8], &[u8]>, cuts: &[Cut<'_>]) -> StorageResult<()> {
    let mut seen = HashSet::new();
    let mut missing: Vec<([u8; 16], &[u8])> = Vec::new();
    for (id, bytes) in cuts.iter().flat_map(|c| c.pieces.iter()) {
        if seen.insert(*id) && table.get(id.as_slice())?.is_none() {
            missing.push((*id, bytes));
        }
    }
    let threads = pipeline_core::cores().clamp(1, missing.len().max(1));
    let stored: Vec<Vec<([u8; 16], Vec<u8>)>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<([u8; 16], &[u8])> =
                    missing.iter().skip(t).step_by(threads).copied().collect();
                scope.spawn(move || {
                    // One compression context for the thread's pieces (creating one is
                    // most of the cost of packing a 64 KiB piece).
                    let mut z = zstd::bulk::Compressor::new(1).ok();
                    mine.into_iter()
                        .map(|(id, bytes)| (id, stored_form(bytes, z.as_mut())))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .map_err(|_| bad("packing a stage state panicked".into()))
            })
            .collect::<StorageResult<_>>()
    })?;
    for (id, value) in stored.iter().flatten() {
        table.insert(id.as_slice(), value.as_slice())?;
    }
    Ok(())
}

/// A piece as stored: packed when that is smaller (with `z`, when given).
fn stored_form(bytes: &[u8], z: Option<&mut zstd::bulk::Compressor<'static>>) -> Vec<u8> {
    let packed = match z {
        Some(z) => pack_with(bytes, |b| z.compress(b).ok()),
        None => pack(bytes),
    };
    match packed {
        Some(p) => {
            let mut v = Vec::with_capacity(1 + p.len());
            v.push(1);
            v.extend_from_slice(&p);
            v
        }
        None => {
            let mut v = Vec::with_capacity(1 + bytes.len());
            v.push(0);
            v.extend_from_slice(bytes);
            v
        }
    }
}

/// The state a list names, from the pieces in `table`.
pub(crate) fn assemble(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    list: &[u8],
) -> StorageResult<Vec<u8>> {
    let (len, ids) = list
        .split_first_chunk::<8>()
        .filter(|(_, ids)| ids.len() % 16 == 0)
        .ok_or_else(|| bad("a stage state's list of pieces is damaged".into()))?;
    let len = usize::try_from(u64::from_le_bytes(*len))
        .map_err(|_| bad("a stage state is too large".into()))?;
    let mut out = Vec::with_capacity(len);
    // One decompression context for all the pieces.
    let mut z = zstd::bulk::Decompressor::new().map_err(|e| bad(format!("zstd: {e}")))?;
    for id in ids.chunks_exact(16) {
        let v = table
            .get(id)?
            .ok_or_else(|| bad("a piece of a stage state is missing".into()))?;
        let piece = match v.value().split_first() {
            Some((0, raw)) => raw.to_vec(),
            Some((1, packed)) => unpack_with(packed, |z_bytes, n| z.decompress(z_bytes, n))?,
            _ => return Err(bad("a piece of a stage state is damaged".into())),
        };
        if piece_id(&piece) != id {
            return Err(bad(
                "a piece of a stage state does not match its hash (damaged)".into(),
            ));
        }
        out.extend_from_slice(&piece);
    }
    if out.len() != len {
        return Err(bad(format!(
            "a stage state assembled to {} bytes, not {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// Deletes the pieces no list in `states` names.
pub(crate) fn collect_garbage(
    table: &mut redb::Table<&[u8], &[u8]>,
    states: &impl ReadableTable<&'static str, &'static [u8]>,
) -> StorageResult<()> {
    let mut named: HashSet<[u8; 16]> = HashSet::new();
    for r in states.iter()? {
        let (k, v) = r?;
        if k.value().ends_with("#p")
            && let Some((_, ids)) = v.value().split_first_chunk::<8>()
        {
            named.extend(
                ids.chunks_exact(16)
                    .filter_map(|c| <[u8; 16]>::try_from(c).ok()),
            );
        }
    }
    let mut unnamed = Vec::new();
    for r in table.iter()? {
        let (k, _) = r?;
        if !<[u8; 16]>::try_from(k.value()).is_ok_and(|id| named.contains(&id)) {
            unnamed.push(k.value().to_vec());
        }
    }
    for k in unnamed {
        table.remove(k.as_slice())?;
    }
    Ok(())
}

/// `bytes` as a packed state (length, then zstd level 1) when that is smaller.
pub(crate) fn pack(bytes: &[u8]) -> Option<Vec<u8>> {
    pack_with(bytes, |b| zstd::bulk::compress(b, 1).ok())
}

/// [`pack`] with the compressor `compress`.
fn pack_with(bytes: &[u8], compress: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let z = compress(bytes)?;
    (z.len() + 8 < bytes.len()).then(|| {
        let mut v = Vec::with_capacity(8 + z.len());
        v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        v.extend_from_slice(&z);
        v
    })
}

/// Bytes packed by [`pack`]: their length, then zstd.
pub(crate) fn unpack_state(v: &[u8]) -> StorageResult<Vec<u8>> {
    unpack_with(v, zstd::bulk::decompress)
}

/// [`unpack_state`] with the decompressor `decompress` (given the compressed bytes and
/// their length unpacked).
fn unpack_with(
    v: &[u8],
    decompress: impl FnOnce(&[u8], usize) -> std::io::Result<Vec<u8>>,
) -> StorageResult<Vec<u8>> {
    let (len, z) = v
        .split_first_chunk::<8>()
        .ok_or_else(|| bad("a compressed stage state is truncated".into()))?;
    let len = usize::try_from(u64::from_le_bytes(*len))
        .map_err(|_| bad("a compressed stage state is too large".into()))?;
    let out = decompress(z, len)
        .map_err(|e| bad(format!("a compressed stage state does not decompress: {e}")))?;
    if out.len() != len {
        return Err(bad(format!(
            "a compressed stage state decompressed to {} bytes, not {len}",
            out.len()
        )));
    }
    Ok(out)
}
