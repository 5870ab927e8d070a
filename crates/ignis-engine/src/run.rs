//! Running a batch of calls on one sandbox, with a host-enforced deadline
//! per call.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use ignis_core::{
    ErrorKind, Function, IgnisError, InvocationRecord, InvocationStatus, StartKind, Trigger,
};
use ignis_sandbox::protocol::{self, Incoming, Invoke, InvokeItem};
use ignis_sandbox::{ChannelError, ExitReason, SandboxHandle};
use serde_json::value::RawValue;

use crate::dispatch::death_error;
use crate::{Inner, Outcome, Pending, Sandbox, MAX_RESPONSE_BYTES};

/// A call is re-queued at most this many times after sandboxes died under
/// calls queued before it; then it fails with the death's error.
const MAX_ATTEMPTS: u32 = 3;

/// Captured output of one call.
pub(crate) struct Logs {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

/// What ended a batch early.
enum Ending {
    Timeout,
    Died(IgnisError),
}

impl Inner {
    /// Runs `batch` on `sandbox`: one `invoke` message, one `result` per
    /// call. Each call has its own deadline, counted from the moment it
    /// starts (the write, or the previous call's result when the bootstrap
    /// runs them one after another). On a timeout or a death the sandbox is
    /// killed, the call(s) it was running fail, and the calls it had not
    /// started go back to the front of the queue.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut sandbox: Sandbox,
        batch: Vec<Pending>,
        start: StartKind,
        init_ms: Option<f64>,
    ) {
        let function = sandbox.function.clone();
        let timeout = Duration::from_millis(function.config.timeout_ms);
        let concurrent = function.config.batch_concurrent && batch.len() > 1;
        let batch_size = batch.len() as u32;
        let dispatched = Instant::now();
        let write_ms = ignis_core::now_ms();
        let queue_ms: Vec<f64> = batch
            .iter()
            .map(|p| dispatched.duration_since(p.arrived).as_secs_f64() * 1e3)
            .collect();

        let message = {
            let items = batch
                .iter()
                .map(|p| InvokeItem {
                    id: &p.id,
                    event: &p.event,
                    deadline_ms: write_ms + function.config.timeout_ms as i64,
                    timeout_ms: function.config.timeout_ms,
                })
                .collect();
            serde_json::to_vec(&Invoke {
                kind: "invoke",
                items,
                concurrent,
            })
        };
        let mut waiting: Vec<Option<Pending>> = batch.into_iter().map(Some).collect();
        let mut records: Vec<InvocationRecord> = Vec::with_capacity(waiting.len());
        let mut last_answer: Option<Answer> = None;
        let ctx = RunCtx {
            function: &function,
            sandbox_id: &sandbox.id,
            start,
            init_ms,
            batch_size,
        };

        let message = match message {
            Ok(m) => m,
            Err(e) => {
                // Cannot happen with events that were parsed as JSON; fail
                // the batch rather than panic.
                let err = IgnisError::internal(format!("encoding invoke: {e}"));
                for (i, p) in waiting.iter_mut().enumerate() {
                    if let Some(p) = p.take() {
                        records.push(self.finish(
                            &ctx,
                            p,
                            Err(err.clone()),
                            queue_ms[i],
                            0.0,
                            None,
                        ));
                    }
                }
                self.send_records(records);
                self.release(sandbox, &function.label());
                return;
            }
        };

        let written = Instant::now();
        let mut item_start = written;
        let ending = if let Err(e) = sandbox.channel.send_raw(&message).await {
            Some(Ending::Died(why_dead(&sandbox.handle, e).await))
        } else {
            loop {
                if waiting.iter().all(Option::is_none) {
                    break None;
                }
                let deadline = if concurrent { written } else { item_start } + timeout;
                let msg = match tokio::time::timeout_at(deadline, sandbox.channel.recv()).await {
                    Err(_) => break Some(Ending::Timeout),
                    Ok(Err(e)) => break Some(Ending::Died(why_dead(&sandbox.handle, e).await)),
                    Ok(Ok(msg)) => msg,
                };
                if msg.kind != protocol::RESULT {
                    continue;
                }
                let Some(i) = waiting
                    .iter()
                    .position(|p| p.as_ref().is_some_and(|p| Some(&p.id) == msg.id.as_ref()))
                else {
                    tracing::warn!(sandbox = %sandbox.id, id = ?msg.id, "result for an unknown call");
                    continue;
                };
                let now = Instant::now();
                let began = if concurrent { written } else { item_start };
                let exec_ms = now.duration_since(began).as_secs_f64() * 1e3;
                item_start = now;
                if let Some(p) = waiting[i].take() {
                    let logs = Logs {
                        stdout: msg.stdout.clone(),
                        stderr: msg.stderr.clone(),
                        truncated: msg.logs_truncated,
                    };
                    let (record, answer) = self.finish_later(
                        &ctx,
                        p,
                        result_of(msg),
                        queue_ms[i],
                        exec_ms,
                        Some(logs),
                    );
                    records.push(record);
                    if waiting.iter().all(Option::is_none) {
                        last_answer = Some(answer);
                    } else {
                        answer.send();
                    }
                }
            }
        };

        let Some(ending) = ending else {
            // Resource use of the batch, read after the callers have their
            // answers: CPU since the last batch, shared out; peak memory.
            // Only batches that ran 1 ms or more are measured: below that the
            // CPU is at the accounting noise floor, and skipping the reads
            // keeps recording cheap on the fastest path. The CPU of skipped
            // batches (under 1 ms each) lands on the next measured one.
            let ran_ms = written.elapsed().as_secs_f64() * 1e3;
            if self.config.record && ran_ms >= 1.0 {
                if let Some(u) = sandbox.handle.usage_now() {
                    let cpu = (u.cpu_time_ms - sandbox.cpu_mark_ms).max(0.0);
                    sandbox.cpu_mark_ms = u.cpu_time_ms;
                    let share = cpu / records.len().max(1) as f64;
                    for r in &mut records {
                        r.cpu_ms = Some(share);
                        r.peak_memory_bytes = Some(u.peak_memory_bytes.unwrap_or(u.memory_bytes));
                    }
                }
            }
            self.release(sandbox, &function.label());
            if let Some(answer) = last_answer {
                answer.send();
            }
            self.changed.notify_waiters();
            // Recording (metrics, aggregates, the record channel) happens
            // after the caller has its answer: it is off the latency path.
            self.send_records(records);
            return;
        };
        if let Some(answer) = last_answer.take() {
            answer.send();
        }
        // The sandbox is finished: kill it first so that a handler still
        // running cannot touch anything more.
        sandbox.handle.kill().await;
        let now = Instant::now();
        let running_since = if concurrent { written } else { item_start };
        let exec_ms = now.duration_since(running_since).as_secs_f64() * 1e3;
        let mut requeue = Vec::new();
        let mut first = true;
        for (i, slot) in waiting.iter_mut().enumerate() {
            let Some(mut p) = slot.take() else { continue };
            // Sequential: the first unanswered call was running; the others
            // had not started. Concurrent: all were running.
            let was_running = concurrent || first;
            first = false;
            let err = match &ending {
                Ending::Timeout => IgnisError::new(
                    ErrorKind::Timeout,
                    format!("timed out after {} ms", function.config.timeout_ms),
                ),
                Ending::Died(err) => err.clone(),
            };
            if was_running || p.attempts + 1 >= MAX_ATTEMPTS {
                records.push(self.finish(&ctx, p, Err(err), queue_ms[i], exec_ms, None));
            } else {
                p.attempts += 1;
                requeue.push(p);
            }
        }
        self.send_records(records);
        if !requeue.is_empty() {
            tracing::debug!(sandbox = %sandbox.id, calls = requeue.len(), "re-queueing calls of a dead sandbox");
        }
        self.bury(sandbox, &function.label(), requeue);
    }
}

