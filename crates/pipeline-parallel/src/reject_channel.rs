//! The channel from readers and workers to the quarantine writer, bounded in rejects rather
//! than in messages. Every message names the segment its rejects belong to, so the writer
//! can keep each segment's quarantine apart and publish it when the segment is committed.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender, bounded};
use pipeline_core::{Reject, Result};

/// A message to the quarantine writer.
pub(crate) enum RejectMsg {
    /// Rejected rows of segment `.0`.
    Rows(u32, Vec<Reject>),
    /// Segment `.0` is complete: publish its quarantine and answer with the files written.
    /// Every reject of the segment was sent before this (by the readers before their
    /// outcome, by the workers before their segment report), so none is left behind.
    Publish(u32, Sender<Result<Vec<PathBuf>>>),
}

/// Most rejects per message. A stage can reject a whole chunk at once (64 K rows of a
/// shuffled file quarantined as `late`), and the channel used to count messages only: 1,024
/// such batches could queue, and a shuffled 2M-row file peaked at 611 MiB against a 256 MiB
/// limit. A reject is about 150 bytes with its strings, so a message holds at most ~0.6 MB.
const BATCH: usize = 4096;

/// Most messages buffered before the writer.
const CAPACITY: usize = 16;

/// Bytes one queued reject costs, allocator overhead included: a late row's reject holds three
/// small strings, and in massif on a shuffled 300 K-row run the rejects' malloc overhead was
/// as large as their contents (about 240 bytes each all told).
const REJECT_BYTES: u64 = 256;

/// A bounded reject channel: its messages may take 1/64 of the memory `limit` (4 MiB at the
/// default 256 MiB: 4 messages), between 1 and [`CAPACITY`] messages. A shuffled file
/// quarantines nearly every row, and the channel's fixed 16 messages (16 MB of rejects) were
/// a good part of what held a 128 MiB run at 162 MiB.
pub(crate) fn channel(limit: u64) -> (Sender<RejectMsg>, Receiver<RejectMsg>) {
    let messages = limit / 64 / (BATCH as u64 * REJECT_BYTES);
    bounded((messages as usize).clamp(1, CAPACITY))
}

/// Sends `rejects` of segment `seg` in messages of at most [`BATCH`]; false when the writer
/// is gone.
pub(crate) fn send(tx: &Sender<RejectMsg>, seg: u32, mut rejects: Vec<Reject>) -> bool {
    while rejects.len() > BATCH {
        let rest = rejects.split_off(BATCH);
        if tx
            .send(RejectMsg::Rows(seg, std::mem::replace(&mut rejects, rest)))
            .is_err()
        {
            return false;
        }
    }
    rejects.is_empty() || tx.send(RejectMsg::Rows(seg, rejects)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_are_split_in_order() {
        assert_eq!(channel(256 << 20).0.capacity(), Some(4));
        assert_eq!(channel(16 << 20).0.capacity(), Some(1));
        assert_eq!(channel(64 << 30).0.capacity(), Some(CAPACITY));
        let (tx, rx) = channel(1 << 30);
        let rejects: Vec<Reject> = (0..(2 * BATCH as u64 + 5))
            .map(|line| Reject::quarantined(0, line, "late", "", None))
            .collect();
        let h = std::thread::spawn(move || send(&tx, 3, rejects));
        let sizes_and_lines: Vec<(usize, u64)> = rx
            .iter()
            .map(|m| match m {
                RejectMsg::Rows(seg, r) => {
                    assert_eq!(seg, 3);
                    (r.len(), r[0].line)
                }
                RejectMsg::Publish(..) => panic!("no publish was sent"),
            })
            .collect();
        assert!(h.join().unwrap());
        assert_eq!(
            sizes_and_lines,
            vec![(BATCH, 0), (BATCH, BATCH as u64), (5, 2 * BATCH as u64)]
        );
        let (tx, rx) = channel(1 << 30);
        drop(rx);
        assert!(!send(
            &tx,
            0,
            vec![Reject::quarantined(0, 1, "late", "", None)]
        ));
        assert!(send(&tx, 0, Vec::new()), "nothing to send is not a failure");
    }
}
