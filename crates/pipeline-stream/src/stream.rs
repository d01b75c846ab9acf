//! `async` feature: any blocking iterator of results (the `tickpipe` facade's `RunStream`, a
//! `Source`) as a `futures::Stream`, fed by a background thread through a bounded channel.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

use crossbeam_channel::{Receiver, TryRecvError, bounded};
use futures::Stream;
use pipeline_core::Result;

/// Items buffered between the background thread and the consumer.
const STREAM_CAPACITY: usize = 4;

struct IterStream<T> {
    rx: Receiver<Result<T>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

// The stream holds only a channel and a waker: nothing in it is pinned in place, whatever `T`.
impl<T> Unpin for IterStream<T> {}

impl<T> Stream for IterStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Register first, then look: a send between the two wakes us, so nothing is missed.
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(cx.waker().clone());
        }
        match self.rx.try_recv() {
            Ok(item) => Poll::Ready(Some(item)),
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
        }
    }
}

/// Drives `iter` on a background thread and returns its items as a stream. The channel is
/// bounded, so a slow consumer slows the iterator; dropping the stream stops the thread at
/// its next item (and drops the iterator, which for a `RunStream` stops the run).
pub fn into_stream<T, I>(iter: I) -> impl Stream<Item = Result<T>> + Send + Unpin
where
    T: Send + 'static,
    I: Iterator<Item = Result<T>> + Send + 'static,
{
    let (tx, rx) = bounded::<Result<T>>(STREAM_CAPACITY);
    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    let w2 = waker.clone();
    let wake = |w: &Arc<Mutex<Option<Waker>>>| {
        if let Ok(mut g) = w.lock()
            && let Some(k) = g.take()
        {
            k.wake();
        }
    };
    thread::spawn(move || {
        for item in iter {
            if tx.send(item).is_err() {
                break;
            }
            wake(&w2);
        }
        drop(tx);
        wake(&w2);
    });
    IterStream { rx, waker }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use futures::StreamExt;
    use futures::executor::block_on;
    use pipeline_core::{Chunk, Error, VecSource};

    #[test]
    fn stream_yields_every_item_in_order_and_the_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let chunks: Vec<Chunk> = (0..20)
            .map(|i| {
                let b =
                    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![i]))])
                        .unwrap();
                Chunk::with_first_line(b, 0, i as u64, i as u64 + 2).unwrap()
            })
            .collect();
        let src = VecSource::new(chunks[0].schema(), chunks);
        let s = into_stream(src);
        let got: Vec<u64> = block_on(s.map(|c| c.unwrap().line(0)).collect::<Vec<_>>());
        assert_eq!(got, (2..22).collect::<Vec<u64>>());
        let failing = vec![Ok(1), Err(Error::Usage("boom".into()))].into_iter();
        let got: Vec<Result<i32>> = block_on(into_stream(failing).collect::<Vec<_>>());
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().is_err_and(|e| e.to_string() == "boom"));
    }
}
