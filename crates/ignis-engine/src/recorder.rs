//! Invocation records leave the request path through a bounded channel; a
//! background task counts them in the metrics and writes them to the store,
//! both in batches (one pass over the metrics' maps and locks per batch, off
//! the request path: that halved recording's cost to warm throughput). When
//! the channel is full a record is counted right away, dropped from storage
//! and counted as dropped, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ignis_core::InvocationRecord;
use ignis_metrics::Metrics;
use ignis_store::Store;
use tokio::sync::mpsc;

/// Most records written in one transaction.
const BATCH: usize = 512;

/// How long the writer lets a burst gather before it commits. At 1000
/// calls/s, 100 ms commits 100 records at a time: a fifth of the
/// transactions (and write-ahead-log page writes) of 20 ms, for records
/// that are telemetry (docs/metrics.md says what a crash can lose).
const GATHER: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<InvocationRecord>,
    pub stats: Arc<RecorderStats>,
    pub metrics: Arc<Metrics>,
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
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<InvocationRecord>(capacity);
        let stats = Arc::new(RecorderStats::default());
        let writer_stats = stats.clone();
        let writer_metrics = metrics.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Counted at once, so that the metrics lag calls by no more
                // than a scheduling delay.
                writer_metrics.observe_batch(&batch);
                // Let a burst accumulate into one transaction.
                if batch.len() < BATCH {
                    tokio::time::sleep(GATHER).await;
                    let counted = batch.len();
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    writer_metrics.observe_batch(&batch[counted..]);
                }
                let n = batch.len();
                let records = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                match store.insert_invocations(records).await {
                    Ok(()) => {
                        writer_stats.written.fetch_add(n as u64, Ordering::Relaxed);
                        writer_metrics.records_written.inc_by(n as u64);
                    }
                    Err(e) => {
                        writer_stats.failed.fetch_add(n as u64, Ordering::Relaxed);
                        tracing::error!(error = %e, records = n, "could not write invocation records");
                    }
                }
            }
        });
        (Self { tx, stats, metrics }, task)
    }

    /// Counts a record in the metrics and queues it for the store; drops it
    /// (and counts the drop) when the writer is behind. Never waits.
    pub fn record(&self, record: InvocationRecord) {
        if let Err(e) = self.tx.try_send(record) {
            let record = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            self.metrics.observe(&record);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.records_dropped.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> InvocationRecord {
        InvocationRecord::success("f", &format!("inv-{i}"), ignis_core::now_ms(), 1.0)
    }

    #[tokio::test]
    async fn overload_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(ignis_store::SqliteStore::open(dir.path()).unwrap());
        let metrics = Arc::new(Metrics::new());
        let (recorder, _task) = Recorder::start(store.clone(), metrics.clone(), 8);
        let started = std::time::Instant::now();
        for i in 0..20_000 {
            recorder.record(record(i));
        }
        // 20k records offered in far less time than the store could take them.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let dropped = recorder.stats.dropped.load(Ordering::Relaxed);
        assert!(dropped > 0, "nothing dropped");
        assert_eq!(metrics.records_dropped.get(), dropped);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let written = recorder.stats.written.load(Ordering::Relaxed);
        assert_eq!(written + dropped, 20_000);
        // Every record still counted in the aggregate metrics: the dropped
        // ones at once, the others by the writer.
        let agg = metrics.window(&ignis_metrics::Scope::function("f"), 0, i64::MAX);
        assert_eq!(agg.requests, 20_000);
    }
}
