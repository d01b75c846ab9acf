//! `async` feature: the output of a [`Pipeline`] as a `futures::Stream` of chunks.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

use crossbeam_channel::{Receiver, TryRecvError, bounded};
use futures::Stream;
use pipeline_core::{Chunk, Error, Result};

use crate::pipeline::Pipeline;

/// Output chunks buffered between the background thread and the consumer.
const STREAM_CAPACITY: usize = 4;

struct ChunkStream {
    rx: Receiver<Result<Chunk>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Stream for ChunkStream {
    type Item = Result<Chunk>;

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

/// Runs `pipeline` on a background thread and returns its output chunks as a stream (the
/// pipeline's sink, if any, still receives them too). The channel is bounded, so a slow
/// consumer slows the pipeline. A failed run ends the stream with one `Err`.
pub fn into_stream(pipeline: Pipeline) -> impl Stream<Item = Result<Chunk>> + Send + Unpin {
    let (tx, rx) = bounded::<Result<Chunk>>(STREAM_CAPACITY);
    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    let w2 = waker.clone();
    let wake = move |w: &Arc<Mutex<Option<Waker>>>| {
        if let Ok(mut g) = w.lock()
            && let Some(k) = g.take()
        {
            k.wake();
        }
    };
    thread::spawn(move || {
        let tx2 = tx.clone();
        let w3 = w2.clone();
        let r = pipeline.run_with(Box::new(move |c: &Chunk| {
            tx2.send(Ok(c.clone())).map_err(|_| Error::Cancelled)?;
            wake(&w3);
            Ok(())
        }));
        if let Err(e) = r {
            let _ = tx.send(Err(e));
        }
        drop(tx);
        wake(&w2);
    });
    ChunkStream { rx, waker }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use futures::StreamExt;
    use futures::executor::block_on;
    use pipeline_core::VecSource;

    #[test]
    fn stream_yields_every_chunk_in_order() {
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
        let s = into_stream(Pipeline::new(Box::new(src)));
        let got: Vec<u64> = block_on(s.map(|c| c.unwrap().line(0)).collect::<Vec<_>>());
        assert_eq!(got, (2..22).collect::<Vec<u64>>());
    }
}
