//! Asynchronous invocations: accepted means stored, then run at least once.
//!
//! [`AsyncQueue::submit`] writes the event to the store's queue table (in
//! one transaction that also checks the caps) before the caller answers
//! 202, so a `kill -9` right after the answer loses nothing. Workers
//! ([`start`]) lease due events, run them through the same engine path as
//! a synchronous call (limits, batching, pools) and record each attempt's
//! outcome:
//!
//! - success: `succeeded`;
//! - what the function did (an error, a timeout, running out of memory,
//!   crashing, failing to load): retried after a back-off that doubles
//!   (`async_retry_base_ms`, then twice that), up to the function's
//!   `async_max_retries`, then `dead` ("retries exhausted");
//! - what the server did (throttled, no backend, shutting down): the
//!   attempt does not count, and the event waits and runs again;
//! - waiting past the function's `async_max_age_s`: `dead` ("max age").
//!
//! Delivery is at least once: an attempt that was running when the server
//! was killed runs again after the restart ([`start`] puts `running`
//! events back in the queue; the killed attempt does not count against the
//! retries). Nothing else runs twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ignis_core::{AsyncEvent, AsyncStatus, ErrorKind, Function, FunctionId, Trigger};
use ignis_store::{EventEnd, QueueCaps, QueueStat, Store};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{Notify, Semaphore};
use utoipa::ToSchema;

use crate::{ApiResult, AppState};

/// How the queue is sized and paced (settings `async_*`).
#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Events run at once, over every function.
    pub workers: usize,
    /// Events waiting or running per function before 429.
    pub per_function: u64,
    /// Events waiting or running in total before 429.
    pub total: u64,
    /// Back-off before the first retry; each next retry waits twice as long.
    pub retry_base_ms: u64,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            per_function: 10_000,
            total: 100_000,
            retry_base_ms: 1_000,
        }
    }
}

/// Counters since the server started, and the last sample of the table.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AsyncStats {
    /// Events accepted since the server started.
    pub accepted_total: u64,
    /// Attempts that ended in success.
    pub succeeded_total: u64,
    /// Attempts that failed and were scheduled again.
    pub retries_total: u64,
    /// Events that became dead letters (every attempt failed, max age, or
    /// the function was deleted).
    pub dead_total: u64,
    /// Per function: waiting, running and dead events, and the age of the
    /// oldest waiting one (sampled every second).
    pub functions: Vec<QueueStat>,
}

impl AsyncStats {
    pub fn waiting(&self) -> u64 {
        self.functions.iter().map(|f| f.waiting).sum()
    }

    pub fn running(&self) -> u64 {
        self.functions.iter().map(|f| f.running).sum()
    }

    pub fn dead(&self) -> u64 {
        self.functions.iter().map(|f| f.dead).sum()
    }

    /// When the oldest waiting event was accepted.
    pub fn oldest_waiting_ms(&self) -> Option<i64> {
        self.functions
            .iter()
            .filter_map(|f| f.oldest_waiting_ms)
            .min()
    }
}

/// The queue's front door and its counters.
pub struct AsyncQueue {
    store: Arc<dyn Store>,
    config: AsyncConfig,
    wake: Notify,
    accepted: AtomicU64,
    succeeded: AtomicU64,
    retries: AtomicU64,
    dead: AtomicU64,
    sampled: Mutex<Vec<QueueStat>>,
}

