//! What the engine exposes for metrics: resource sampling (per sandbox, per
//! function, host), per-minute rollups written to the store with retention,
//! windows and time series that span memory and the store, and the live
//! snapshot stream.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ignis_metrics::host::{HostSampler, HostUsage};
use ignis_metrics::{
    Bucket, FunctionLabels, SandboxLabels, Scope, StateLabels, StemLabels, WindowStats,
};
use ignis_store::Rollup;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::state::{SandboxState, TRANSITIONS};
use crate::{Engine, Inner};

/// How often resources are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// How often complete minutes are written to the store.
const ROLLUP_INTERVAL: Duration = Duration::from_secs(10);
/// How often retention runs at the least.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// Retention also runs once this share of the record bound was written
/// since it last ran, so that a busy server overshoots `max_invocations`
/// by a tenth at most instead of by up to ten minutes of calls (found by
/// the soak: the file grew past its bound until the next prune).
const PRUNE_SHARE: u64 = 10;

/// Retention of stored metrics.
#[derive(Debug, Clone)]
pub struct Retention {
    pub rollup_days: u64,
    pub invocation_hours: u64,
    pub max_invocations: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            rollup_days: 7,
            invocation_hours: 24,
            max_invocations: 1_000_000,
        }
    }
}

/// Resource use of one function's sandboxes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionResources {
    pub sandboxes: usize,
    pub memory_bytes: u64,
    /// CPU time of the live sandboxes since they started, seconds.
    pub cpu_seconds: f64,
    /// CPU use over the last sample interval, in cores.
    pub cpu_cores: f64,
}

/// The latest resource sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    pub sampled_at_ms: i64,
    pub host: HostUsage,
    pub functions: BTreeMap<String, FunctionResources>,
    /// Live sandboxes by backend and state.
    pub sandboxes: BTreeMap<String, BTreeMap<String, usize>>,
    pub memory_reserved_mb: u64,
    pub memory_budget_mb: u64,
}

/// One function in the live snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionSnapshot {
    /// The last second.
    pub last_second: WindowStats,
    /// The last minute.
    pub last_minute: WindowStats,
    pub queued: usize,
    pub active: usize,
    pub idle: usize,
    pub resources: FunctionResources,
    /// When it was last called (Unix ms), if known.
    #[serde(default)]
    pub last_call_at_ms: Option<i64>,
}

impl Resources {
    /// All functions' sandboxes together.
    pub fn total(&self) -> FunctionResources {
        self.functions
            .values()
            .fold(FunctionResources::default(), |mut a, r| {
                a.sandboxes += r.sandboxes;
                a.memory_bytes += r.memory_bytes;
                a.cpu_seconds += r.cpu_seconds;
                a.cpu_cores += r.cpu_cores;
                a
            })
    }
}

/// What `GET /api/v1/metrics/stream` sends every second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub at_ms: i64,
    pub system: FunctionSnapshot,
    pub functions: BTreeMap<String, FunctionSnapshot>,
    pub resources: Resources,
    pub records_dropped: u64,
}

pub(crate) struct Observer {
    pub resources: std::sync::Mutex<Resources>,
    pub stream: broadcast::Sender<Arc<String>>,
    /// This server run, as the `part` of its rollups.
    pub part: String,
    pub retention: Retention,
    /// Last calls read from the store (by label), for functions not called
    /// since the server started.
    pub last_calls: std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>,
}

impl Observer {
    pub fn new(retention: Retention) -> Self {
        Self {
            resources: Default::default(),
            stream: broadcast::channel(16).0,
            part: crate::new_id("run"),
            retention,
            last_calls: Default::default(),
        }
    }
}

fn now_s() -> i64 {
    ignis_core::now_ms().div_euclid(1000)
}