/// Why the channel to a sandbox failed, as the error its call gets.
async fn why_dead(handle: &Arc<dyn SandboxHandle>, e: ChannelError) -> IgnisError {
    match e {
        ChannelError::BadMessage(m) => {
            handle.kill().await;
            IgnisError::new(
                ErrorKind::SandboxCrashed,
                format!("the sandbox broke the channel protocol: {m}"),
            )
        }
        ChannelError::LineTooLong => {
            handle.kill().await;
            IgnisError::new(
                ErrorKind::ResponseTooLarge,
                "the sandbox sent a message over the channel's size limit",
            )
        }
        ChannelError::Exited(reason) => death_error(reason, "while running the function"),
        ChannelError::Closed | ChannelError::Io(_) => {
            let reason: ExitReason = handle.exit_reason().await;
            death_error(reason, "while running the function")
        }
    }
}

impl Inner {
    fn send_records(&self, records: Vec<InvocationRecord>) {
        if self.config.record {
            for r in records {
                self.recorder.record(r);
            }
        }
    }

    /// Answers one call; returns its record (to be completed with the
    /// sandbox's resource use and sent by the caller).
    fn finish(
        &self,
        ctx: &RunCtx<'_>,
        p: Pending,
        result: Result<Box<RawValue>, IgnisError>,
        queue_ms: f64,
        exec_ms: f64,
        logs: Option<Logs>,
    ) -> InvocationRecord {
        let (record, answer) = self.finish_later(ctx, p, result, queue_ms, exec_ms, logs);
        answer.send();
        record
    }

