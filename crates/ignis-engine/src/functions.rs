//! A function's part of the engine: its queue of calls, its idle
//! sandboxes, how many are active, and its autoscaler.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ignis_core::{Function, Trigger};
use ignis_sandbox::{Channel, SandboxHandle};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::autoscale;
use crate::decide::FnView;
use crate::sandboxes::SandboxId;
use crate::Outcome;

/// A call waiting for a sandbox.
pub(crate) struct Pending {
    pub id: String,
    pub event: Box<RawValue>,
    pub trigger: Trigger,
    pub arrived: Instant,
    pub arrived_ms: i64,
    /// How many sandboxes died under this call before it ran to an end.
    pub attempts: u32,
    /// Whether the outcome carries the end of the call's log.
    pub log_tail: bool,
    pub tx: oneshot::Sender<Outcome>,
    /// The call's span: every task that works on it carries it.
    pub span: tracing::Span,
}

/// An initialized sandbox, owned by whoever drives it (a run task, an idle
/// list).
pub(crate) struct Sandbox {
    pub id: SandboxId,
    pub handle: Arc<dyn SandboxHandle>,
    pub channel: Channel,
    /// The function version this sandbox was initialized with.
    pub function: Arc<Function>,
    /// CPU time of the sandbox when its resource use was last read, ms.
    pub cpu_mark_ms: f64,
    /// When its resource use was last read (None: not since it started).
    pub usage_read: Option<tokio::time::Instant>,
}

pub(crate) struct Warm {
    pub sandbox: Sandbox,
    pub last_used: Instant,
}

/// Per-function state.
pub(crate) struct FnState {
    pub function: Arc<Function>,
    pub queue: VecDeque<Pending>,
    /// Initialized sandboxes of `function.version`; the last one is the
    /// most recently used (reused first: its caches are warmest).
    pub idle: Vec<Warm>,
    /// Sandboxes booting, initializing or running calls for this function.
    pub active: usize,
    pub autoscaler: autoscale::Autoscaler,
    pub decision: Option<autoscale::Decision>,
    /// A delayed pump is scheduled to fill a batch.
    pub batch_timer: bool,
}

impl FnState {
    pub fn new(function: Arc<Function>) -> Self {
        Self {
            function,
            queue: VecDeque::new(),
            idle: Vec::new(),
            active: 0,
            autoscaler: autoscale::Autoscaler::default(),
            decision: None,
            batch_timer: false,
        }
    }

    /// What the dispatch decision sees of it.
    pub fn view(&self) -> FnView {
        let c = &self.function.config;
        FnView {
            queued: self.queue.len(),
            oldest: self.queue.front().map(|p| p.arrived),
            idle: self.idle.len(),
            active: self.active,
            batch_max: c.batch_max_size.max(1) as usize,
            batch_wait: Duration::from_millis(c.batch_max_wait_ms),
            max_concurrency: c.max_concurrency as usize,
        }
    }

    /// The first `n` queued calls.
    pub fn take_batch(&mut self, n: usize) -> Vec<Pending> {
        let n = n.min(self.queue.len());
        self.queue.drain(..n).collect()
    }

    /// Whether anything of the function runs or waits to run.
    pub fn has_sandboxes(&self) -> bool {
        self.active > 0 || !self.idle.is_empty()
    }
}
