//! Metrics: the summary, per-function time series, the live stream, and the
//! Prometheus exposition.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use ignis_engine::observe::FunctionResources;
use ignis_metrics::WindowStats;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use ignis_core::{FunctionId, Scope};

use crate::extract::{Caller, Fid};
use crate::handlers::functions::lookup;
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

/// `30s`, `5m`, `1h`, `7d` (or a plain number of seconds) as seconds.
/// Digits only: no sign, no spaces, as [`DURATION_PATTERN`] says.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (num, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

const MAX_WINDOW_S: i64 = 7 * 86_400;

/// What [`window_of`] accepts, for the OpenAPI document: 1 second to 7
/// days in seconds (the unit `s` optional), minutes, hours or days.
/// `duration_pattern_is_window_of` checks the two agree.
pub const DURATION_PATTERN: &str = "^0*([1-7]d|([1-9][0-9]?|1[0-5][0-9]|16[0-8])h|([1-9][0-9]{0,3}|100[0-7][0-9]|10080)m|([1-9][0-9]{0,4}|[1-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s?)$";
const MAX_POINTS: i64 = 1500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Window: `30s`, `5m` (default), `1h`, `7d`.
    #[param(
        pattern = "^0*([1-7]d|([1-9][0-9]?|1[0-5][0-9]|16[0-8])h|([1-9][0-9]{0,3}|100[0-7][0-9]|10080)m|([1-9][0-9]{0,4}|[1-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s?)$"
    )]
    pub window: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FunctionSummary {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub stats: WindowStats,
    #[schema(value_type = Object)]
    pub resources: FunctionResources,
    /// When it was last called (Unix ms), in or before the window; `null`
    /// when no call is kept.
    pub last_call_at_ms: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub window_s: i64,
    pub system: FunctionSummary,
    pub functions: BTreeMap<String, FunctionSummary>,
    #[schema(value_type = Object)]
    pub host: ignis_metrics::host::HostUsage,
    pub records_dropped: u64,
    /// The asynchronous queue now (of the functions the key may read).
    pub async_queue: AsyncSummary,
}

/// The asynchronous queue in the summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct AsyncSummary {
    pub waiting: u64,
    pub running: u64,
    pub dead_letters: u64,
    /// Age of the oldest waiting event, ms (`null`: none waits).
    pub oldest_waiting_age_ms: Option<i64>,
    /// Since the server started (all namespaces; `null` for a key limited
    /// to some).
    pub accepted_total: Option<u64>,
    pub retries_total: Option<u64>,
    pub dead_total: Option<u64>,
}

fn window_of(s: Option<&str>, default: i64) -> ApiResult<i64> {
    let w = match s {
        None => default,
        Some(s) => parse_duration(s).ok_or_else(|| {
            ApiError::invalid(format!("invalid duration {s:?}: use e.g. 30s, 5m, 1h, 7d"))
        })?,
    };
    if w > MAX_WINDOW_S {
        return Err(ApiError::invalid("the window can be at most 7d"));
    }
    Ok(w)
}