impl AsyncQueue {
    pub fn new(store: Arc<dyn Store>, config: AsyncConfig) -> Self {
        Self {
            store,
            config,
            wake: Notify::new(),
            accepted: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            sampled: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &AsyncConfig {
        &self.config
    }

    /// Stores an event for `function` (whose limits apply to it) and
    /// returns it as accepted. `QueueFull` when a cap is reached.
    pub async fn submit(
        &self,
        function: &Function,
        qualifier: Option<String>,
        event: Box<RawValue>,
    ) -> ApiResult<AsyncEvent> {
        let now = now_ms();
        let e = AsyncEvent {
            id: format!("evt-{}", hex::encode(random_bytes::<16>())),
            namespace: function.namespace.clone(),
            function: function.name.clone(),
            qualifier,
            event,
            status: AsyncStatus::Queued,
            attempts: 0,
            max_retries: function.config.async_max_retries,
            enqueued_at_ms: now,
            expires_at_ms: now + function.config.async_max_age_s as i64 * 1000,
            not_before_ms: now,
            version: None,
            result: None,
            error_type: None,
            error_message: None,
            stdout: String::new(),
            stderr: String::new(),
            last_invocation_id: None,
            started_at_ms: None,
            finished_at_ms: None,
            dead_reason: None,
        };
        let caps = QueueCaps {
            per_function: self.config.per_function,
            total: self.config.total,
        };
        self.store.enqueue_event(&e, caps).await?;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(e)
    }

    /// Wakes the workers (an event became due: redriven, say).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    pub fn stats(&self) -> AsyncStats {
        AsyncStats {
            accepted_total: self.accepted.load(Ordering::Relaxed),
            succeeded_total: self.succeeded.load(Ordering::Relaxed),
            retries_total: self.retries.load(Ordering::Relaxed),
            dead_total: self.dead.load(Ordering::Relaxed),
            functions: self
                .sampled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    async fn sample(&self) {
        match self.store.queue_stats().await {
            Ok(s) => *self.sampled.lock().unwrap_or_else(|p| p.into_inner()) = s,
            Err(e) => tracing::warn!(error = %e, "could not sample the asynchronous queue"),
        }
    }
}

/// Starts the workers and the housekeeping (expiry, sampling). Events a
/// previous run left `running` go back to the queue first. The tasks hold
/// the state weakly and end with it.
pub async fn start(state: &Arc<AppState>) -> Result<(), ignis_store::StoreError> {
    let q = state.asyncq.clone();
    let requeued = q.store.requeue_running_events().await?;
    if requeued > 0 {
        tracing::info!(
            events = requeued,
            "asynchronous events that were running when the server stopped are queued again"
        );
    }
    q.sample().await;
    tokio::spawn(housekeeping(Arc::downgrade(state)));
    tokio::spawn(dispatch(Arc::downgrade(state)));
    Ok(())
}

/// Once a second: events past their maximum age become dead letters, and
/// the table is sampled for the metrics.
async fn housekeeping(state: Weak<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let q = &state.asyncq;
        match q.store.expire_events(now_ms()).await {
            Ok(expired) => {
                for e in &expired {
                    tracing::warn!(event = %e.id, function = %ignis_core::qualified(&e.namespace, &e.function),
                        attempts = e.attempts, "asynchronous event expired: a dead letter");
                }
                q.dead.fetch_add(expired.len() as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "could not expire asynchronous events"),
        }
        q.sample().await;
    }
}

/// Leases due events while workers are free, and runs each in its own task.
async fn dispatch(state: Weak<AppState>) {
    let workers = match state.upgrade() {
        Some(s) => s.asyncq.config.workers.max(1),
        None => return,
    };
    let free = Arc::new(Semaphore::new(workers));
    loop {
        let Ok(first) = free.clone().acquire_owned().await else {
            return;
        };
        let mut permits = vec![first];
        while let Ok(p) = free.clone().try_acquire_owned() {
            permits.push(p);
        }
        let Some(s) = state.upgrade() else { return };
        let leased = match s.asyncq.store.lease_events(now_ms(), permits.len()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not lease asynchronous events");
                Vec::new()
            }
        };
        let idle = leased.is_empty();
        for e in leased {
            let permit = permits.pop();
            let state = s.clone();
            tokio::spawn(async move {
                run_one(&state, e).await;
                drop(permit);
            });
        }
        drop(permits);
        if idle {
            // Nothing due: wait for a new event or for the next retry to
            // come due (retries are polled, at this granularity).
            let wake = s.asyncq.clone();
            drop(s);
            let _ = tokio::time::timeout(Duration::from_millis(200), wake.wake.notified()).await;
        }
    }
}

/// What became of one attempt.
fn end_of(
    q: &AsyncQueue,
    e: &AsyncEvent,
    version: Option<u64>,
    outcome: Result<Box<RawValue>, (ErrorKind, String, u64)>,
    logs: String,
    invocation_id: Option<String>,
) -> EventEnd {
    let now = now_ms();
    match outcome {
        Ok(value) => EventEnd::Succeeded {
            version: version.unwrap_or_default(),
            result: value.get().to_string(),
            stdout: logs,
            stderr: String::new(),
            invocation_id: invocation_id.unwrap_or_default(),
            at_ms: now,
        },
        Err((kind, message, retry_after_s)) => {
            let server_side = matches!(
                kind,
                ErrorKind::Throttled | ErrorKind::BackendUnavailable | ErrorKind::ShuttingDown
            );
            if server_side {
                return EventEnd::Deferred {
                    not_before_ms: now + retry_after_s.max(1) as i64 * 1000,
                };
            }
            let retry_at =
                (kind != ErrorKind::NotFound && e.attempts <= e.max_retries).then(|| {
                    now + (q.config.retry_base_ms << (e.attempts.saturating_sub(1)).min(16)) as i64
                });
            let (retry_at_ms, dead_reason) = match retry_at {
                Some(at) if at < e.expires_at_ms => (Some(at), String::new()),
                Some(_) => (None, "max age".to_string()),
                // The function (or the alias it was sent to) is gone.
                None if kind == ErrorKind::NotFound => (None, message.clone()),
                None => (None, "retries exhausted".to_string()),
            };
            EventEnd::Failed {
                version,
                error_type: kind.as_str().to_string(),
                message,
                stdout: logs,
                stderr: String::new(),
                invocation_id,
                at_ms: now,
                retry_at_ms,
                dead_reason,
            }
        }
    }
}

/// Runs one leased attempt of `e` and stores its end.
async fn run_one(state: &Arc<AppState>, e: AsyncEvent) {
    let q = &state.asyncq;
    let id = FunctionId::new(e.namespace.clone(), e.function.clone());
    let resolved = match state.registry.get(&id) {
        None => Err(crate::ApiError::not_found(format!("function `{id}` was deleted")).0),
        Some(_) => crate::handlers::invoke::resolve(state, &id, e.qualifier.as_deref())
            .await
            .map_err(|err| err.0),
    };
    let end = match resolved {
        Err(err) => end_of(
            q,
            &e,
            None,
            Err((err.kind, err.message.clone(), 1)),
            String::new(),
            None,
        ),
        Ok(f) => {
            let outcome = state
                .engine
                .invoke_with_log_tail(f, e.event.clone(), Trigger::Async)
                .await;
            let logs = outcome.log_tail.clone().unwrap_or_default();
            let result = match outcome.result {
                Ok(v) => Ok(v),
                Err(err) => Err((
                    err.kind(),
                    err.to_string(),
                    err.retry_after_s().unwrap_or(1),
                )),
            };
            end_of(q, &e, Some(outcome.version), result, logs, Some(outcome.id))
        }
    };
    match &end {
        EventEnd::Succeeded { .. } => {
            q.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        EventEnd::Failed {
            retry_at_ms: Some(_),
            ..
        } => {
            q.retries.fetch_add(1, Ordering::Relaxed);
        }
        EventEnd::Failed { dead_reason, .. } => {
            q.dead.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event = %e.id, function = %id, attempts = e.attempts,
                reason = %dead_reason, "asynchronous event is a dead letter");
        }
        EventEnd::Deferred { .. } => {}
    }
    if let Err(err) = q.store.finish_event(&e.id, &end).await {
        // The event stays `running`; the next start queues it again.
        tracing::error!(event = %e.id, error = %err, "could not record an asynchronous attempt");
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Err(e) = getrandom::getrandom(&mut b) {
        tracing::error!(error = %e, "no randomness for an event id");
    }
    b
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
