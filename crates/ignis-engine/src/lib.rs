//! The execution engine: it takes calls, queues them per function, hands
//! them (in batches) to warm sandboxes or boots new ones within the
//! function's concurrency limit and the host's memory budget, enforces every
//! deadline, and records each call.
//!
//! Backend-agnostic: it drives [`ignis_sandbox::Backend`] implementations
//! and speaks the channel protocol; it never knows whether a sandbox is a
//! container or a microVM.
//!
//! How it is put together:
//! - parts with their own rules and tests: [`decide`] (the dispatch
//!   decision, a pure function), [`stems`] (stem-cell pools), [`budget`]
//!   (the memory budget and eviction), [`backoff`] (failing backends),
//!   [`autoscale`], [`sandboxes`] (one lifecycle record per sandbox);
//! - [`State`] holds them behind one lock; everything that changes it runs
//!   in [`Inner::with_state`], which collects what to start ([`Effect`]s)
//!   and starts it after releasing the lock;
//! - the tasks: `start.rs` (cold starts, stem specialization), `run.rs`
//!   (a batch on a sandbox), `maintain.rs` (the one-second tick, deaths).

pub mod autoscale;
pub mod backoff;
pub mod budget;
pub mod decide;
mod error;
mod functions;
mod maintain;
pub mod observe;
mod recorder;
mod run;
pub mod sandboxes;
mod start;
pub mod state;
pub mod stems;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use ignis_core::{now_ms, BackendKind, Function, FunctionId, StartKind, Trigger};
use ignis_sandbox::{Backend, BackendStatus, SandboxHandle};
use ignis_store::Store;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{oneshot, Notify};
use tracing::Instrument;

pub use error::{CallError, FunctionFailure, Phase};
pub use recorder::{Recorder, RecorderStats};
pub use stems::StemKey;

use backoff::Backoffs;
use budget::{plan_eviction, Candidate, MemoryBudget};
use decide::{next_action, stem_missed, Capacity, Dispatch};
use functions::{FnState, Pending, Sandbox};
use sandboxes::{Owner, SandboxId, Sandboxes};
use state::SandboxState;
use stems::{StemCell, StemPools};

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
    /// The maintainer's tick: autoscaler samples, keep-alive reaping,
    /// stem-cell refills.
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
    pub result: Result<Box<RawValue>, CallError>,
    /// An HTTP trigger's response, checked when the call ended (so the
    /// record holds what the caller gets).
    pub http: Option<ignis_core::http::HttpReply>,
    pub start: Option<StartKind>,
    pub queue_ms: f64,
    pub init_ms: Option<f64>,
    pub exec_ms: f64,
    pub total_ms: f64,
    pub batch_size: u32,
    /// The last [`LOG_TAIL_BYTES`] of the call's log (stdout, then
    /// stderr), when the caller asked for it ([`Engine::invoke_with_log_tail`]).
    pub log_tail: Option<String>,
    /// When the result was read from the channel (only with
    /// `--stage-timings`: the start of the `answer` stage).
    pub read_at: Option<std::time::Instant>,
}

/// How much of a call's log [`Outcome::log_tail`] keeps (Lambda's `Tail`).
pub const LOG_TAIL_BYTES: usize = 4096;

impl Outcome {
    /// A call that never ran.
    fn refused(id: String, version: u64, arrived: Instant, error: CallError) -> Self {
        let ms = ms_since(arrived);
        Self {
            id,
            version,
            result: Err(error),
            http: None,
            start: None,
            queue_ms: ms,
            init_ms: None,
            exec_ms: 0.0,
            total_ms: ms,
            batch_size: 0,
            log_tail: None,
            read_at: None,
        }
    }
}