#[utoipa::path(get, path = "/api/v1/metrics/summary", tag = "metrics",
    params(SummaryParams),
    responses(
        (status = 200, description = "System-wide and per-function stats over the window", body = Summary),
        (status = 400, description = "Bad window", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn summary(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    params: Result<Query<SummaryParams>, QueryRejection>,
) -> ApiResult<Json<Summary>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let window = window_of(params.window.as_deref(), 300)?;
    let mut resources = state.engine.resources();
    let engine = &state.engine;
    let visible: Vec<std::sync::Arc<ignis_core::Function>> = state
        .registry
        .list()
        .into_iter()
        .filter(|f| caller.principal.sees(&f.namespace))
        .collect();
    let mut functions = BTreeMap::new();
    for f in &visible {
        let label = f.label();
        functions.insert(
            label.to_string(),
            FunctionSummary {
                stats: engine.window(&Scope::function(&*label), window).await?,
                resources: resources
                    .functions
                    .get(&*label)
                    .cloned()
                    .unwrap_or_default(),
                last_call_at_ms: engine.last_call_ms(&f.id()).await?,
            },
        );
    }
    // A key limited to some namespaces sees totals of those only.
    let system_stats = if caller.principal.namespaces.is_all() {
        engine.window(&Scope::System, window).await?
    } else {
        resources
            .functions
            .retain(|label, _| functions.contains_key(label));
        let scopes: Vec<Scope> = visible
            .iter()
            .map(|f| Scope::function(f.label().into_owned()))
            .collect();
        engine
            .bucket_of(&scopes, window)
            .await?
            .stats(window as f64)
    };
    let system = FunctionSummary {
        stats: system_stats,
        resources: resources.total(),
        last_call_at_ms: functions.values().filter_map(|f| f.last_call_at_ms).max(),
    };
    Ok(Json(Summary {
        window_s: window,
        system,
        functions,
        host: resources.host,
        records_dropped: engine
            .recorder_stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        async_queue: async_summary(&state, &caller.principal),
    }))
}

fn async_summary(state: &SharedState, p: &ignis_auth::Principal) -> AsyncSummary {
    let stats = state.asyncq.stats();
    let mine: Vec<_> = stats
        .functions
        .iter()
        .filter(|f| p.sees(&f.namespace))
        .collect();
    let now = crate::asyncq::now_ms();
    let all = p.namespaces.is_all();
    AsyncSummary {
        waiting: mine.iter().map(|f| f.waiting).sum(),
        running: mine.iter().map(|f| f.running).sum(),
        dead_letters: mine.iter().map(|f| f.dead).sum(),
        oldest_waiting_age_ms: mine
            .iter()
            .filter_map(|f| f.oldest_waiting_ms)
            .min()
            .map(|t| (now - t).max(0)),
        accepted_total: all.then_some(stats.accepted_total),
        retries_total: all.then_some(stats.retries_total),
        dead_total: all.then_some(stats.dead_total),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// How far back: `15m`, `1h` (default), `7d`.
    #[param(
        pattern = "^0*([1-7]d|([1-9][0-9]?|1[0-5][0-9]|16[0-8])h|([1-9][0-9]{0,3}|100[0-7][0-9]|10080)m|([1-9][0-9]{0,4}|[1-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s?)$"
    )]
    pub window: Option<String>,
    /// Point width: `1s` to `1d` (default `1m`). Steps under a minute need a window of 15 minutes or less.
    #[param(
        pattern = "^0*([1-7]d|([1-9][0-9]?|1[0-5][0-9]|16[0-8])h|([1-9][0-9]{0,3}|100[0-7][0-9]|10080)m|([1-9][0-9]{0,4}|[1-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s?)$"
    )]
    pub step: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    /// Start of the interval, Unix seconds.
    pub t: i64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub stats: WindowStats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub function: String,
    pub window_s: i64,
    pub step_s: i64,
    pub points: Vec<Point>,
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/metrics", tag = "metrics",
    params(("name" = String, Path, description = "Function name"), SeriesParams),
    responses(
        (status = 200, description = "Time series for charts", body = Series),
        (status = 400, description = "Bad window or step", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn series(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> ApiResult<Json<Series>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let f = lookup(&state, &id)?;
    let name = f.label().into_owned();
    let (window, step) = series_params(&params)?;
    let points = state
        .engine
        .series(&Scope::function(name.as_str()), window, step)
        .await?
        .into_iter()
        .map(|(t, stats)| Point { t, stats })
        .collect();
    Ok(Json(Series {
        function: name,
        window_s: window,
        step_s: step,
        points,
    }))
}

#[utoipa::path(get, path = "/api/v1/metrics/stream", tag = "metrics",
    responses(
        (status = 200, description = "Server-Sent Events: one JSON snapshot (system, functions, resources) per second", content_type = "text/event-stream"),
        (status = 401, description = "No or bad credentials (a key or the session cookie; never a key in the query string)", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn stream(
    State(state): State<SharedState>,
    Caller(caller): Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let principal = caller.principal;
    let rx = state.engine.subscribe();
    let engine = state.engine.clone();
    // The one snapshot every unrestricted viewer shares, or one built for a
    // key limited to some namespaces (its functions, its totals).
    let visible = move |json: &str, engine: &ignis_engine::Engine| -> String {
        if principal.namespaces.is_all() {
            return json.to_string();
        }
        let sees = |label: &str| principal.sees(&FunctionId::parse(label).namespace);
        serde_json::to_string(&engine.snapshot_where(Some(&sees))).unwrap_or_default()
    };
    let first = serde_json::to_string(&engine.snapshot()).unwrap_or_default();
    let first = visible(&first, &engine);
    let first =
        futures::stream::once(async move { Ok(Event::default().event("snapshot").data(first)) });
    let rest = futures::stream::unfold(
        (rx, visible, engine),
        |(mut rx, visible, engine)| async move {
            loop {
                match rx.recv().await {
                    Ok(json) => {
                        let data = visible(&json, &engine);
                        return Some((
                            Ok(Event::default().event("snapshot").data(data)),
                            (rx, visible, engine),
                        ));
                    }
                    // A slow client skips snapshots rather than slowing anyone.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Sse::new(futures::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus / OpenMetrics text exposition", content_type = "application/openmetrics-text"),
        (status = 401, description = "No or bad credentials (unless `metrics_public`)", body = ErrorBody),
        (status = 403, description = "Not allowed (a key for every namespace with the metrics role)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn prometheus(State(state): State<SharedState>) -> Response {
    let mut text = state.engine.metrics().encode();
    let queue = async_metrics(&state.asyncq.stats(), crate::asyncq::now_ms());
    match text.rfind("# EOF") {
        Some(i) => text.insert_str(i, &queue),
        None => text.push_str(&queue),
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// The asynchronous queue's families, in the OpenMetrics text format.
fn async_metrics(stats: &crate::asyncq::AsyncStats, now_ms: i64) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for (name, help, value) in [
        (
            "ignis_async_accepted",
            "Asynchronous events accepted since the server started.",
            stats.accepted_total,
        ),
        (
            "ignis_async_succeeded",
            "Asynchronous attempts that succeeded.",
            stats.succeeded_total,
        ),
        (
            "ignis_async_retries",
            "Failed asynchronous attempts scheduled to run again.",
            stats.retries_total,
        ),
        (
            "ignis_async_dead",
            "Asynchronous events that became dead letters.",
            stats.dead_total,
        ),
    ] {
        let _ = writeln!(
            o,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}_total {value}"
        );
    }
    let _ = writeln!(
        o,
        "# HELP ignis_async_queue_depth Asynchronous events waiting or running, per function.\n# TYPE ignis_async_queue_depth gauge"
    );
    for f in &stats.functions {
        for (state, n) in [("waiting", f.waiting), ("running", f.running)] {
            let _ = writeln!(
                o,
                "ignis_async_queue_depth{{namespace=\"{}\",function=\"{}\",state=\"{state}\"}} {n}",
                f.namespace, f.function
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP ignis_async_oldest_age_seconds Age of the oldest waiting asynchronous event, per function.\n# TYPE ignis_async_oldest_age_seconds gauge"
    );
    for f in &stats.functions {
        let age = f
            .oldest_waiting_ms
            .map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
        let _ = writeln!(
            o,
            "ignis_async_oldest_age_seconds{{namespace=\"{}\",function=\"{}\"}} {age}",
            f.namespace, f.function
        );
    }
    let _ = writeln!(
        o,
        "# HELP ignis_async_dead_letters Dead letters kept, per function.\n# TYPE ignis_async_dead_letters gauge"
    );
    for f in &stats.functions {
        let _ = writeln!(
            o,
            "ignis_async_dead_letters{{namespace=\"{}\",function=\"{}\"}} {}",
            f.namespace, f.function, f.dead
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("90"), Some(90));
        for bad in ["", "m", "0s", "-1m", "1w", "1.5h", "99999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}

/// Checks window and step as the series endpoints take them.
fn series_params(params: &SeriesParams) -> ApiResult<(i64, i64)> {
    let window = window_of(params.window.as_deref(), 3600)?;
    let step = window_of(params.step.as_deref(), 60)?;
    if step > window {
        return Err(ApiError::invalid("`step` cannot exceed `window`"));
    }
    if window > ignis_metrics::aggregate::RETENTION_S && step % 60 != 0 {
        return Err(ApiError::invalid(
            "windows over 15m need a step of whole minutes (finer data is kept for 15 minutes)",
        ));
    }
    if window / step > MAX_POINTS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_POINTS} points: use a larger step"
        )));
    }
    Ok((window, step))
}

#[utoipa::path(get, path = "/api/v1/metrics/series", tag = "metrics",
    params(SeriesParams),
    responses(
        (status = 200, description = "System-wide time series for charts (`function` is empty)", body = Series),
        (status = 400, description = "Bad window or step", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed (keys for every namespace)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn system_series(
    State(state): State<SharedState>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> ApiResult<Json<Series>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let (window, step) = series_params(&params)?;
    let points = state
        .engine
        .series(&Scope::System, window, step)
        .await?
        .into_iter()
        .map(|(t, stats)| Point { t, stats })
        .collect();
    Ok(Json(Series {
        function: String::new(),
        window_s: window,
        step_s: step,
        points,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErrorsParams {
    /// How many, newest first (1..=200, default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentErrors {
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<ignis_metrics::aggregate::RecentError>,
}

#[utoipa::path(get, path = "/api/v1/metrics/errors", tag = "metrics",
    params(ErrorsParams),
    responses(
        (status = 200, description = "The latest failed calls (errors and timeouts) of the key's namespaces, newest first", body = RecentErrors),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn recent_errors(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    params: Result<Query<ErrorsParams>, QueryRejection>,
) -> ApiResult<Json<RecentErrors>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=ignis_metrics::aggregate::RECENT_ERRORS).contains(&limit) {
        return Err(ApiError::invalid("`limit` must be between 1 and 200"));
    }
    let errors = state
        .engine
        .recent_errors(ignis_metrics::aggregate::RECENT_ERRORS)
        .into_iter()
        .filter(|e| caller.principal.sees(&e.namespace))
        .take(limit)
        .collect();
    Ok(Json(RecentErrors { errors }))
}

/// Reference prices of the cost estimate (a general-purpose cloud VM split
/// into its parts, as docs/virtualization.md): USD per vCPU-hour and per
/// GiB-hour.
pub const USD_PER_VCPU_HOUR: f64 = 0.04;
pub const USD_PER_GIB_HOUR: f64 = 0.005;

/// One backend, side by side with the others.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackendFigures {
    #[schema(value_type = String)]
    pub backend: ignis_core::BackendKind,
    pub available: bool,
    /// `kvm` or `tcg` for microVMs.
    pub accelerator: Option<String>,
    pub detail: String,
    /// Calls of this backend's functions over the window.
    #[schema(value_type = Object)]
    pub stats: WindowStats,
    /// Live sandboxes by state.
    pub sandboxes: BTreeMap<String, usize>,
    /// Functions deployed on it.
    pub functions: usize,
    /// Memory of one of its sandboxes, on average now, bytes.
    pub memory_per_sandbox_bytes: Option<f64>,
    /// CPU time per call (sandbox side), ms, where measured.
    pub cpu_ms_per_call: Option<f64>,
    /// Cost of a million calls like these: their CPU time, and each call
    /// holding its sandbox's memory for its duration, at the reference prices.
    pub usd_per_million_calls: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Backends {
    pub window_s: i64,
    pub backends: Vec<BackendFigures>,
    pub usd_per_vcpu_hour: f64,
    pub usd_per_gib_hour: f64,
}

#[utoipa::path(get, path = "/api/v1/metrics/backends", tag = "metrics",
    params(SummaryParams),
    responses(
        (status = 200, description = "Docker and microVM side by side: latency, cold starts, sandboxes, memory, cost estimate, accelerator", body = Backends),
        (status = 400, description = "Bad window", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn backends(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    params: Result<Query<SummaryParams>, QueryRejection>,
) -> ApiResult<Json<Backends>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let window = window_of(params.window.as_deref(), 300)?;
    let resources = state.engine.resources();
    let functions: Vec<_> = state
        .registry
        .list()
        .into_iter()
        .filter(|f| caller.principal.sees(&f.namespace))
        .collect();
    let mut out = Vec::new();
    for status in state.engine.backend_status().await {
        let mine: Vec<_> = functions
            .iter()
            .filter(|f| f.config.backend == status.kind)
            .collect();
        let mut bucket = ignis_metrics::Bucket::default();
        let (mut sandboxes_n, mut memory) = (0usize, 0u64);
        for f in &mine {
            let label = f.label();
            bucket.merge(
                &state
                    .engine
                    .bucket(&Scope::function(&*label), window)
                    .await?,
            );
            if let Some(r) = resources.functions.get(&*label) {
                sandboxes_n += r.sandboxes;
                memory += r.memory_bytes;
            }
        }
        let stats = bucket.stats(window as f64);
        let memory_per_sandbox = (sandboxes_n > 0).then(|| memory as f64 / sandboxes_n as f64);
        let usd = match (stats.mean_cpu_ms, memory_per_sandbox, stats.mean_ms) {
            (Some(cpu), Some(mem), Some(dur)) => {
                let cpu_hours = cpu * 1e6 / 3.6e6;
                let gib_hours = mem / (1u64 << 30) as f64 * dur * 1e6 / 3.6e6;
                Some(cpu_hours * USD_PER_VCPU_HOUR + gib_hours * USD_PER_GIB_HOUR)
            }
            _ => None,
        };
        out.push(BackendFigures {
            backend: status.kind,
            available: status.available,
            accelerator: status.accelerator.map(str::to_string),
            detail: status.detail,
            cpu_ms_per_call: stats.mean_cpu_ms,
            stats,
            sandboxes: resources
                .sandboxes
                .get(status.kind.as_str())
                .cloned()
                .unwrap_or_default(),
            functions: mine.len(),
            memory_per_sandbox_bytes: memory_per_sandbox,
            usd_per_million_calls: usd,
        });
    }
    Ok(Json(Backends {
        window_s: window,
        backends: out,
        usd_per_vcpu_hour: USD_PER_VCPU_HOUR,
        usd_per_gib_hour: USD_PER_GIB_HOUR,
    }))
}
