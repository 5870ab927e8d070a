//! Metrics of ignis, declared in one place.
//!
//! Every call's [`InvocationRecord`] goes through [`Metrics::observe`]:
//! Prometheus counters and histograms, and the per-second [`Aggregator`]
//! behind the summary, the time series and the live stream. Gauges of
//! sandboxes, queues and resources are set by the samplers. Each metric has
//! a doc comment; docs/metrics.md lists them with units, and a test fails
//! when one is declared but never emitted.

pub mod aggregate;
pub mod histogram;
pub mod host;
pub mod stages;

use std::sync::Mutex;

use ignis_core::{InvocationRecord, StartKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use aggregate::{Aggregator, Bucket, Scope, WindowStats};
pub use stages::{Stage, Stages};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    pub function: String,
    pub status: String,
    pub backend: String,
    /// `cold`, `stem`, `warm`, or `none` for calls that never ran.
    pub start: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    pub function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionBackendLabels {
    pub function: String,
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub function: String,
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InitLabels {
    pub function: String,
    pub backend: String,
    /// `cold` (booted) or `stem` (specialized stem cell).
    pub start: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SandboxLabels {
    pub backend: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StemLabels {
    pub runtime: String,
    pub backend: String,
    pub memory_mb: String,
    /// `ready` or `booting`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Latency buckets in seconds: 0.1 ms to ~1.7 min, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 21)
}

/// Every metric ignis exposes.
pub struct Metrics {
    registry: Registry,
    /// Finished invocations (`ignis_invocations_total`), by function, status
    /// (`success`, `error`, `timeout`, `throttled`), backend and start.
    pub invocations: Family<InvocationLabels, Counter>,
    /// Arrival-to-answer time of invocations, seconds.
    pub invocation_duration: Family<FunctionBackendLabels, Histogram>,
    /// Handler execution time (invoke written to result read), seconds.
    pub execution_duration: Family<FunctionBackendLabels, Histogram>,
    /// Boot and/or initialization time of cold and stem starts, seconds.
    pub init_duration: Family<InitLabels, Histogram>,
    /// Time calls waited in the queue, seconds.
    pub queue_wait: Family<FunctionLabels, Histogram>,
    /// Cold starts (booted or stem cell), by function and start kind.
    pub cold_starts: Family<InitLabels, Counter>,
    /// Failed invocations by error type.
    pub errors: Family<ErrorLabels, Counter>,
    /// Bytes of results returned.
    pub response_bytes: Family<FunctionLabels, Counter>,
    /// Live sandboxes by backend and lifecycle state (sampled).
    pub sandboxes: Family<SandboxLabels, Gauge>,
    /// Lifecycle transitions into each state since start.
    pub sandbox_transitions: Family<StateLabels, Gauge>,
    /// Calls waiting for a sandbox, by function (sampled).
    pub queue_depth: Family<FunctionLabels, Gauge>,
    /// Sandboxes running or starting for a function (sampled).
    pub active_sandboxes: Family<FunctionLabels, Gauge>,
    /// Memory used by a function's sandboxes, bytes (sampled from cgroups).
    pub sandbox_memory: Family<FunctionLabels, Gauge>,
    /// CPU time used by a function's live sandboxes, seconds (sampled).
    pub sandbox_cpu: Family<FunctionLabels, FGauge>,
    /// Stem cells by key and state (sampled).
    pub stem_cells: Family<StemLabels, Gauge>,
    /// Memory reserved by sandboxes against the budget, bytes.
    pub memory_reserved: Gauge,
    /// The sandbox memory budget, bytes.
    pub memory_budget: Gauge,
    /// Host CPU use over the last sample, 0..1 of all cores.
    pub host_cpu: FGauge,
    /// Host memory in use (total minus available), bytes.
    pub host_memory_used: Gauge,
    /// Host memory, bytes.
    pub host_memory_total: Gauge,
    /// Host 1-minute load average.
    pub host_load1: FGauge,
    /// Invocation records dropped because the writer was behind.
    pub records_dropped: Counter,
    /// Invocation records written to the store.
    pub records_written: Counter,
    /// Per-second aggregation for the summary, series and stream.
    pub aggregator: Mutex<Aggregator>,
    /// Per-stage timings of calls (`--stage-timings`), appended to the
    /// exposition when on.
    pub stages: Stages,
}

/// Names of every metric, as exposed (for docs and the emitted-test).
pub const METRIC_NAMES: &[&str] = &[
    "ignis_invocations_total",
    "ignis_invocation_duration_seconds",
    "ignis_execution_duration_seconds",
    "ignis_init_duration_seconds",
    "ignis_queue_wait_seconds",
    "ignis_cold_starts_total",
    "ignis_errors_total",
    "ignis_response_bytes_total",
    "ignis_sandboxes",
    "ignis_sandbox_transitions",
    "ignis_queue_depth",
    "ignis_active_sandboxes",
    "ignis_sandbox_memory_bytes",
    "ignis_sandbox_cpu_seconds",
    "ignis_stem_cells",
    "ignis_memory_reserved_bytes",
    "ignis_memory_budget_bytes",
    "ignis_host_cpu_ratio",
    "ignis_host_memory_used_bytes",
    "ignis_host_memory_total_bytes",
    "ignis_host_load1",
    "ignis_records_dropped_total",
    "ignis_records_written_total",
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let hist = || Histogram::new(latency_buckets());
        let invocations = Family::<InvocationLabels, Counter>::default();
        let invocation_duration = Family::<FunctionBackendLabels, Histogram>::new_with_constructor(
            hist as fn() -> Histogram,
        );
        let execution_duration = Family::<FunctionBackendLabels, Histogram>::new_with_constructor(
            hist as fn() -> Histogram,
        );
        let init_duration =
            Family::<InitLabels, Histogram>::new_with_constructor(hist as fn() -> Histogram);
        let queue_wait =
            Family::<FunctionLabels, Histogram>::new_with_constructor(hist as fn() -> Histogram);
        let m = Self {
            invocations,
            invocation_duration,
            execution_duration,
            init_duration,
            queue_wait,
            cold_starts: Family::default(),
            errors: Family::default(),
            response_bytes: Family::default(),
            sandboxes: Family::default(),
            sandbox_transitions: Family::default(),
            queue_depth: Family::default(),
            active_sandboxes: Family::default(),
            sandbox_memory: Family::default(),
            sandbox_cpu: Family::default(),
            stem_cells: Family::default(),
            memory_reserved: Gauge::default(),
            memory_budget: Gauge::default(),
            host_cpu: FGauge::default(),
            host_memory_used: Gauge::default(),
            host_memory_total: Gauge::default(),
            host_load1: FGauge::default(),
            records_dropped: Counter::default(),
            records_written: Counter::default(),
            aggregator: Mutex::new(Aggregator::default()),
            stages: Stages::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ignis_invocations",
            "Finished invocations",
            m.invocations.clone(),
        );
        registry.register(
            "ignis_invocation_duration_seconds",
            "Arrival-to-answer time of invocations in seconds",
            m.invocation_duration.clone(),
        );
        registry.register(
            "ignis_execution_duration_seconds",
            "Handler execution time in seconds",
            m.execution_duration.clone(),
        );
        registry.register(
            "ignis_init_duration_seconds",
            "Boot and initialization time of cold and stem starts in seconds",
            m.init_duration.clone(),
        );
        registry.register(
            "ignis_queue_wait_seconds",
            "Time calls waited in the queue in seconds",
            m.queue_wait.clone(),
        );
        registry.register(
            "ignis_cold_starts",
            "Cold starts by start kind",
            m.cold_starts.clone(),
        );
        registry.register(
            "ignis_errors",
            "Failed invocations by error type",
            m.errors.clone(),
        );
        registry.register(
            "ignis_response_bytes",
            "Bytes of results returned",
            m.response_bytes.clone(),
        );
        registry.register(
            "ignis_sandboxes",
            "Live sandboxes by backend and state",
            m.sandboxes.clone(),
        );
        registry.register(
            "ignis_sandbox_transitions",
            "Lifecycle transitions into each state since start",
            m.sandbox_transitions.clone(),
        );
        registry.register(
            "ignis_queue_depth",
            "Calls waiting for a sandbox",
            m.queue_depth.clone(),
        );
        registry.register(
            "ignis_active_sandboxes",
            "Sandboxes running or starting for a function",
            m.active_sandboxes.clone(),
        );
        registry.register(
            "ignis_sandbox_memory_bytes",
            "Memory used by a function's sandboxes in bytes",
            m.sandbox_memory.clone(),
        );
        registry.register(
            "ignis_sandbox_cpu_seconds",
            "CPU time used by a function's live sandboxes in seconds",
            m.sandbox_cpu.clone(),
        );
        registry.register(
            "ignis_stem_cells",
            "Stem cells by key and state",
            m.stem_cells.clone(),
        );
        registry.register(
            "ignis_memory_reserved_bytes",
            "Sandbox memory reserved against the budget in bytes",
            m.memory_reserved.clone(),
        );
        registry.register(
            "ignis_memory_budget_bytes",
            "Sandbox memory budget in bytes",
            m.memory_budget.clone(),
        );
        registry.register(
            "ignis_host_cpu_ratio",
            "Host CPU use, 0 to 1 of all cores",
            m.host_cpu.clone(),
        );
        registry.register(
            "ignis_host_memory_used_bytes",
            "Host memory in use in bytes",
            m.host_memory_used.clone(),
        );
        registry.register(
            "ignis_host_memory_total_bytes",
            "Host memory in bytes",
            m.host_memory_total.clone(),
        );
        registry.register(
            "ignis_host_load1",
            "Host one-minute load average",
            m.host_load1.clone(),
        );
        registry.register(
            "ignis_records_dropped",
            "Invocation records dropped because the writer was behind",
            m.records_dropped.clone(),
        );
        registry.register(
            "ignis_records_written",
            "Invocation records written to the store",
            m.records_written.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts a finished invocation everywhere.
    /// Counts a batch of finished calls: the same as `observe` on each,
    /// with the aggregator locked once.
    pub fn observe_batch(&self, records: &[InvocationRecord]) {
        if records.is_empty() {
            return;
        }
        for r in records {
            self.observe_families(r);
        }
        if let Ok(mut agg) = self.aggregator.lock() {
            for r in records {
                agg.observe(r);
            }
        }
    }

    /// Counts one finished call in every metric and aggregate.
    pub fn observe(&self, r: &InvocationRecord) {
        self.observe_families(r);
        if let Ok(mut agg) = self.aggregator.lock() {
            agg.observe(r);
        }
    }

    fn observe_families(&self, r: &InvocationRecord) {
        let function = r.label().into_owned();
        let backend = r.backend.as_str().to_string();
        let start = r.start.map_or("none", StartKind::as_str).to_string();
        self.invocations
            .get_or_create(&InvocationLabels {
                function: function.clone(),
                status: r.status.as_str().to_string(),
                backend: backend.clone(),
                start: start.clone(),
            })
            .inc();
        let fb = FunctionBackendLabels {
            function: function.clone(),
            backend: backend.clone(),
        };
        self.invocation_duration
            .get_or_create(&fb)
            .observe(r.total_ms / 1e3);
        let fl = FunctionLabels {
            function: function.clone(),
        };
        if r.start.is_some() {
            self.execution_duration
                .get_or_create(&fb)
                .observe(r.exec_ms / 1e3);
            self.queue_wait.get_or_create(&fl).observe(r.queue_ms / 1e3);
        }
        if let (Some(init), Some(s @ (StartKind::Cold | StartKind::Stem))) = (r.init_ms, r.start) {
            let labels = InitLabels {
                function: function.clone(),
                backend,
                start: s.as_str().to_string(),
            };
            self.init_duration
                .get_or_create(&labels)
                .observe(init / 1e3);
            self.cold_starts.get_or_create(&labels).inc();
        }
        if let Some(kind) = r.error_type {
            self.errors
                .get_or_create(&ErrorLabels {
                    function: function.clone(),
                    error_type: kind.as_str().to_string(),
                })
                .inc();
        }
        self.response_bytes
            .get_or_create(&fl)
            .inc_by(r.response_bytes);
    }

    /// The Prometheus text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if self.stages.enabled() {
            // Before the OpenMetrics `# EOF` line that ends the exposition.
            let eof = out.rfind("# EOF").unwrap_or(out.len());
            let mut stages = String::new();
            self.stages.encode(&mut stages);
            out.insert_str(eof, &stages);
        }
        out
    }

    /// Merged bucket of `function` ("" = all) over `[from, to)` seconds.
    pub fn window(&self, scope: &Scope, from: i64, to: i64) -> Bucket {
        self.aggregator
            .lock()
            .map(|a| a.window(scope, from, to))
            .unwrap_or_default()
    }
}