/// What to start once the state's lock is released.
pub(crate) enum Effect {
    /// Run a batch on an initialized sandbox.
    Run {
        sandbox: Sandbox,
        batch: Vec<Pending>,
        start: StartKind,
        init_ms: Option<f64>,
    },
    /// Initialize a stem cell with a function, then run a batch (or keep it
    /// idle: a pre-warm).
    Specialize {
        cell: StemCell,
        function: Arc<Function>,
        batch: Vec<Pending>,
    },
    /// Boot a sandbox for a function, initialize it, run a batch.
    ColdStart {
        id: SandboxId,
        function: Arc<Function>,
        batch: Vec<Pending>,
    },
    /// Boot a stem cell.
    BootStem {
        id: SandboxId,
        key: StemKey,
        cpus: f64,
    },
    /// Pump a function again when its partial batch has waited enough.
    BatchTimer { function: FunctionId, at: Instant },
    /// Remove a sandbox nobody will use again.
    Destroy(Arc<dyn SandboxHandle>),
    /// Answer calls that will not run.
    Refuse {
        function: Arc<Function>,
        calls: Vec<Pending>,
        error: CallError,
    },
}

pub(crate) type Effects = Vec<Effect>;

/// Everything the engine decides from, behind one lock.
pub(crate) struct State {
    pub functions: HashMap<FunctionId, FnState>,
    pub sandboxes: Sandboxes,
    pub stems: StemPools,
    pub budget: MemoryBudget,
    pub backoff: Backoffs,
    /// Deleted functions and the last version they had: a call of such a
    /// version that arrives after the delete (its request was accepted just
    /// before) is refused instead of bringing the function back.
    pub removed: HashMap<FunctionId, u64>,
    /// Where the next round-robin pass over waiting functions starts.
    pub cursor: usize,
    /// Backends this server has.
    pub backends: HashSet<BackendKind>,
    pub accepting: bool,
}

