//! The execution engine: it takes calls, queues them per function, hands
//! them (in batches) to warm sandboxes or boots new ones within the
//! function's concurrency limit and the host's memory budget, enforces every
//! deadline, and records each call.
//!
//! Backend-agnostic: it drives [`ignis_sandbox::Backend`] implementations
//! and speaks the channel protocol; it never knows whether a sandbox is a
//! container or a microVM.

pub mod autoscale;
mod dispatch;
mod maintain;
pub mod observe;
mod recorder;
mod run;
pub mod state;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use ignis_core::{
    now_ms, BackendKind, ErrorKind, Function, IgnisError, Runtime, StartKind, Trigger,
};
use ignis_sandbox::{Backend, BackendStatus, Channel, SandboxHandle};
use ignis_store::Store;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{oneshot, Notify};

pub use recorder::{Recorder, RecorderStats};
use state::{Lifecycle, SandboxState};

/// Largest result a handler may return: 6 MiB, as AWS Lambda.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bound on booting a sandbox to a connected channel.
    pub boot_timeout: Duration,
    /// Bound on `init` (unpacking the code and importing the handler).
    pub init_timeout: Duration,
    /// The sum of `memory_mb` over all sandboxes stays under this.
    pub memory_budget_mb: u64,
    /// Most calls queued per function; more are throttled at once.
    pub queue_capacity: usize,
    /// How often the maintainer runs: autoscaler samples, keep-alive
    /// reaping, stem-cell refills.
    pub reap_interval: Duration,
    /// Stem cells kept booted per (runtime, backend, memory) at first.
    pub stem_initial: usize,
    /// Most stem cells per key; the pool grows toward it when cold calls
    /// find it empty and shrinks back when it goes unused.
    pub stem_max: usize,
    /// Record every call (metrics, invocation records, per-call resource
    /// use). Off only to measure what recording costs.
    pub record: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            boot_timeout: Duration::from_secs(30),
            // Generous: a microVM under TCG on a loaded host needs seconds
            // to start Python or Node.js.
            init_timeout: Duration::from_secs(30),
            memory_budget_mb: 4096,
            queue_capacity: 1000,
            reap_interval: Duration::from_secs(1),
            stem_initial: 1,
            stem_max: 4,
            record: true,
        }
    }
}

/// What became of one call.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    pub version: u64,
    pub result: Result<Box<RawValue>, IgnisError>,
    pub start: Option<StartKind>,
    pub queue_ms: f64,
    pub init_ms: Option<f64>,
    pub exec_ms: f64,
    pub total_ms: f64,
    pub batch_size: u32,
}

/// A call waiting for a sandbox.
struct Pending {
    id: String,
    event: Box<RawValue>,
    trigger: Trigger,
    arrived: Instant,
    arrived_ms: i64,
    /// How many sandboxes died under this call before it ran to an end.
    attempts: u32,
    tx: oneshot::Sender<Outcome>,
}

/// A sandbox owned by whoever is driving it (a run task or an idle list).
struct Sandbox {
    id: String,
    handle: Arc<dyn SandboxHandle>,
    channel: Channel,
    /// The function version this sandbox was initialized with.
    function: Arc<Function>,
    /// CPU time of the sandbox when its last batch ended, ms.
    cpu_mark_ms: f64,
}

struct Warm {
    sandbox: Sandbox,
    last_used: Instant,
}

/// Per-function state.
struct FnState {
    function: Arc<Function>,
    queue: VecDeque<Pending>,
    /// Initialized sandboxes of `function.version`; the last one is the most
    /// recently used (reused first: its caches are warmest).
    idle: Vec<Warm>,
    /// Sandboxes booting, initializing or running calls for this function.
    active: usize,
    autoscaler: autoscale::Autoscaler,
    decision: Option<autoscale::Decision>,
    /// A delayed pump is scheduled to fill a batch.
    batch_timer: bool,
}

impl FnState {
    fn new(function: Arc<Function>) -> Self {
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
}

/// What a stem cell can serve: any function of this runtime, backend and
/// memory size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StemKey {
    pub runtime: Runtime,
    pub backend: BackendKind,
    pub memory_mb: u32,
}

