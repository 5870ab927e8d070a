//! `GET /api/v1/health` and `GET /api/v1/pools`.

use axum::extract::State;
use axum::Json;
use ignis_engine::PoolsInfo;
use serde::Serialize;
use utoipa::ToSchema;

use ignis_core::FunctionId;

use crate::extract::Caller;
use crate::{ErrorBody, SharedState};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every backend can run sandboxes, `degraded` otherwise.
    pub status: &'static str,
    pub version: &'static str,
    /// Label value (`io.ignis.instance`) of this server's sandboxes.
    pub instance: String,
    pub uptime_s: u64,
    /// Whether requests need credentials (`false`: `--no-auth`).
    pub auth: bool,
    #[schema(value_type = Vec<Object>)]
    pub backends: Vec<ignis_sandbox::BackendStatus>,
    /// Memory reserved by sandboxes and the budget, MiB.
    pub memory_used_mb: u64,
    pub memory_budget_mb: u64,
    /// Invocation records dropped because the writer was behind.
    pub records_dropped: u64,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "system",
    responses((status = 200, description = "Server and backend status", body = Health)),
    security(()))]
pub async fn health(State(state): State<SharedState>) -> Json<Health> {
    let backends = state.engine.backend_status().await;
    let ok = !backends.is_empty() && backends.iter().all(|b| b.available);
    let (used, budget) = state.engine.memory();
    Json(Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        instance: state.instance.clone(),
        uptime_s: state.started.elapsed().as_secs(),
        auth: state.auth.enabled(),
        backends,
        memory_used_mb: used,
        memory_budget_mb: budget,
        records_dropped: state
            .engine
            .recorder_stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Per function: sandboxes by state, queue depth, calls in flight and the
/// autoscaler's desired size; per stem-cell key: ready, booting, target,
/// hits and misses; the memory budget.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct Pools(pub PoolsInfo);

#[utoipa::path(get, path = "/api/v1/pools", tag = "system",
    responses(
        (status = 200, description = "Sandboxes by function and state, queue depths, stem cells (functions of the key's namespaces)", body = Pools),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn pools(State(state): State<SharedState>, Caller(caller): Caller) -> Json<PoolsInfo> {
    let mut pools = state.engine.pools();
    pools.functions.retain(|p| {
        caller
            .principal
            .sees(&FunctionId::parse(&p.function).namespace)
    });
    Json(pools)
}

/// A function's sandboxes, one by one.
#[derive(Serialize, serde::Deserialize, ToSchema)]
pub struct SandboxList {
    /// Newest first: id, version, backend, state, reserved memory, age,
    /// time in the current state, calls handed to it.
    #[schema(value_type = Vec<Object>)]
    pub sandboxes: Vec<ignis_engine::SandboxInfo>,
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/sandboxes", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The function's live sandboxes (booting, initializing, idle, busy, draining)", body = SandboxList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn sandboxes(
    State(state): State<SharedState>,
    crate::extract::Fid(id): crate::extract::Fid,
) -> crate::ApiResult<Json<SandboxList>> {
    crate::handlers::functions::lookup(&state, &id)?;
    Ok(Json(SandboxList {
        sandboxes: state.engine.sandboxes_of(&id),
    }))
}