struct Inner {
    config: EngineConfig,
    backends: HashMap<BackendKind, Arc<dyn Backend>>,
    store: Arc<dyn Store>,
    recorder: Recorder,
    state: Mutex<State>,
    accepting: AtomicBool,
    /// Sandbox removals started and not finished: shutdown waits for them,
    /// so the process never exits with a container or VM half removed.
    removing: AtomicUsize,
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
    /// `name`, or `namespace/name` outside the default namespace.
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

/// One sandbox of a function, as `GET .../functions/{name}/sandboxes`
/// shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SandboxInfo {
    /// `sb-...`, as in the invocation records' `sandbox_id`.
    pub id: String,
    /// The function version it was initialized with.
    pub version: u64,
    pub backend: BackendKind,
    /// `booting`, `initializing`, `idle`, `busy` or `draining`.
    pub state: String,
    /// Memory reserved for it, MiB.
    pub memory_mb: u64,
    /// Since it was booked (boot included), ms.
    pub age_ms: u64,
    /// In its current state, ms.
    pub in_state_ms: u64,
    /// Calls handed to it.
    pub calls: u64,
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
        let backends: HashMap<BackendKind, Arc<dyn Backend>> =
            backends.into_iter().map(|b| (b.kind(), b)).collect();
        let state = State {
            functions: HashMap::new(),
            sandboxes: Sandboxes::default(),
            stems: StemPools::new(config.stem_initial, config.stem_max),
            budget: MemoryBudget::new(config.memory_budget_mb),
            backoff: Backoffs::default(),
            removed: HashMap::new(),
            cursor: 0,
            backends: backends.keys().copied().collect(),
            accepting: true,
        };
        let inner = Arc::new(Inner {
            config,
            backends,
            store,
            recorder,
            state: Mutex::new(state),
            accepting: AtomicBool::new(true),
            removing: AtomicUsize::new(0),
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
        self.inner.with_state(|st, fx| {
            let now = Instant::now();
            for f in functions {
                st.functions
                    .entry(f.pool_id())
                    .or_insert_with(|| FnState::new(f.clone()));
                st.stems.ensure(StemKey::of(f), now);
            }
            st.maintain(now, fx);
        });
    }

    /// A function was created.
    pub fn function_created(&self, function: Arc<Function>) {
        self.prepare(&[function]);
    }

    /// Boots up to `count` sandboxes of `function` ahead of demand (within
    /// `max_concurrency` and the memory budget). Returns how many started.
    pub fn prewarm(&self, function: Arc<Function>, count: u32) -> u32 {
        self.inner.with_state(|st, fx| {
            let now = Instant::now();
            st.functions
                .entry(function.pool_id())
                .or_insert_with(|| FnState::new(function.clone()));
            st.stems.ensure(StemKey::of(&function), now);
            st.prewarm(&function.pool_id(), count as usize, now, fx) as u32
        })
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
        self.invoke_as(function, event, trigger, false).await
    }

    /// [`Engine::invoke`], with the end of the call's log in
    /// [`Outcome::log_tail`].
    pub async fn invoke_with_log_tail(
        &self,
        function: Arc<Function>,
        event: Box<RawValue>,
        trigger: Trigger,
    ) -> Outcome {
        self.invoke_as(function, event, trigger, true).await
    }

    async fn invoke_as(
        &self,
        function: Arc<Function>,
        event: Box<RawValue>,
        trigger: Trigger,
        log_tail: bool,
    ) -> Outcome {
        let id = new_id("inv");
        let span = tracing::info_span!(
            "invocation",
            function = %function.label(),
            version = function.version,
            id = %id,
            backend = %function.config.backend,
            start = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        self.invoke_in(function, event, trigger, log_tail, id, span.clone())
            .instrument(span)
            .await
    }

    async fn invoke_in(
        &self,
        function: Arc<Function>,
        event: Box<RawValue>,
        trigger: Trigger,
        log_tail: bool,
        id: String,
        span: tracing::Span,
    ) -> Outcome {
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
            log_tail,
            tx,
            span,
        };
        match self.inner.enqueue(function.clone(), pending) {
            Err(refused) => {
                let (p, err) = *refused;
                self.inner.refuse(&function, p, err)
            }
            Ok(()) => match tokio::time::timeout(queue_timeout, &mut rx).await {
                Ok(Ok(outcome)) => return outcome,
                Ok(Err(_)) => return Outcome::refused(id, version, arrived, CallError::Lost),
                Err(_) => {
                    // Still queued? Then it waited too long.
                    if let Some(p) = self.inner.unqueue(&function.pool_id(), &id) {
                        let err = CallError::Throttled {
                            message: format!(
                                "no sandbox became free within the queue timeout of {} ms",
                                function.config.queue_timeout_ms
                            ),
                            retry_after_s: 1,
                        };
                        self.inner.refuse(&function, p, err);
                    }
                }
            },
        }
        // Refused now, or taken by a sandbox: it runs to its own deadline.
        rx.await
            .unwrap_or_else(|_| Outcome::refused(id, version, arrived, CallError::Lost))
    }

    /// A function was updated: new calls use the new version, and the old
    /// version's sandboxes are drained (idle ones now, busy ones when their
    /// calls end).
    pub fn function_updated(&self, function: Arc<Function>) {
        self.inner.with_state(|st, fx| {
            let now = Instant::now();
            if !st.adopt_version(&function, fx) {
                return;
            }
            st.stems.ensure(StemKey::of(&function), now);
            st.maintain(now, fx);
        });
    }

    /// A function was deleted at `version`: queued calls fail, sandboxes
    /// are drained; calls already starting finish with their version.
    pub fn function_removed(&self, id: &FunctionId, version: u64) {
        let label = id.to_string();
        if let Ok(mut agg) = self.inner.recorder.metrics.aggregator.lock() {
            agg.forget(&label);
        }
        if let Ok(mut known) = self.inner.observer.last_calls.lock() {
            known.remove(&label);
        }
        self.inner.with_state(|st, fx| {
            let last = st.removed.entry(id.clone()).or_default();
            *last = (*last).max(version);
            // The latest version's pool and those of published versions.
            let pools: Vec<FunctionId> = st
                .functions
                .keys()
                .filter(|k| is_pool_of(k, id))
                .cloned()
                .collect();
            for pool in pools {
                st.drop_pool(&pool, CallError::Deleted(id.to_string()), fx);
            }
        });
    }

    /// A published version was deleted: its pool goes.
    pub fn version_removed(&self, id: &FunctionId, version: u64) {
        let pool = FunctionId::new(&id.namespace, format!("{}:{version}", id.name));
        self.inner.with_state(|st, fx| {
            st.drop_pool(&pool, CallError::Deleted(format!("{id}:{version}")), fx);
        });
    }

    /// The sandboxes of one function, one by one (newest first).
    pub fn sandboxes_of(&self, id: &FunctionId) -> Vec<SandboxInfo> {
        let st = self.inner.lock();
        let now = Instant::now();
        let mut out: Vec<(Instant, SandboxInfo)> = st
            .sandboxes
            .iter()
            .filter_map(|(sid, r)| match &r.owner {
                Owner::Function { id: f, version } if is_pool_of(f, id) => Some((
                    r.created,
                    SandboxInfo {
                        id: sid.to_string(),
                        version: *version,
                        backend: r.backend,
                        state: r.life.state().as_str().to_string(),
                        memory_mb: r.memory_mb,
                        age_ms: now.duration_since(r.created).as_millis() as u64,
                        in_state_ms: now.duration_since(r.life.since()).as_millis() as u64,
                        calls: r.calls,
                    },
                )),
                _ => None,
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.0));
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// Pools by function and stem-cell key, for introspection.
    pub fn pools(&self) -> PoolsInfo {
        let st = self.inner.lock();
        let mut by_function: HashMap<&FunctionId, BTreeMap<&'static str, usize>> = HashMap::new();
        for (_, r) in st.sandboxes.iter() {
            if let Some(f) = r.owner.function() {
                *by_function
                    .entry(f)
                    .or_default()
                    .entry(r.life.state().as_str())
                    .or_default() += 1;
            }
        }
        let mut functions: Vec<PoolInfo> = st
            .functions
            .iter()
            .map(|(id, fs)| {
                let mut sandboxes: BTreeMap<&'static str, usize> = SandboxState::ALL
                    .iter()
                    .filter(|s| **s != SandboxState::Dead && **s != SandboxState::Stem)
                    .map(|s| (s.as_str(), 0))
                    .collect();
                for (state, n) in by_function.get(id).into_iter().flatten() {
                    *sandboxes.entry(state).or_default() += n;
                }
                PoolInfo {
                    function: id.to_string(),
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
            memory_used_mb: st.budget.used_mb(),
            memory_budget_mb: st.budget.budget_mb(),
        }
    }

    /// Live sandboxes by backend and state.
    pub fn sandbox_counts(&self) -> BTreeMap<(BackendKind, &'static str), usize> {
        let st = self.inner.lock();
        let mut out = BTreeMap::new();
        for (_, r) in st.sandboxes.iter() {
            *out.entry((r.backend, r.life.state().as_str())).or_default() += 1;
        }
        out
    }

    /// Memory reserved by live sandboxes, and the budget, in MiB.
    pub fn memory(&self) -> (u64, u64) {
        let st = self.inner.lock();
        (st.budget.used_mb(), st.budget.budget_mb())
    }

    /// Stops taking calls, lets the ones in flight finish for up to `grace`,
    /// then removes every sandbox: the idle ones, the ones still running
    /// past the grace period, and the ones that finish booting meanwhile.
    /// Returns once every removal has finished (or the boot timeout has
    /// passed on top of the grace period, for a backend that hangs).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        self.inner.lock().accepting = false;
        let deadline = tokio::time::Instant::now() + grace;
        let drained = self
            .inner
            .wait_until(deadline, |st| {
                !st.functions
                    .values()
                    .any(|fs| fs.active > 0 || !fs.queue.is_empty())
            })
            .await;
        if !drained {
            tracing::warn!("shutdown grace period over; killing sandboxes with calls in flight");
        }
        let n = self.inner.with_state(|st, fx| {
            for fs in st.functions.values_mut() {
                fs.idle.clear();
            }
            st.stems.drain();
            let live: Vec<_> = st
                .sandboxes
                .iter()
                .filter_map(|(id, r)| Some((id.clone(), r.handle.clone()?)))
                .collect();
            let n = live.len();
            for (id, handle) in live {
                st.retire(id, handle, "server stopping", fx);
            }
            n
        });
        // A sandbox still booting has no handle yet: it is retired when its
        // boot ends (nothing takes it once `accepting` is off).
        let deadline = tokio::time::Instant::now() + self.inner.config.boot_timeout;
        let inner = &self.inner;
        let clean = inner
            .wait_until(deadline, |st| {
                st.sandboxes.is_empty() && inner.removing.load(Ordering::SeqCst) == 0
            })
            .await;
        if !clean {
            tracing::warn!(
                left = self.inner.lock().sandboxes.len(),
                "sandboxes still booting or being removed at exit"
            );
        }
        tracing::info!(sandboxes = n, "engine stopped");
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed in short critical sections that do not
        // panic midway; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes a sandbox, counted in `removing` until it is gone.
    pub(crate) async fn destroy(&self, handle: &Arc<dyn SandboxHandle>) {
        self.removing.fetch_add(1, Ordering::SeqCst);
        handle.destroy().await;
        self.removing.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until `done` holds for the state, or `deadline`; true if it
    /// held. Rechecked whenever `changed` is signalled.
    async fn wait_until(
        &self,
        deadline: tokio::time::Instant,
        done: impl Fn(&State) -> bool,
    ) -> bool {
        loop {
            let notified = self.changed.notified();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.lock());
            }
        }
    }

    /// Runs `f` on the state under its lock, then starts what it decided
    /// (tasks are never spawned with the lock held).
    fn with_state<R>(self: &Arc<Self>, f: impl FnOnce(&mut State, &mut Effects) -> R) -> R {
        let mut effects = Effects::new();
        let r = {
            let mut st = self.lock();
            f(&mut st, &mut effects)
        };
        self.apply(effects);
        r
    }

    fn apply(self: &Arc<Self>, effects: Effects) {
        for effect in effects {
            match effect {
                Effect::Run {
                    sandbox,
                    batch,
                    start,
                    init_ms,
                } => {
                    let span = batch_span(&batch, &sandbox.id);
                    let inner = self.clone();
                    tokio::spawn(
                        async move { inner.run(sandbox, batch, start, init_ms).await }
                            .instrument(span),
                    );
                }
                Effect::Specialize {
                    cell,
                    function,
                    batch,
                } => {
                    let span = batch_span(&batch, &cell.id);
                    let inner = self.clone();
                    tokio::spawn(
                        async move { inner.specialize(cell, function, batch).await }
                            .instrument(span),
                    );
                }
                Effect::ColdStart {
                    id,
                    function,
                    batch,
                } => {
                    let span = batch_span(&batch, &id);
                    let inner = self.clone();
                    tokio::spawn(
                        async move { inner.cold_start(id, function, batch).await }.instrument(span),
                    );
                }
                Effect::BootStem { id, key, cpus } => {
                    let inner = self.clone();
                    let span = tracing::debug_span!("stem_boot", sandbox = %id, key = %key);
                    tokio::spawn(
                        async move { inner.boot_stem(id, key, cpus).await }.instrument(span),
                    );
                }
                Effect::BatchTimer { function, at } => {
                    let inner = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at).await;
                        inner.with_state(|st, fx| {
                            if let Some(fs) = st.functions.get_mut(&function) {
                                fs.batch_timer = false;
                            }
                            st.pump(&function, Instant::now(), fx);
                        });
                    });
                }
                Effect::Destroy(handle) => {
                    let inner = self.clone();
                    tokio::spawn(async move { inner.destroy(&handle).await });
                }
                Effect::Refuse {
                    function,
                    calls,
                    error,
                } => {
                    for p in calls {
                        self.refuse(&function, p, error.clone());
                    }
                    self.changed.notify_waiters();
                }
            }
        }
    }