impl StemKey {
    pub fn of(f: &Function) -> Self {
        Self {
            runtime: f.config.runtime,
            backend: f.config.backend,
            memory_mb: f.config.memory_mb,
        }
    }
}

/// A booted sandbox waiting for `init`.
struct StemCell {
    id: String,
    handle: Arc<dyn SandboxHandle>,
    channel: Channel,
}

struct StemPool {
    ready: Vec<StemCell>,
    booting: usize,
    target: usize,
    hits: u64,
    misses: u64,
    last_hit: Instant,
    last_resize: Instant,
}

/// Consecutive boot failures of a backend, and when it may be tried again.
#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// Book-keeping of one live sandbox, whoever holds it.
struct Live {
    life: Lifecycle,
    function: String,
    backend: BackendKind,
    memory_mb: u64,
    handle: Arc<dyn SandboxHandle>,
}

#[derive(Default)]
struct State {
    functions: HashMap<String, FnState>,
    stems: BTreeMap<StemKey, StemPool>,
    live: HashMap<String, Live>,
    memory_used_mb: u64,
    backoff: HashMap<BackendKind, Backoff>,
    /// Where the next round-robin pass over waiting functions starts.
    cursor: usize,
    /// Deleted functions and the last version they had: a call of such a
    /// version that arrives after the delete (its request was accepted just
    /// before) is refused instead of bringing the function back.
    removed: HashMap<String, u64>,
}

struct Inner {
    config: EngineConfig,
    backends: HashMap<BackendKind, Arc<dyn Backend>>,
    store: Arc<dyn Store>,
    recorder: Recorder,
    state: Mutex<State>,
    accepting: AtomicBool,
    /// Signalled whenever a call completes or a sandbox goes away.
    changed: Notify,
    observer: observe::Observer,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// One function's pool, as `GET /api/v1/pools` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolInfo {
    pub function: String,
    pub version: u64,
    pub backend: BackendKind,
    /// Sandboxes of this function by lifecycle state.
    pub sandboxes: BTreeMap<&'static str, usize>,
    /// Calls waiting for a sandbox.
    pub queued: usize,
    /// Sandboxes booting, initializing or running calls.
    pub active: usize,
    /// What the autoscaler wants (at least `min_warm`).
    pub desired: u32,
    pub autoscaler: Option<autoscale::Decision>,
}

/// One stem-cell pool.
#[derive(Debug, Clone, Serialize)]
pub struct StemInfo {
    #[serde(flatten)]
    pub key: StemKey,
    pub ready: usize,
    pub booting: usize,
    pub target: usize,
    /// Cold calls served by a stem cell, and those that found none.
    pub hits: u64,
    pub misses: u64,
}