impl Engine {
    pub(crate) fn spawn_observers(&self) {
        let weak = Arc::downgrade(&self.inner);
        // Resource sampling.
        tokio::spawn({
            let weak = weak.clone();
            async move {
                let mut sampler = Sampler::default();
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.sample(&mut sampler).await;
                    drop(inner);
                    tokio::time::sleep(SAMPLE_INTERVAL).await;
                }
            }
        });
        // Rollups and retention.
        tokio::spawn({
            let weak = weak.clone();
            async move {
                let mut flushed_until = i64::MIN;
                let mut last_prune = tokio::time::Instant::now();
                let mut written_at_prune = 0;
                loop {
                    tokio::time::sleep(ROLLUP_INTERVAL).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let current_minute = now_s().div_euclid(60);
                    if let Some(m) = inner.flush_rollups(flushed_until, current_minute).await {
                        flushed_until = m;
                    }
                    let written = inner.recorder.stats.written.load(Ordering::Relaxed);
                    let bound = inner.observer.retention.max_invocations;
                    if last_prune.elapsed() >= PRUNE_INTERVAL
                        || written - written_at_prune >= (bound / PRUNE_SHARE).max(1)
                    {
                        last_prune = tokio::time::Instant::now();
                        written_at_prune = written;
                        inner.prune().await;
                    }
                }
            }
        });
        // The live stream: built only while someone listens.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.observer.stream.receiver_count() == 0 {
                    continue;
                }
                let snapshot = Engine {
                    inner: inner.clone(),
                }
                .snapshot();
                if let Ok(json) = serde_json::to_string(&snapshot) {
                    let _ = inner.observer.stream.send(Arc::new(json));
                }
            }
        });
    }

    /// Subscribes to the one-per-second snapshots.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<String>> {
        self.inner.observer.stream.subscribe()
    }

    /// Writes every minute up to and including the current one (used at
    /// shutdown, so that charts survive a restart).
    pub async fn flush_metrics(&self) {
        let next_minute = now_s().div_euclid(60) + 1;
        self.inner.flush_rollups(i64::MIN, next_minute).await;
    }

    pub fn resources(&self) -> Resources {
        self.inner
            .observer
            .resources
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// A snapshot of the last second and minute, system-wide and per function.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_where(None)
    }

    /// The snapshot as someone who sees only the functions `visible`
    /// accepts (by label) would: its `system` block sums those functions
    /// only (merged, so its percentiles are exact), and sandbox counts by
    /// backend, which cover every namespace, are left out. `None`: all.
    pub fn snapshot_where(&self, visible: Option<&dyn Fn(&str) -> bool>) -> Snapshot {
        let now = now_s();
        let mut resources = self.resources();
        let metrics = &self.inner.recorder.metrics;
        let sees = |label: &str| visible.is_none_or(|v| v(label));
        // (queued, active, idle) per function.
        let queues: BTreeMap<String, (usize, usize, usize)> = {
            let st = self.inner.lock();
            st.functions
                .iter()
                .map(|(id, fs)| (id.to_string(), (fs.queue.len(), fs.active, fs.idle.len())))
                .filter(|(label, _)| sees(label))
                .collect()
        };
        if visible.is_some() {
            resources.functions.retain(|label, _| sees(label));
            resources.sandboxes.clear();
        }
        let mut all: Vec<String> = queues.keys().cloned().collect();
        if let Ok(agg) = metrics.aggregator.lock() {
            all.extend(agg.functions().into_iter().filter(|l| sees(l)));
        }
        all.sort();
        all.dedup();
        // Read under the locks, used after them (`metrics.window` locks
        // the aggregator again).
        let last_calls: BTreeMap<&str, Option<i64>> = {
            let seeded = self.inner.observer.last_calls.lock().ok();
            let agg = metrics.aggregator.lock().ok();
            all.iter()
                .map(|l| {
                    let t = agg.as_ref().and_then(|a| a.last_call_ms(l)).or_else(|| {
                        seeded
                            .as_ref()
                            .and_then(|s| s.get(l.as_str()).copied().flatten())
                    });
                    (l.as_str(), t)
                })
                .collect()
        };
        let function = |label: &str| {
            let scope = Scope::function(label);
            let (queued, active, idle) = queues.get(label).copied().unwrap_or_default();
            FunctionSnapshot {
                last_second: metrics.window(&scope, now - 1, now).stats(1.0),
                last_minute: metrics.window(&scope, now - 60, now).stats(60.0),
                queued,
                active,
                idle,
                resources: resources.functions.get(label).cloned().unwrap_or_default(),
                last_call_at_ms: last_calls.get(label).copied().flatten(),
            }
        };
        let functions: BTreeMap<String, FunctionSnapshot> =
            all.iter().map(|l| (l.clone(), function(l))).collect();
        let window = |from: i64, to: i64| match visible {
            None => metrics.window(&Scope::System, from, to),
            Some(_) => all.iter().fold(Bucket::default(), |mut b, l| {
                b.merge(&metrics.window(&Scope::function(l.as_str()), from, to));
                b
            }),
        };
        let (queued, active, idle) = queues
            .values()
            .fold((0, 0, 0), |a, q| (a.0 + q.0, a.1 + q.1, a.2 + q.2));
        let system = FunctionSnapshot {
            last_second: window(now - 1, now).stats(1.0),
            last_minute: window(now - 60, now).stats(60.0),
            queued,
            active,
            idle,
            resources: resources.total(),
            last_call_at_ms: functions.values().filter_map(|f| f.last_call_at_ms).max(),
        };
        Snapshot {
            at_ms: ignis_core::now_ms(),
            system,
            functions,
            resources,
            records_dropped: self
                .inner
                .recorder
                .stats
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// When `function` was last called (Unix ms): from the calls counted
    /// since the server started, else its newest stored invocation record
    /// (looked up once, then remembered).
    pub async fn last_call_ms(
        &self,
        function: &ignis_core::FunctionId,
    ) -> Result<Option<i64>, ignis_store::StoreError> {
        let label = function.to_string();
        let counted = self
            .inner
            .recorder
            .metrics
            .aggregator
            .lock()
            .ok()
            .and_then(|a| a.last_call_ms(&label));
        if counted.is_some() {
            return Ok(counted);
        }
        if let Some(known) = self
            .inner
            .observer
            .last_calls
            .lock()
            .ok()
            .and_then(|s| s.get(&label).copied())
        {
            return Ok(known);
        }
        let stored = self.inner.store.last_invocation_ms(function).await?;
        if let Ok(mut s) = self.inner.observer.last_calls.lock() {
            s.insert(label, stored);
        }
        Ok(stored)
    }

    /// Merged calls of several scopes over the last `seconds`.
    pub async fn bucket_of(
        &self,
        scopes: &[Scope],
        seconds: i64,
    ) -> Result<Bucket, ignis_store::StoreError> {
        let mut merged = Bucket::default();
        for scope in scopes {
            merged.merge(&self.bucket(scope, seconds).await?);
        }
        Ok(merged)
    }

    /// Stats of `scope` over the last `seconds` (the current
    /// second included): from memory up to 15 minutes, from stored rollups
    /// and memory beyond.
    pub async fn window(
        &self,
        scope: &Scope,
        seconds: i64,
    ) -> Result<WindowStats, ignis_store::StoreError> {
        Ok(self.bucket(scope, seconds).await?.stats(seconds as f64))
    }

    /// The merged calls of `scope` over the last `seconds`, to be merged
    /// further (per backend) or turned into stats.
    pub async fn bucket(
        &self,
        scope: &Scope,
        seconds: i64,
    ) -> Result<Bucket, ignis_store::StoreError> {
        let now = now_s();
        let (from, to) = (now - seconds + 1, now + 1);
        if seconds <= ignis_metrics::aggregate::RETENTION_S {
            return Ok(self.inner.recorder.metrics.window(scope, from, to));
        }
        let rollups = self
            .inner
            .store
            .read_rollups(scope, from.div_euclid(60), to.div_euclid(60) + 1)
            .await?;
        Ok(self.merged(&rollups, scope, from, to, now))
    }

    /// The newest failed calls (errors and timeouts), newest first.
    pub fn recent_errors(&self, limit: usize) -> Vec<ignis_metrics::aggregate::RecentError> {
        self.inner
            .recorder
            .metrics
            .aggregator
            .lock()
            .map(|a| a.recent_errors().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// Calls of `[from, to)` seconds: this run's recent minutes from memory,
    /// everything else (older minutes, other runs' parts) from `rollups`.
    fn merged(&self, rollups: &[Rollup], scope: &Scope, from: i64, to: i64, now: i64) -> Bucket {
        // Memory holds this run's calls since `memory_from` (a minute
        // boundary, so that a minute is never half from each source).
        let memory_from =
            (now - ignis_metrics::aggregate::RETENTION_S + 1 + 59).div_euclid(60) * 60;
        let mine = &self.inner.observer.part;
        let mut b = Bucket::default();
        for r in rollups {
            let t = r.minute * 60;
            let in_range = t >= from.div_euclid(60) * 60 && t < to;
            if in_range && (&r.part != mine || t < memory_from) {
                b.merge(&bucket_of(r));
            }
        }
        let mem_start = from.max(memory_from);
        if mem_start < to {
            b.merge(&self.inner.recorder.metrics.window(scope, mem_start, to));
        }
        b
    }

    /// A time series of `scope`: `window` seconds back in
    /// steps of `step` seconds. Windows over 15 minutes need whole-minute
    /// steps and combine stored rollups with memory.
    pub async fn series(
        &self,
        scope: &Scope,
        window: i64,
        step: i64,
    ) -> Result<Vec<(i64, WindowStats)>, ignis_store::StoreError> {
        let now = now_s();
        let start = (now - window).div_euclid(step) * step + step;
        let rollups = if window > ignis_metrics::aggregate::RETENTION_S {
            self.inner
                .store
                .read_rollups(scope, start.div_euclid(60), now.div_euclid(60) + 1)
                .await?
        } else {
            Vec::new()
        };
        let mut out = Vec::new();
        let mut t = start;
        while t <= now {
            let b = if rollups.is_empty() && window <= ignis_metrics::aggregate::RETENTION_S {
                self.inner.recorder.metrics.window(scope, t, t + step)
            } else {
                self.merged(&rollups, scope, t, t + step, now)
            };
            out.push((t, b.stats(step as f64)));
            t += step;
        }
        Ok(out)
    }
}

/// A stored rollup as a bucket.
pub fn bucket_of(r: &Rollup) -> Bucket {
    Bucket {
        requests: r.requests,
        success: r.success,
        errors: r.errors,
        timeouts: r.timeouts,
        throttled: r.throttles,
        cold_starts: r.cold_starts,
        stem_starts: r.stem_starts,
        init_ms_sum: r.init_ms_sum,
        init_count: r.init_count,
        errors_by_type: serde_json::from_str(&r.errors_by_type).unwrap_or_default(),
        latency: ignis_metrics::histogram::Histogram::from_bytes(&r.histogram).unwrap_or_default(),
        cpu_ms_sum: r.cpu_ms_sum,
        cpu_count: r.cpu_count,
        memory_bytes_sum: r.memory_bytes_sum,
        memory_count: r.memory_count,
    }
}

impl Inner {
    /// Writes the minutes in `(after, before)` held in memory; returns the
    /// last minute written.
    async fn flush_rollups(&self, after: i64, before: i64) -> Option<i64> {
        let minutes = self
            .recorder
            .metrics
            .aggregator
            .lock()
            .ok()?
            .minutes(after.saturating_add(1), before);
        if minutes.is_empty() {
            return None;
        }
        let last = minutes.iter().map(|(_, m, _)| *m).max();
        let rollups: Vec<Rollup> = minutes
            .into_iter()
            .map(|(scope, minute, b)| Rollup {
                scope,
                minute,
                part: self.observer.part.clone(),
                requests: b.requests,
                success: b.success,
                errors: b.errors,
                timeouts: b.timeouts,
                throttles: b.throttled,
                cold_starts: b.cold_starts,
                stem_starts: b.stem_starts,
                init_ms_sum: b.init_ms_sum,
                init_count: b.init_count,
                total_ms_sum: b.latency.mean().unwrap_or(0.0) * b.latency.count() as f64,
                total_ms_max: b.latency.max(),
                errors_by_type: serde_json::to_string(&b.errors_by_type)
                    .unwrap_or_else(|_| "{}".into()),
                histogram: b.latency.to_bytes(),
                cpu_ms_sum: b.cpu_ms_sum,
                cpu_count: b.cpu_count,
                memory_bytes_sum: b.memory_bytes_sum,
                memory_count: b.memory_count,
            })
            .collect();
        match self.store.write_rollups(&rollups).await {
            Ok(()) => last,
            Err(e) => {
                tracing::error!(error = %e, "could not write metric rollups");
                None
            }
        }
    }

    async fn prune(&self) {
        let r = &self.observer.retention;
        let now_ms = ignis_core::now_ms();
        let rollups_before = now_ms / 60_000 - (r.rollup_days as i64) * 24 * 60;
        let invocations_before = now_ms - (r.invocation_hours as i64) * 3_600_000;
        match self
            .store
            .prune(rollups_before, invocations_before, r.max_invocations)
            .await
        {
            Ok((a, b)) if a + b > 0 => {
                tracing::info!(rollups = a, invocations = b, "retention pruned")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }

    /// Samples resources and sets the gauges.
    async fn sample(&self, sampler: &mut Sampler) {
        let metrics = &self.recorder.metrics;
        // Who is alive, by function, without holding the lock over I/O.
        let (live, queues, stems, reserved, budget) = {
            let st = self.lock();
            let live: Vec<LiveSandbox> = st
                .sandboxes
                .iter()
                .map(|(_, r)| {
                    (
                        r.owner.function().map(|f| f.to_string()),
                        r.backend.as_str(),
                        r.life.state().as_str(),
                        r.handle.clone(),
                    )
                })
                .collect();
            let queues: Vec<(String, usize, usize)> = st
                .functions
                .iter()
                .map(|(id, fs)| (id.to_string(), fs.queue.len(), fs.active))
                .collect();
            let stems: Vec<(crate::StemKey, usize, usize)> = st
                .stems
                .iter()
                .map(|(k, p)| (*k, p.ready.len(), p.booting))
                .collect();
            (
                live,
                queues,
                stems,
                st.budget.used_mb(),
                st.budget.budget_mb(),
            )
        };
        let mut functions: BTreeMap<String, FunctionResources> = BTreeMap::new();
        let mut by_state: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (function, backend, state, handle) in &live {
            *by_state
                .entry(backend.to_string())
                .or_default()
                .entry(state.to_string())
                .or_default() += 1;
            let Some(function) = function else { continue };
            let f = functions.entry(function.clone()).or_default();
            f.sandboxes += 1;
            if let Some(u) = match handle {
                Some(h) => h.usage().await,
                None => None,
            } {
                f.memory_bytes += u.memory_bytes;
                f.cpu_seconds += u.cpu_time_ms / 1e3;
            }
        }
        let now = tokio::time::Instant::now();
        for (name, f) in functions.iter_mut() {
            if let Some((cpu, at)) = sampler.last_cpu.get(name) {
                let dt = now.duration_since(*at).as_secs_f64();
                if dt > 0.0 {
                    f.cpu_cores = ((f.cpu_seconds - cpu) / dt).max(0.0);
                }
            }
            sampler.last_cpu.insert(name.clone(), (f.cpu_seconds, now));
        }
        sampler.last_cpu.retain(|n, _| functions.contains_key(n));
        let h = sampler.host.sample();

        // Gauges: every series of this sample is set, then the ones that are
        // gone are removed, so a scrape never sees a present series missing.
        sampler.sandboxes.update(
            &metrics.sandboxes,
            by_state.iter().flat_map(|(backend, states)| {
                states.iter().map(move |(state, n)| {
                    (
                        SandboxLabels {
                            backend: backend.clone(),
                            state: state.clone(),
                        },
                        *n as i64,
                    )
                })
            }),
        );
        for st in SandboxState::ALL {
            metrics
                .sandbox_transitions
                .get_or_create(&StateLabels {
                    state: st.as_str().to_string(),
                })
                .set(TRANSITIONS[st as usize].load(std::sync::atomic::Ordering::Relaxed) as i64);
        }
        let fl = |name: &String| FunctionLabels {
            function: name.clone(),
        };
        sampler.queue_depth.update(
            &metrics.queue_depth,
            queues.iter().map(|(n, q, _)| (fl(n), *q as i64)),
        );
        sampler.active.update(
            &metrics.active_sandboxes,
            queues.iter().map(|(n, _, a)| (fl(n), *a as i64)),
        );
        sampler.memory.update(
            &metrics.sandbox_memory,
            functions
                .iter()
                .map(|(n, f)| (fl(n), f.memory_bytes as i64)),
        );
        sampler.cpu.update(
            &metrics.sandbox_cpu,
            functions.iter().map(|(n, f)| (fl(n), f.cpu_seconds)),
        );
        sampler.stems.update(
            &metrics.stem_cells,
            stems.iter().flat_map(|(k, ready, booting)| {
                [("ready", *ready), ("booting", *booting)].map(|(state, n)| {
                    (
                        StemLabels {
                            runtime: k.runtime.as_str().to_string(),
                            backend: k.backend.as_str().to_string(),
                            memory_mb: k.memory_mb.to_string(),
                            state: state.to_string(),
                        },
                        n as i64,
                    )
                })
            }),
        );
        metrics.memory_reserved.set((reserved * 1024 * 1024) as i64);
        metrics.memory_budget.set((budget * 1024 * 1024) as i64);
        metrics.host_cpu.set(h.cpu_ratio);
        metrics.host_memory_used.set(h.memory_used_bytes as i64);
        metrics.host_memory_total.set(h.memory_total_bytes as i64);
        metrics.host_load1.set(h.load1);

        if let Ok(mut r) = self.observer.resources.lock() {
            *r = Resources {
                sampled_at_ms: ignis_core::now_ms(),
                host: h,
                functions,
                sandboxes: by_state,
                memory_reserved_mb: reserved,
                memory_budget_mb: budget,
            };
        }
    }
}

/// A live sandbox as the sampler sees it: its function (none for a stem
/// cell), backend, state and handle (none while it boots).
type LiveSandbox = (
    Option<String>,
    &'static str,
    &'static str,
    Option<Arc<dyn ignis_sandbox::SandboxHandle>>,
);

/// What the sampler keeps from one sample to the next.
#[derive(Default)]
struct Sampler {
    host: HostSampler,
    last_cpu: BTreeMap<String, (f64, tokio::time::Instant)>,
    sandboxes: GaugeSet<SandboxLabels>,
    queue_depth: GaugeSet<FunctionLabels>,
    active: GaugeSet<FunctionLabels>,
    memory: GaugeSet<FunctionLabels>,
    cpu: GaugeSet<FunctionLabels>,
    stems: GaugeSet<StemLabels>,
}

/// The label sets a gauge family had at the last sample.
struct GaugeSet<L> {
    last: HashSet<L>,
}

impl<L> Default for GaugeSet<L> {
    fn default() -> Self {
        Self {
            last: HashSet::new(),
        }
    }
}

/// A gauge that can be set to a sample's value.
trait SetTo<V> {
    fn set_to(&self, v: V);
}

impl SetTo<i64> for prometheus_client::metrics::gauge::Gauge {
    fn set_to(&self, v: i64) {
        self.set(v);
    }
}

impl SetTo<f64> for prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64> {
    fn set_to(&self, v: f64) {
        self.set(v);
    }
}

impl<
        L: Clone
            + std::hash::Hash
            + Eq
            + prometheus_client::encoding::EncodeLabelSet
            + std::fmt::Debug,
    > GaugeSet<L>
{
    /// Sets every series of `now`, then removes those that are gone.
    fn update<G, V>(
        &mut self,
        family: &prometheus_client::metrics::family::Family<L, G>,
        now: impl IntoIterator<Item = (L, V)>,
    ) where
        G: SetTo<V> + prometheus_client::metrics::TypedMetric + Default,
    {
        let mut seen = HashSet::new();
        for (labels, v) in now {
            family.get_or_create(&labels).set_to(v);
            seen.insert(labels);
        }
        for gone in self.last.difference(&seen) {
            family.remove(gone);
        }
        self.last = seen;
    }
}