    /// Queues a call and dispatches what can be dispatched; gives the call
    /// back with the reason when it cannot be queued.
    fn enqueue(
        self: &Arc<Self>,
        function: Arc<Function>,
        pending: Pending,
    ) -> Result<(), Box<(Pending, CallError)>> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(Box::new((pending, CallError::ShuttingDown)));
        }
        let capacity = self.config.queue_capacity;
        self.with_state(|st, fx| {
            let base = function.id();
            if let Some(&deleted) = st.removed.get(&base) {
                if function.version <= deleted {
                    return Err(Box::new((pending, CallError::Deleted(base.to_string()))));
                }
                // Created again since.
                st.removed.remove(&base);
            }
            let id = function.pool_id();
            let now = Instant::now();
            if !st.functions.contains_key(&id) {
                st.functions
                    .insert(id.clone(), FnState::new(function.clone()));
                st.stems.ensure(StemKey::of(&function), now);
            } else {
                st.adopt_version(&function, fx);
            }
            let Some(fs) = st.functions.get_mut(&id) else {
                return Err(Box::new((pending, CallError::Lost)));
            };
            if fs.queue.len() >= capacity {
                return Err(Box::new((
                    pending,
                    CallError::Throttled {
                        message: format!("{capacity} calls of `{id}` are already queued"),
                        retry_after_s: 1,
                    },
                )));
            }
            fs.queue.push_back(pending);
            st.pump(&id, now, fx);
            Ok(())
        })
    }

    /// Answers a call that never ran, and records it like any other.
    fn refuse(&self, function: &Function, p: Pending, err: CallError) {
        let outcome = Outcome::refused(p.id.clone(), function.version, p.arrived, err);
        self.record(function, p.trigger, p.arrived_ms, &outcome, None, None);
        if let Err(e) = &outcome.result {
            p.span.record("outcome", e.kind().as_str());
        }
        // The caller may be gone (it disconnected): the call still counts.
        let _ = p.tx.send(outcome);
    }

    /// Removes a call from its function's queue; `None` when it was
    /// already taken by a sandbox.
    fn unqueue(&self, function: &FunctionId, id: &str) -> Option<Pending> {
        let mut st = self.lock();
        let fs = st.functions.get_mut(function)?;
        let i = fs.queue.iter().position(|p| p.id == id)?;
        fs.queue.remove(i)
    }
}