/// Everything `GET /api/v1/pools` shows.
#[derive(Debug, Clone, Serialize)]
pub struct PoolsInfo {
    pub functions: Vec<PoolInfo>,
    pub stem_cells: Vec<StemInfo>,
    pub memory_used_mb: u64,
    pub memory_budget_mb: u64,
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        backends: Vec<Arc<dyn Backend>>,
        store: Arc<dyn Store>,
        recorder: Recorder,
    ) -> Self {
        Self::with_retention(
            config,
            backends,
            store,
            recorder,
            observe::Retention::default(),
        )
    }

    pub fn with_retention(
        config: EngineConfig,
        backends: Vec<Arc<dyn Backend>>,
        store: Arc<dyn Store>,
        recorder: Recorder,
        retention: observe::Retention,
    ) -> Self {
        let backends = backends.into_iter().map(|b| (b.kind(), b)).collect();
        let inner = Arc::new(Inner {
            config,
            backends,
            store,
            recorder,
            state: Mutex::new(State::default()),
            accepting: AtomicBool::new(true),
            changed: Notify::new(),
            observer: observe::Observer::new(retention),
        });
        let engine = Self { inner };
        engine.spawn_maintainer();
        engine.spawn_death_listeners();
        engine.spawn_observers();
        engine
    }

    /// Learns the deployed functions at start-up: their `min_warm`
    /// sandboxes and the stem-cell pools they will use are started.
    pub fn prepare(&self, functions: &[Arc<Function>]) {
        let mut st = self.inner.lock();
        for f in functions {
            st.functions
                .entry(f.label().into_owned())
                .or_insert_with(|| FnState::new(f.clone()));
            self.inner.ensure_stem_pool(&mut st, StemKey::of(f));
        }
        self.inner.maintain(&mut st);
    }

    /// A function was created.
    pub fn function_created(&self, function: Arc<Function>) {
        self.prepare(&[function]);
    }

    /// Boots up to `count` sandboxes of `function` ahead of demand (within
    /// `max_concurrency` and the memory budget). Returns how many started.
    pub fn prewarm(&self, function: Arc<Function>, count: u32) -> u32 {
        let mut st = self.inner.lock();
        st.functions
            .entry(function.label().into_owned())
            .or_insert_with(|| FnState::new(function.clone()));
        self.inner.ensure_stem_pool(&mut st, StemKey::of(&function));
        self.inner
            .prewarm(&mut st, &function.label(), count as usize) as u32
    }

    pub fn recorder_stats(&self) -> Arc<RecorderStats> {
        self.inner.recorder.stats.clone()
    }

    pub fn metrics(&self) -> &Arc<ignis_metrics::Metrics> {
        &self.inner.recorder.metrics
    }

    /// Status of every configured backend.
    pub async fn backend_status(&self) -> Vec<BackendStatus> {
        let mut out = Vec::new();
        for b in self.inner.backends.values() {
            out.push(b.status().await);
        }
        out.sort_by_key(|s| s.kind.as_str());
        out
    }

    /// Removes sandboxes left behind by a previous run, on every backend.
    pub async fn remove_orphans(&self) -> usize {
        let mut n = 0;
        for b in self.inner.backends.values() {
            match b.remove_orphans().await {
                Ok(k) => n += k,
                Err(e) => {
                    tracing::warn!(backend = %b.kind(), error = %e, "could not remove orphans")
                }
            }
        }
        n
    }

    /// Runs one call of `function` and waits for its outcome.
    pub async fn invoke(
        &self,
        function: Arc<Function>,
        event: Box<RawValue>,
        trigger: Trigger,
    ) -> Outcome {
        let id = new_id("inv");
        let arrived = Instant::now();
        let version = function.version;
        let queue_timeout = Duration::from_millis(function.config.queue_timeout_ms);
        let (tx, mut rx) = oneshot::channel();
        let pending = Pending {
            id: id.clone(),
            event,
            trigger,
            arrived,
            arrived_ms: now_ms(),
            attempts: 0,
            tx,
        };
        if let Err(err) = self.inner.enqueue(function.clone(), pending) {
            return self.inner.refuse(&function, &id, trigger, arrived, err);
        }
        match tokio::time::timeout(queue_timeout, &mut rx).await {
            Ok(Ok(outcome)) => return outcome,
            Ok(Err(_)) => {}
            Err(_) => {
                // Still queued? Then it waited too long.
                if self.inner.unqueue(&function.label(), &id) {
                    let err = IgnisError {
                        retry_after_s: Some(1),
                        ..IgnisError::new(
                            ErrorKind::Throttled,
                            format!(
                                "no sandbox became free within the queue timeout of {} ms",
                                function.config.queue_timeout_ms
                            ),
                        )
                    };
                    return self.inner.refuse(&function, &id, trigger, arrived, err);
                }
                if let Ok(outcome) = rx.await {
                    return outcome;
                }
            }
        }
        Outcome {
            id,
            version,
            result: Err(IgnisError::internal("the call was lost by the engine")),
            start: None,
            queue_ms: 0.0,
            init_ms: None,
            exec_ms: 0.0,
            total_ms: ms_since(arrived),
            batch_size: 0,
        }
    }

    /// A function was updated: new calls use the new version, and the old
    /// version's sandboxes are drained (idle ones now, busy ones when their
    /// calls end).
    pub fn function_updated(&self, function: Arc<Function>) {
        let mut st = self.inner.lock();
        let Some(fs) = st.functions.get_mut(&*function.label()) else {
            return;
        };
        if function.version <= fs.function.version {
            return;
        }
        fs.function = function.clone();
        let stale: Vec<Warm> = fs.idle.drain(..).collect();
        for w in stale {
            self.inner.retire(&mut st, w.sandbox, "new version");
        }
        self.inner.ensure_stem_pool(&mut st, StemKey::of(&function));
        self.inner.maintain(&mut st);
    }

    /// A function was deleted at `version`: queued calls fail, sandboxes
    /// are drained; calls already starting finish with their version.
    pub fn function_removed(&self, name: &str, version: u64) {
        let mut st = self.inner.lock();
        let last = st.removed.entry(name.to_string()).or_default();
        *last = (*last).max(version);
        let Some(mut fs) = st.functions.remove(name) else {
            return;
        };
        for p in fs.queue.drain(..) {
            let err = IgnisError::not_found(format!("function `{name}` was deleted"));
            self.inner.complete_refused(&fs.function, p, err);
        }
        for w in fs.idle.drain(..) {
            self.inner.retire(&mut st, w.sandbox, "function deleted");
        }
        if fs.active > 0 {
            // Busy sandboxes find no state on return and are retired then.
            tracing::debug!(
                function = name,
                active = fs.active,
                "draining deleted function"
            );
        }
    }

    /// Pools by function and stem-cell key, for introspection.
    pub fn pools(&self) -> PoolsInfo {
        let st = self.inner.lock();
        let mut functions: Vec<PoolInfo> = st
            .functions
            .values()
            .map(|fs| {
                let mut sandboxes: BTreeMap<&'static str, usize> = SandboxState::ALL
                    .iter()
                    .filter(|s| **s != SandboxState::Dead && **s != SandboxState::Stem)
                    .map(|s| (s.as_str(), 0))
                    .collect();
                for live in st
                    .live
                    .values()
                    .filter(|l| l.function == *fs.function.label())
                {
                    *sandboxes.entry(live.life.state().as_str()).or_default() += 1;
                }
                PoolInfo {
                    function: fs.function.label().into_owned(),
                    version: fs.function.version,
                    backend: fs.function.config.backend,
                    sandboxes,
                    queued: fs.queue.len(),
                    active: fs.active,
                    desired: fs.autoscaler.desired().max(fs.function.config.min_warm),
                    autoscaler: fs.decision,
                }
            })
            .collect();
        functions.sort_by(|a, b| a.function.cmp(&b.function));
        let stem_cells = st
            .stems
            .iter()
            .map(|(key, pool)| StemInfo {
                key: *key,
                ready: pool.ready.len(),
                booting: pool.booting,
                target: pool.target,
                hits: pool.hits,
                misses: pool.misses,
            })
            .collect();
        PoolsInfo {
            functions,
            stem_cells,
            memory_used_mb: st.memory_used_mb,
            memory_budget_mb: self.inner.config.memory_budget_mb,
        }
    }

    /// Live sandboxes by backend and state.
    pub fn sandbox_counts(&self) -> BTreeMap<(BackendKind, &'static str), usize> {
        let st = self.inner.lock();
        let mut out = BTreeMap::new();
        for live in st.live.values() {
            *out.entry((live.backend, live.life.state().as_str()))
                .or_default() += 1;
        }
        out
    }

    /// Memory reserved by live sandboxes, and the budget, in MiB.
    pub fn memory(&self) -> (u64, u64) {
        (
            self.inner.lock().memory_used_mb,
            self.inner.config.memory_budget_mb,
        )
    }

    /// Stops taking calls, lets the ones in flight finish for up to `grace`,
    /// then removes every sandbox.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.inner.changed.notified();
            let busy = {
                let st = self.inner.lock();
                st.functions
                    .values()
                    .any(|fs| fs.active > 0 || !fs.queue.is_empty())
            };
            if !busy {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    "shutdown grace period over; killing sandboxes with calls in flight"
                );
                break;
            }
        }
        let handles: Vec<Arc<dyn SandboxHandle>> = {
            let mut st = self.inner.lock();
            for fs in st.functions.values_mut() {
                fs.idle.clear();
            }
            st.stems.clear();
            st.live.values().map(|l| l.handle.clone()).collect()
        };
        let n = handles.len();
        let removals: Vec<_> = handles
            .into_iter()
            .map(|h| tokio::spawn(async move { h.destroy().await }))
            .collect();
        for r in removals {
            let _ = r.await;
        }
        tracing::info!(sandboxes = n, "engine stopped");
    }

    fn spawn_maintainer(&self) {
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.config.reap_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.accepting.load(Ordering::SeqCst) {
                    return;
                }
                let mut st = inner.lock();
                inner.maintain(&mut st);
            }
        });
    }

    /// Sandboxes that die while idle (killed from outside, crashed) are
    /// dropped from the pools at once; the maintainer replaces them.
    fn spawn_death_listeners(&self) {
        for backend in self.inner.backends.values() {
            let Some(mut deaths) = backend.deaths() else {
                continue;
            };
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    let id = match deaths.recv().await {
                        Ok(id) => id,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    };
                    let Some(inner) = weak.upgrade() else { return };
                    inner.sandbox_died(&id);
                }
            });
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed in short critical sections that do not
        // panic midway; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A refused call's outcome (never queued), recorded like any other.
    fn refuse(
        &self,
        function: &Function,
        id: &str,
        trigger: Trigger,
        arrived: Instant,
        err: IgnisError,
    ) -> Outcome {
        let outcome = Outcome {
            id: id.to_string(),
            version: function.version,
            result: Err(err),
            start: None,
            queue_ms: ms_since(arrived),
            init_ms: None,
            exec_ms: 0.0,
            total_ms: ms_since(arrived),
            batch_size: 0,
        };
        self.record(
            function,
            trigger,
            now_ms() - outcome.total_ms as i64,
            &outcome,
            None,
            None,
        );
        outcome
    }

    /// Completes a queued call that never ran.
    fn complete_refused(&self, function: &Function, p: Pending, err: IgnisError) {
        let outcome = Outcome {
            id: p.id.clone(),
            version: function.version,
            result: Err(err),
            start: None,
            queue_ms: ms_since(p.arrived),
            init_ms: None,
            exec_ms: 0.0,
            total_ms: ms_since(p.arrived),
            batch_size: 0,
        };
        self.record(function, p.trigger, p.arrived_ms, &outcome, None, None);
        let _ = p.tx.send(outcome);
        self.changed.notify_waiters();
    }

    /// Removes a call from its function's queue; false when it was already
    /// taken by a sandbox.
    fn unqueue(&self, name: &str, id: &str) -> bool {
        let mut st = self.lock();
        let Some(fs) = st.functions.get_mut(name) else {
            return false;
        };
        match fs.queue.iter().position(|p| p.id == id) {
            Some(i) => {
                fs.queue.remove(i);
                true
            }
            None => false,
        }
    }

    /// Retires a sandbox nobody will use again: forgets it and removes it
    /// in the background.
    fn retire(&self, st: &mut State, sandbox: Sandbox, why: &str) {
        tracing::debug!(sandbox = %sandbox.id, why, "retiring sandbox");
        self.forget(st, &sandbox.id);
        let handle = sandbox.handle;
        tokio::spawn(async move { handle.destroy().await });
    }

    /// Drops a sandbox from the books and releases its memory reservation.
    fn forget(&self, st: &mut State, id: &str) {
        if let Some(mut live) = st.live.remove(id) {
            let _ = live.life.go(SandboxState::Dead);
            st.memory_used_mb = st.memory_used_mb.saturating_sub(live.memory_mb);
        }
        self.changed.notify_waiters();
    }

    fn transition(st: &mut State, id: &str, to: SandboxState) {
        if let Some(live) = st.live.get_mut(id) {
            if let Err(e) = live.life.go(to) {
                // A bug in the engine, not a user error: log it loudly and
                // carry on with the state unchanged.
                tracing::error!(sandbox = id, error = %e, "lifecycle violation");
            }
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A new time-ordered id with a prefix: `inv-0190b...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}