    /// Like `finish`, but hands back the answer to send when the caller is
    /// ready: the last call of a batch is answered only once its sandbox is
    /// back in the pool, so that the caller's next call finds it idle.
    fn finish_later(
        &self,
        ctx: &RunCtx<'_>,
        p: Pending,
        result: Result<Box<RawValue>, IgnisError>,
        queue_ms: f64,
        exec_ms: f64,
        logs: Option<Logs>,
    ) -> (InvocationRecord, Answer) {
        let outcome = Outcome {
            id: p.id.clone(),
            version: ctx.function.version,
            result,
            start: Some(ctx.start),
            queue_ms,
            init_ms: ctx.init_ms,
            exec_ms,
            total_ms: p.arrived.elapsed().as_secs_f64() * 1e3,
            batch_size: ctx.batch_size,
        };
        let record = build_record(
            ctx.function,
            p.trigger,
            p.arrived_ms,
            &outcome,
            logs,
            Some(ctx.sandbox_id),
        );
        (record, Answer { tx: p.tx, outcome })
    }

    pub(crate) fn record(
        &self,
        function: &Function,
        trigger: Trigger,
        started_at_ms: i64,
        outcome: &Outcome,
        logs: Option<Logs>,
        sandbox_id: Option<&str>,
    ) {
        if self.config.record {
            let r = build_record(function, trigger, started_at_ms, outcome, logs, sandbox_id);
            self.recorder.record(r);
        }
    }
}

fn build_record(
    function: &Function,
    trigger: Trigger,
    started_at_ms: i64,
    outcome: &Outcome,
    logs: Option<Logs>,
    sandbox_id: Option<&str>,
) -> InvocationRecord {
    let error = outcome.result.as_ref().err();
    let error_type = error.map(|e| e.kind);
    let status = InvocationStatus::from_error(error_type);
    tracing::debug!(
        function = %function.name,
        id = %outcome.id,
        start = outcome.start.map(StartKind::as_str),
        status = status.as_str(),
        total_ms = outcome.total_ms,
        "invocation"
    );
    let logs = logs.unwrap_or(Logs {
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
    });
    InvocationRecord {
        id: outcome.id.clone(),
        namespace: function.namespace.clone(),
        function: function.name.clone(),
        version: outcome.version,
        backend: function.config.backend,
        trigger,
        started_at_ms,
        queue_ms: outcome.queue_ms,
        init_ms: outcome.init_ms,
        exec_ms: outcome.exec_ms,
        total_ms: outcome.total_ms,
        start: outcome.start,
        batch_size: outcome.batch_size,
        status,
        error_type,
        error_message: error.map(|e| e.message.clone()),
        error_stack: error.and_then(|e| e.stack.clone()),
        response_bytes: outcome.result.as_ref().map_or(0, |v| v.get().len() as u64),
        peak_memory_bytes: None,
        cpu_ms: None,
        stdout: logs.stdout,
        stderr: logs.stderr,
        logs_truncated: logs.truncated,
        sandbox_id: sandbox_id.map(str::to_string),
    }
}

/// An outcome on its way to its caller.
struct Answer {
    tx: tokio::sync::oneshot::Sender<Outcome>,
    outcome: Outcome,
}

impl Answer {
    fn send(self) {
        // The caller may be gone (client disconnected): the call still
        // counts and is recorded.
        let _ = self.tx.send(self.outcome);
    }
}

pub(crate) struct RunCtx<'a> {
    function: &'a Function,
    sandbox_id: &'a str,
    start: StartKind,
    init_ms: Option<f64>,
    batch_size: u32,
}

/// The caller's result from a `result` message.
fn result_of(msg: Incoming) -> Result<Box<RawValue>, IgnisError> {
    if msg.ok == Some(true) {
        let value = match msg.value {
            Some(v) => v,
            None => RawValue::from_string("null".into())
                .map_err(|e| IgnisError::internal(e.to_string()))?,
        };
        if value.get().len() > MAX_RESPONSE_BYTES {
            return Err(IgnisError::new(
                ErrorKind::ResponseTooLarge,
                format!(
                    "the result is {} bytes, the limit is {MAX_RESPONSE_BYTES} bytes",
                    value.get().len()
                ),
            ));
        }
        return Ok(value);
    }
    let e = msg.error.unwrap_or_default();
    let kind = match e.kind.as_str() {
        "InvalidResult" => ErrorKind::InvalidResult,
        "ResponseTooLarge" => ErrorKind::ResponseTooLarge,
        _ => ErrorKind::FunctionError,
    };
    Err(IgnisError::new(kind, e.message).with_stack(e.stack))
}