/// The span of a task working on a batch: the call's own when it is alone,
/// else one that follows from each call's.
fn batch_span(batch: &[Pending], sandbox: &SandboxId) -> tracing::Span {
    match batch {
        [one] => one.span.clone(),
        many => {
            let span = tracing::info_span!("batch", sandbox = %sandbox, calls = many.len());
            for p in many {
                span.follows_from(&p.span);
            }
            span
        }
    }
}

/// Whether `pool` is a pool of function `id`: its own (the latest version)
/// or one of a published version (`name:N`).
fn is_pool_of(pool: &FunctionId, id: &FunctionId) -> bool {
    pool.namespace == id.namespace
        && (pool.name == id.name
            || pool
                .name
                .strip_prefix(id.name.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit())))
}

impl State {
    /// Removes a pool: its queued calls fail with `error`, its idle
    /// sandboxes go; busy ones find no pool when they return and go then.
    fn drop_pool(&mut self, pool: &FunctionId, error: CallError, fx: &mut Effects) {
        let Some(mut fs) = self.functions.remove(pool) else {
            return;
        };
        fx.push(Effect::Refuse {
            function: fs.function.clone(),
            calls: fs.queue.drain(..).collect(),
            error,
        });
        for w in fs.idle.drain(..) {
            self.retire(w.sandbox.id, w.sandbox.handle, "function deleted", fx);
        }
        if fs.active > 0 {
            tracing::debug!(pool = %pool, active = fs.active, "draining a removed pool");
        }
    }

