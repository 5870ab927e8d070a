//! Asynchronous invocations as records: `GET /api/v1/invocations/{id}`, and
//! a function's dead letters with redrive and delete.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use ignis_core::{AsyncEvent, AsyncStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::asyncq::now_ms;
use crate::extract::{path_param, Caller, Fid};
use crate::handlers::functions::{audited, lookup};
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

#[utoipa::path(get, path = "/api/v1/invocations/{id}", tag = "invoke",
    params(("id" = String, Path, description = "The `invocation_id` a 202 answered with")),
    responses(
        (status = 200, description = "The asynchronous invocation: status (queued, running, failed (retry due), succeeded, dead), attempts, result or error, the last attempt's logs, timings", body = AsyncEvent),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such invocation (or not in this key's namespaces)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn get_event(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
) -> ApiResult<Json<AsyncEvent>> {
    let id = path_param(&params, "id");
    let missing = || ApiError::not_found(format!("no asynchronous invocation `{id}`"));
    let e = state
        .registry
        .store()
        .get_event(&id)
        .await?
        .ok_or_else(missing)?;
    // Another namespace's event does not exist for this key.
    if !caller.principal.sees(&e.namespace) {
        return Err(missing());
    }
    Ok(Json(e))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// How many, newest first (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<AsyncEvent>,
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/dead-letters", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), DeadLetterParams),
    responses(
        (status = 200, description = "Asynchronous invocations that failed every attempt or waited past their maximum age, newest first", body = DeadLetters),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn dead_letters(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: Result<Query<DeadLetterParams>, QueryRejection>,
) -> ApiResult<Json<DeadLetters>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("`limit` must be between 1 and 1000"));
    }
    lookup(&state, &id)?;
    let dead_letters = state
        .registry
        .store()
        .list_events(&id, Some(AsyncStatus::Dead), limit)
        .await?;
    Ok(Json(DeadLetters { dead_letters }))
}

/// The dead letter `{event}` of the function, or 404.
async fn dead_letter(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    event: &str,
) -> ApiResult<AsyncEvent> {
    let missing = || ApiError::not_found(format!("`{id}` has no dead letter `{event}`"));
    let e = state
        .registry
        .store()
        .get_event(event)
        .await?
        .ok_or_else(missing)?;
    if e.namespace != id.namespace || e.function != id.name || e.status != AsyncStatus::Dead {
        return Err(missing());
    }
    Ok(e)
}

#[utoipa::path(post, path = "/api/v1/functions/{name}/dead-letters/{id}/retry", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), ("id" = String, Path, description = "Event id")),
    responses(
        (status = 202, description = "Queued again, with its attempts reset and a new maximum age", body = AsyncEvent),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or dead letter", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn redrive(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
) -> ApiResult<(StatusCode, Json<AsyncEvent>)> {
    let event = path_param(&params, "id");
    let result = async {
        let f = lookup(&state, &id)?;
        dead_letter(&state, &id, &event).await?;
        let now = now_ms();
        let expires = now + f.config.async_max_age_s as i64 * 1000;
        let e = state
            .registry
            .store()
            .redrive_event(&event, now, expires)
            .await?;
        state.asyncq.nudge();
        Ok((StatusCode::ACCEPTED, Json(e)))
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "event.retry",
        &format!("{id}/{event}"),
        result,
    )
    .await
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}/dead-letters/{id}", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), ("id" = String, Path, description = "Event id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or dead letter", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete_dead_letter(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
) -> ApiResult<StatusCode> {
    let event = path_param(&params, "id");
    let result = async {
        lookup(&state, &id)?;
        dead_letter(&state, &id, &event).await?;
        if !state.registry.store().delete_event(&event).await? {
            return Err(ApiError::not_found(format!(
                "`{id}` has no dead letter `{event}`"
            )));
        }
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "event.delete",
        &format!("{id}/{event}"),
        result,
    )
    .await
}
