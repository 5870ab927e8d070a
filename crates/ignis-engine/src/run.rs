//! Running a batch of calls on one sandbox, with a host-enforced deadline
//! per call.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use ignis_core::{Function, InvocationRecord, InvocationStatus, StartKind, Trigger};
use ignis_metrics::Stage;
use ignis_sandbox::protocol::{
    CallResult, GuestMessage, HostMessage, Invoke, InvokeItem, Logs, MAX_RESPONSE_BYTES,
};
use serde_json::value::RawValue;

use crate::functions::{Pending, Sandbox};
use crate::{CallError, FunctionFailure, Inner, Outcome, Phase};

/// A call is re-queued at most this many times after sandboxes died under
/// calls queued before it; then it fails with the death's error.
const MAX_ATTEMPTS: u32 = 3;

/// How often a busy sandbox's resource use is read after short batches.
const USAGE_READ_INTERVAL: Duration = Duration::from_millis(100);

/// What ended a batch early.
enum Ending {
    Timeout,
    Died(CallError),
}

/// The batch being run: who waits for what, and what was learned so far.
struct Batch<'a> {
    ctx: RunCtx<'a>,
    waiting: Vec<Option<Pending>>,
    queue_ms: Vec<f64>,
    records: Vec<InvocationRecord>,
    /// The last answer is sent only once its sandbox is back in the pool, so
    /// that the caller's next call finds it idle.
    last_answer: Option<Answer>,
    dispatched: Instant,
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
        let concurrent = function.config.batch_concurrent && batch.len() > 1;
        let dispatched = Instant::now();
        let queue_ms: Vec<f64> = batch
            .iter()
            .map(|p| dispatched.duration_since(p.arrived).as_secs_f64() * 1e3)
            .collect();
        let stages = &self.recorder.metrics.stages;
        if stages.enabled() {
            for p in &batch {
                stages.add(Stage::Queue, dispatched.duration_since(p.arrived));
            }
        }
        let sandbox_id = sandbox.id.to_string();
        let mut b = Batch {
            ctx: RunCtx {
                function: &function,
                sandbox_id: &sandbox_id,
                start,
                init_ms,
                batch_size: batch.len() as u32,
            },
            waiting: Vec::with_capacity(batch.len()),
            queue_ms,
            records: Vec::with_capacity(batch.len()),
            last_answer: None,
            dispatched,
        };
        let message = invoke_message(&function, &batch, concurrent);
        b.waiting = batch.into_iter().map(Some).collect();
        let ending = match message {
            Ok(line) => self.exchange(&mut sandbox, &mut b, &line, concurrent).await,
            Err(e) => Some(Ending::Died(CallError::Protocol(format!(
                "encoding invoke: {e}"
            )))),
        };
        match ending {
            None => self.finish_batch(sandbox, b, dispatched),
            Some(ending) => self.end_batch_early(sandbox, b, ending, concurrent).await,
        }
    }

    /// Writes the batch and reads its results until every call is answered
    /// (`None`), or a deadline passes or the sandbox dies.
    async fn exchange(
        &self,
        sandbox: &mut Sandbox,
        b: &mut Batch<'_>,
        line: &[u8],
        concurrent: bool,
    ) -> Option<Ending> {
        let timeout = Duration::from_millis(b.ctx.function.config.timeout_ms);
        let written = Instant::now();
        let mut item_start = written;
        if let Err(e) = sandbox.channel.send_raw(line).await {
            return Some(Ending::Died(
                self.died(&sandbox.handle, e, Phase::Run).await,
            ));
        }
        let stages = &self.recorder.metrics.stages;
        let mut sent = None;
        if stages.enabled() {
            let now = Instant::now();
            stages.add(Stage::Write, now.duration_since(b.dispatched));
            sent = Some(now.into_std());
        }
        while b.waiting.iter().any(Option::is_some) {
            let began = if concurrent { written } else { item_start };
            let msg = match tokio::time::timeout_at(began + timeout, sandbox.channel.recv()).await {
                Err(_) => return Some(Ending::Timeout),
                Ok(Err(e)) => {
                    return Some(Ending::Died(
                        self.died(&sandbox.handle, e, Phase::Run).await,
                    ))
                }
                Ok(Ok(msg)) => msg,
            };
            let GuestMessage::Result(result) = msg else {
                continue;
            };
            let Some(i) = b
                .waiting
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.id == result.id))
            else {
                tracing::warn!(sandbox = %sandbox.id, id = %result.id, "result for an unknown call");
                continue;
            };
            let now = Instant::now();
            let exec_ms = now.duration_since(began).as_secs_f64() * 1e3;
            item_start = now;
            // For a sequential batch, each item's round trip from the
            // previous result.
            sent = stages.end(Stage::Sandbox, sent);
            if let Some(p) = b.waiting[i].take() {
                let CallResult { outcome, logs, .. } = result;
                let (record, answer) = self.answer(
                    &b.ctx,
                    p,
                    result_of(outcome),
                    b.queue_ms[i],
                    exec_ms,
                    Some(logs),
                );
                b.records.push(record);
                if b.waiting.iter().all(Option::is_none) {
                    b.last_answer = Some(answer);
                } else {
                    answer.send();
                }
            }
        }
        None
    }

    /// Every call was answered: measure, put the sandbox back, answer the
    /// last caller, record.
    fn finish_batch(self: &Arc<Self>, mut sandbox: Sandbox, mut b: Batch<'_>, written: Instant) {
        let finishing = self.recorder.metrics.stages.start();
        // Resource use of the batch, read after the callers have their
        // answers: CPU since the last reading, shared out; peak memory.
        // Reading costs a few cgroup files, so a sandbox is read after a
        // batch that ran 50 ms or more, and after one of 1 ms or more once
        // 100 ms have passed since its last reading; below 1 ms the CPU is
        // at the accounting noise floor. The CPU of batches not read lands
        // on the next one read, and peak memory is a peak since start: under
        // load this bounds the reads to 10 a second per sandbox without
        // losing CPU time.
        let ran_ms = written.elapsed().as_secs_f64() * 1e3;
        let due = sandbox
            .usage_read
            .is_none_or(|t| t.elapsed() >= USAGE_READ_INTERVAL);
        if self.config.record && (ran_ms >= 50.0 || (ran_ms >= 1.0 && due)) {
            if let Some(u) = sandbox.handle.usage_now() {
                sandbox.usage_read = Some(Instant::now());
                let cpu = (u.cpu_time_ms - sandbox.cpu_mark_ms).max(0.0);
                sandbox.cpu_mark_ms = u.cpu_time_ms;
                let share = cpu / b.records.len().max(1) as f64;
                for r in &mut b.records {
                    r.cpu_ms = Some(share);
                    r.peak_memory_bytes = Some(u.peak_memory_bytes.unwrap_or(u.memory_bytes));
                }
            }
        }
        self.release(sandbox);
        if let Some(answer) = b.last_answer.take() {
            answer.send();
        }
        // Recording (metrics, aggregates, the record channel) happens after
        // the caller has its answer: it is off the latency path.
        self.send_records(b.records);
        self.recorder.metrics.stages.end(Stage::Record, finishing);
    }

    /// A deadline passed or the sandbox died: kill it, fail the calls that
    /// were running, re-queue the ones it had not started.
    async fn end_batch_early(
        self: &Arc<Self>,
        sandbox: Sandbox,
        mut b: Batch<'_>,
        ending: Ending,
        concurrent: bool,
    ) {
        if let Some(answer) = b.last_answer.take() {
            answer.send();
        }
        // The sandbox is finished: kill it first so that a handler still
        // running cannot touch anything more.
        sandbox.handle.kill().await;
        let timeout_ms = b.ctx.function.config.timeout_ms;
        let mut requeue = Vec::new();
        let mut first = true;
        for i in 0..b.waiting.len() {
            let Some(mut p) = b.waiting[i].take() else {
                continue;
            };
            // Sequential: the first unanswered call was running; the others
            // had not started. Concurrent: all were running.
            let was_running = concurrent || first;
            first = false;
            let err = match &ending {
                Ending::Timeout => CallError::Timeout(timeout_ms),
                Ending::Died(err) => err.clone(),
            };
            if was_running || p.attempts + 1 >= MAX_ATTEMPTS {
                let exec_ms = p.arrived.elapsed().as_secs_f64() * 1e3 - b.queue_ms[i];
                let (record, answer) =
                    self.answer(&b.ctx, p, Err(err), b.queue_ms[i], exec_ms.max(0.0), None);
                answer.send();
                b.records.push(record);
            } else {
                p.attempts += 1;
                requeue.push(p);
            }
        }
        if !requeue.is_empty() {
            tracing::debug!(sandbox = %sandbox.id, calls = requeue.len(), "re-queueing calls of a dead sandbox");
        }
        self.send_records(b.records);
        self.bury(sandbox, requeue);
    }

    fn send_records(&self, records: Vec<InvocationRecord>) {
        if self.config.record {
            for r in records {
                self.recorder.record(r);
            }
        }
    }

    /// The answer of one call, and its record (to be completed with the
    /// sandbox's resource use and sent by the caller). An HTTP trigger's
    /// result is checked here, so the record holds what its caller gets.
    fn answer(
        &self,
        ctx: &RunCtx<'_>,
        p: Pending,
        mut result: Result<Box<RawValue>, CallError>,
        queue_ms: f64,
        exec_ms: f64,
        logs: Option<Logs>,
    ) -> (InvocationRecord, Answer) {
        let mut http = None;
        if p.trigger == Trigger::Http {
            if let Ok(value) = &result {
                match ignis_core::http::reply_of(value.get()) {
                    Ok(reply) => http = Some(reply),
                    Err(m) => result = Err(CallError::InvalidHttpResponse(m)),
                }
            }
        }
        let outcome = Outcome {
            id: p.id.clone(),
            version: ctx.function.version,
            result,
            http,
            start: Some(ctx.start),
            queue_ms,
            init_ms: ctx.init_ms,
            exec_ms,
            total_ms: p.arrived.elapsed().as_secs_f64() * 1e3,
            batch_size: ctx.batch_size,
            log_tail: p.log_tail.then(|| log_tail(logs.as_ref())),
            read_at: self.recorder.metrics.stages.start(),
        };
        p.span.record("start", ctx.start.as_str());
        let record = build_record(
            ctx.function,
            p.trigger,
            p.arrived_ms,
            &outcome,
            logs,
            Some(ctx.sandbox_id),
        );
        p.span.record("outcome", record.status.as_str());
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

/// The last [`crate::LOG_TAIL_BYTES`] of a call's stdout and stderr, cut
/// at a character boundary.
fn log_tail(logs: Option<&Logs>) -> String {
    let Some(logs) = logs else {
        return String::new();
    };
    let all = format!("{}{}", logs.stdout, logs.stderr);
    let mut from = all.len().saturating_sub(crate::LOG_TAIL_BYTES);
    while !all.is_char_boundary(from) {
        from += 1;
    }
    all[from..].to_string()
}

/// The `invoke` message of a batch, as one line.
fn invoke_message(
    function: &Function,
    batch: &[Pending],
    concurrent: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let write_ms = ignis_core::now_ms();
    let timeout_ms = function.config.timeout_ms;
    HostMessage::Invoke(Invoke {
        items: batch
            .iter()
            .map(|p| InvokeItem {
                id: &p.id,
                event: &p.event,
                deadline_ms: write_ms + timeout_ms as i64,
                timeout_ms,
            })
            .collect(),
        concurrent,
    })
    .to_line()
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
    let error_type = error.map(CallError::kind);
    let status = InvocationStatus::from_error(error_type);
    tracing::debug!(
        id = %outcome.id,
        start = outcome.start.map(StartKind::as_str),
        status = status.as_str(),
        total_ms = outcome.total_ms,
        "invocation"
    );
    let logs = logs.unwrap_or_default();
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
        error_message: error.map(ToString::to_string),
        error_stack: error.and_then(|e| e.stack().map(str::to_string)),
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

struct RunCtx<'a> {
    function: &'a Function,
    sandbox_id: &'a str,
    start: StartKind,
    init_ms: Option<f64>,
    batch_size: u32,
}

/// The caller's result from a `result` message's outcome.
fn result_of(
    outcome: Result<Box<RawValue>, ignis_sandbox::protocol::ErrorBody>,
) -> Result<Box<RawValue>, CallError> {
    match outcome {
        Ok(value) if value.get().len() > MAX_RESPONSE_BYTES => Err(CallError::Function {
            failure: FunctionFailure::ResponseTooLarge,
            message: format!(
                "the result is {} bytes, the limit is {MAX_RESPONSE_BYTES} bytes",
                value.get().len()
            ),
            stack: None,
        }),
        Ok(value) => Ok(value),
        Err(e) => Err(CallError::Function {
            failure: match e.kind.as_str() {
                "InvalidResult" => FunctionFailure::InvalidResult,
                "ResponseTooLarge" => FunctionFailure::ResponseTooLarge,
                _ => FunctionFailure::Raised,
            },
            message: e.message,
            stack: e.stack,
        }),
    }
}