    /// Makes `function` the version new calls use, when it is newer:
    /// idle sandboxes of the old one are retired. Returns whether it was.
    fn adopt_version(&mut self, function: &Arc<Function>, fx: &mut Effects) -> bool {
        let Some(fs) = self.functions.get_mut(&function.pool_id()) else {
            return false;
        };
        if function.version <= fs.function.version {
            return false;
        }
        fs.function = function.clone();
        let stale: Vec<Sandbox> = fs.idle.drain(..).map(|w| w.sandbox).collect();
        for s in stale {
            self.retire(s.id, s.handle, "new version", fx);
        }
        true
    }

    /// Forgets a sandbox and releases its memory.
    fn forget(&mut self, id: &SandboxId) {
        if let Some(r) = self.sandboxes.forget(id) {
            self.budget.release(r.memory_mb);
        }
    }

    /// Retires a sandbox nobody will use again: forgets it and removes it
    /// once the lock is released.
    fn retire(
        &mut self,
        id: SandboxId,
        handle: Arc<dyn SandboxHandle>,
        why: &str,
        fx: &mut Effects,
    ) {
        tracing::debug!(sandbox = %id, why, "retiring sandbox");
        self.forget(&id);
        fx.push(Effect::Destroy(handle));
    }

    /// What the host can offer a cold call of `function` now.
    fn capacity(&self, function: &Function, fs: &FnState, now: Instant) -> Capacity {
        let key = StemKey::of(function);
        Capacity {
            stem: self.stems.availability(&key, fs.has_sandboxes()),
            backoff: self.backoff.remaining(function.config.backend, now),
            memory_fits: self
                .eviction_plan(
                    &function.pool_id(),
                    &key,
                    u64::from(function.config.memory_mb),
                )
                .is_some(),
        }
    }

