//! Resume through the facade: a run stopped after its first committed segment and resumed
//! writes what an uninterrupted run writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tempfile::tempdir;
use tickpipe::{Error, Output, Pipeline};

use crate::support::*;

#[test]
fn stopped_then_resumed_equals_uninterrupted() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 6_000, 6);
    let run = |out: &std::path::Path, stop_after: Option<u32>, resume: bool| {
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let mut b = Pipeline::builder()
            .inputs([input.display().to_string()])
            .config(config(2))
            .output(Output::dataset(out))
            .checkpoint_every(1)
            .resume(resume)
            .cancel(cancel);
        if let Some(n) = stop_after {
            b = b.on_commit(Arc::new(move |seg| {
                if seg >= n {
                    c.store(true, Ordering::SeqCst);
                }
            }));
        }
        b.build().unwrap().run()
    };
    let full = tmp.path().join("full");
    let whole = run(&full, None, false).unwrap();
    let part = tmp.path().join("part");
    assert!(matches!(run(&part, Some(1), false), Err(Error::Cancelled)));
    let resumed = run(&part, None, true).unwrap();
    assert_eq!(resumed.row_ledger, whole.row_ledger);
    assert_eq!(
        dataset_rows(&part.join(tickpipe::DATA_DIR)),
        dataset_rows(&full.join(tickpipe::DATA_DIR))
    );
}
