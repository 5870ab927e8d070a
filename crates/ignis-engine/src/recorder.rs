//! Invocation records leave the request path through a bounded channel; a
//! background task writes them to the store in batched transactions. When
//! the channel is full a record is dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ignis_core::InvocationRecord;
use ignis_store::Store;
use tokio::sync::mpsc;

/// Most records written in one transaction.
const BATCH: usize = 512;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<InvocationRecord>,
    pub stats: Arc<RecorderStats>,
}

#[derive(Debug, Default)]
pub struct RecorderStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

impl Recorder {
    /// Starts the writer task. It ends when every `Recorder` clone is
    /// dropped, after writing what is queued; `flush` waits for that.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<InvocationRecord>(capacity);
        let stats = Arc::new(RecorderStats::default());
        let writer_stats = stats.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Let a burst accumulate into one transaction.
                if batch.len() < BATCH {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                }
                match store.insert_invocations(&batch).await {
                    Ok(()) => {
                        writer_stats
                            .written
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        writer_stats
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::error!(error = %e, records = batch.len(), "could not write invocation records");
                    }
                }
                batch.clear();
            }
        });
        (Self { tx, stats }, task)
    }

    /// Queues a record; drops it (and counts) when the writer is behind.
    pub fn record(&self, record: InvocationRecord) {
        if self.tx.try_send(record).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