    /// What to evict so a sandbox of `need` MiB fits: idle sandboxes of
    /// other functions (least recently used first), then ready stem cells
    /// of other keys. `None`: it cannot fit.
    fn eviction_plan(
        &self,
        for_function: &FunctionId,
        key: &StemKey,
        need: u64,
    ) -> Option<Vec<Victim>> {
        let free = self.budget.free_mb();
        if need <= free {
            return Some(Vec::new());
        }
        let mut candidates = Vec::new();
        for (fid, fs) in &self.functions {
            if fid == for_function {
                continue;
            }
            for w in &fs.idle {
                candidates.push(Candidate {
                    what: Victim::Idle(fid.clone(), w.sandbox.id.clone()),
                    memory_mb: u64::from(w.sandbox.function.config.memory_mb),
                    last_used: Some(w.last_used),
                });
            }
        }
        for (_, id, mb) in self.stems.evictable(key) {
            candidates.push(Candidate {
                what: Victim::Stem(id),
                memory_mb: mb,
                last_used: None,
            });
        }
        plan_eviction(need, free, &candidates)
    }

    /// Evicts what `plan` says, then reserves `need` MiB.
    fn evict_and_reserve(&mut self, plan: Vec<Victim>, need: u64, fx: &mut Effects) -> bool {
        for victim in plan {
            match victim {
                Victim::Idle(f, id) => {
                    let found = self.functions.get_mut(&f).and_then(|fs| {
                        let i = fs.idle.iter().position(|w| w.sandbox.id == id)?;
                        Some(fs.idle.remove(i).sandbox)
                    });
                    if let Some(s) = found {
                        self.retire(s.id, s.handle, "evicted to make room", fx);
                    }
                }
                Victim::Stem(id) => {
                    if let Some(cell) = self.stems.remove(&id) {
                        self.retire(cell.id, cell.handle, "evicted to make room", fx);
                    }
                }
            }
        }
        self.budget.reserve(need)
    }

    /// Hands queued calls of `id` to idle sandboxes, stem cells or new
    /// sandboxes, as [`next_action`] decides, until it says wait.
    fn pump(&mut self, id: &FunctionId, now: Instant, fx: &mut Effects) {
        loop {
            let Some(fs) = self.functions.get(id) else {
                return;
            };
            let function = fs.function.clone();
            let view = fs.view();
            let capacity = self.capacity(&function, fs, now);
            let key = StemKey::of(&function);
            if stem_missed(&view, &capacity) {
                self.stems.miss(&key, now);
            }
            match next_action(&view, &capacity, now) {
                Dispatch::Nothing | Dispatch::Wait => return,
                Dispatch::HoldBatch { until } => {
                    if let Some(fs) = self.functions.get_mut(id) {
                        if !fs.batch_timer {
                            fs.batch_timer = true;
                            fx.push(Effect::BatchTimer {
                                function: id.clone(),
                                at: until,
                            });
                        }
                    }
                    return;
                }
                Dispatch::FailAll { retry_after } => {
                    let Some(fs) = self.functions.get_mut(id) else {
                        return;
                    };
                    fx.push(Effect::Refuse {
                        function: function.clone(),
                        calls: fs.queue.drain(..).collect(),
                        error: CallError::BackedOff {
                            backend: function.config.backend,
                            retry_after,
                        },
                    });
                    return;
                }
                Dispatch::Warm { take } => {
                    let Some(fs) = self.functions.get_mut(id) else {
                        return;
                    };
                    let Some(warm) = fs.idle.pop() else { return };
                    let batch = fs.take_batch(take);
                    fs.active += 1;
                    self.sandboxes.go(&warm.sandbox.id, SandboxState::Busy);
                    self.sandboxes.served(&warm.sandbox.id, batch.len());
                    fx.push(Effect::Run {
                        sandbox: warm.sandbox,
                        batch,
                        start: StartKind::Warm,
                        init_ms: None,
                    });
                }
                Dispatch::Stem { take } => {
                    let Some(cell) = self.stems.take(&key, now) else {
                        return;
                    };
                    self.sandboxes.set_owner(
                        &cell.id,
                        Owner::Function {
                            id: id.clone(),
                            version: function.version,
                        },
                    );
                    let Some(fs) = self.functions.get_mut(id) else {
                        return;
                    };
                    let batch = fs.take_batch(take);
                    fs.active += 1;
                    self.sandboxes.served(&cell.id, batch.len());
                    fx.push(Effect::Specialize {
                        cell,
                        function,
                        batch,
                    });
                }
                Dispatch::Cold { take } => {
                    let need = u64::from(function.config.memory_mb);
                    let Some(plan) = self.eviction_plan(id, &key, need) else {
                        return;
                    };
                    if !self.evict_and_reserve(plan, need, fx) {
                        return;
                    }
                    let sandbox = self.sandboxes.booting(
                        Owner::Function {
                            id: id.clone(),
                            version: function.version,
                        },
                        function.config.backend,
                        need,
                    );
                    let Some(fs) = self.functions.get_mut(id) else {
                        return;
                    };
                    let batch = fs.take_batch(take);
                    fs.active += 1;
                    self.sandboxes.served(&sandbox, batch.len());
                    fx.push(Effect::ColdStart {
                        id: sandbox,
                        function,
                        batch,
                    });
                }
            }
        }
    }

    /// Gives every function with queued calls a chance, in round-robin
    /// order, so that capacity freed by one function is shared fairly.
    fn pump_waiting(&mut self, now: Instant, fx: &mut Effects) {
        let mut waiting: Vec<FunctionId> = self
            .functions
            .iter()
            .filter(|(_, fs)| !fs.queue.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.sort();
        let start = self.cursor % waiting.len();
        self.cursor = self.cursor.wrapping_add(1);
        for i in 0..waiting.len() {
            self.pump(&waiting[(start + i) % waiting.len()], now, fx);
        }
    }

    /// Boots up to `n` more initialized sandboxes of `id` ahead of demand,
    /// within `max_concurrency` and the memory budget (without evicting
    /// anything). Returns how many started.
    fn prewarm(&mut self, id: &FunctionId, n: usize, now: Instant, fx: &mut Effects) -> usize {
        let mut started = 0;
        while started < n {
            let Some(fs) = self.functions.get(id) else {
                break;
            };
            let function = fs.function.clone();
            if fs.idle.len() + fs.active >= function.config.max_concurrency as usize {
                break;
            }
            let key = StemKey::of(&function);
            if self.stems.availability(&key, fs.has_sandboxes()) == stems::StemAvailability::Ready {
                let Some(cell) = self.stems.take(&key, now) else {
                    break;
                };
                self.sandboxes.set_owner(
                    &cell.id,
                    Owner::Function {
                        id: id.clone(),
                        version: function.version,
                    },
                );
                if let Some(fs) = self.functions.get_mut(id) {
                    fs.active += 1;
                }
                fx.push(Effect::Specialize {
                    cell,
                    function,
                    batch: Vec::new(),
                });
            } else {
                let need = u64::from(function.config.memory_mb);
                if self
                    .backoff
                    .remaining(function.config.backend, now)
                    .is_some()
                    || !self.budget.reserve(need)
                {
                    break;
                }
                let sandbox = self.sandboxes.booting(
                    Owner::Function {
                        id: id.clone(),
                        version: function.version,
                    },
                    function.config.backend,
                    need,
                );
                if let Some(fs) = self.functions.get_mut(id) {
                    fs.active += 1;
                }
                fx.push(Effect::ColdStart {
                    id: sandbox,
                    function,
                    batch: Vec::new(),
                });
            }
            started += 1;
        }
        started
    }

    /// The CPU share of sandboxes of a stem key: the largest asked for by a
    /// function with that key (stem cells are generic, so they get the most
    /// any of their future owners needs).
    fn cpus_for(&self, key: StemKey) -> f64 {
        self.functions
            .values()
            .filter(|fs| StemKey::of(&fs.function) == key)
            .map(|fs| fs.function.config.cpus)
            .fold(ignis_core::function::limits::DEFAULT_CPUS, f64::max)
    }
}

/// Something to evict.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Victim {
    Idle(FunctionId, SandboxId),
    Stem(SandboxId),
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A new time-ordered id with a prefix: `inv-0190b...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}
