//! `POST /api/v1/functions/{name}/invoke` and the invocation records.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ignis_core::{InvocationRecord, StartKind, Trigger};
use ignis_engine::Outcome;
use ignis_metrics::Stage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::auth::StageMark;
use crate::extract::{body_bytes, path_param, Fid};
use crate::handlers::functions::lookup;
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

/// How deep an event's arrays and objects may nest: the runtimes' JSON
/// parsers recurse (Python's stops near 1000 levels).
pub const MAX_EVENT_DEPTH: usize = 512;

/// The deepest nesting of arrays and objects in JSON text (strings
/// skipped), stopping once it is over `limit`.
fn nesting_over(text: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses an event: any JSON value; an empty body is `{}`.
pub(crate) fn parse_event(bytes: &[u8]) -> ApiResult<Box<RawValue>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::invalid("the event must be UTF-8 JSON"))?;
    let text = text.trim();
    if text.is_empty() {
        return RawValue::from_string("{}".into()).map_err(|e| ApiError::invalid(e.to_string()));
    }
    if nesting_over(text.as_bytes(), MAX_EVENT_DEPTH) {
        return Err(ApiError::invalid(format!(
            "the event nests arrays and objects more than {MAX_EVENT_DEPTH} deep"
        )));
    }
    serde_json::from_str::<Box<RawValue>>(text)
        .map_err(|e| ApiError::invalid(format!("the event is not valid JSON: {e}")))
}

/// Headers every invocation response carries.
pub(crate) fn outcome_headers(outcome: &Outcome, headers: &mut HeaderMap) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("x-ignis-invocation-id", outcome.id.clone());
    set("x-ignis-function-version", outcome.version.to_string());
    set(
        "x-ignis-cold-start",
        matches!(outcome.start, Some(StartKind::Cold | StartKind::Stem)).to_string(),
    );
    if let Some(start) = outcome.start {
        set("x-ignis-start", start.as_str().to_string());
    }
    set("x-ignis-duration-ms", format!("{:.3}", outcome.total_ms));
}

/// A number uniform in [0, 1), for an alias's weighted routing.
pub(crate) fn uniform() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The function version a qualifier names (`None`: the latest).
pub(crate) async fn resolve(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    qualifier: Option<&str>,
) -> ApiResult<std::sync::Arc<ignis_core::Function>> {
    let q = match qualifier {
        None | Some("") => ignis_core::Qualifier::Latest,
        Some(q) => ignis_core::Qualifier::parse(q)?,
    };
    if q == ignis_core::Qualifier::Latest {
        return lookup(state, id);
    }
    Ok(state.registry.resolve(id, &q, uniform()).await?.function)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvokeParams {
    /// `$LATEST` (default), a published version, or an alias.
    #[param(
        pattern = "^(\\$LATEST|0*[1-9][0-9]{0,18}|[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*)$",
        max_length = 128
    )]
    pub qualifier: Option<String>,
    /// `true`: queue the call and answer 202 at once (as the header
    /// `X-Ignis-Invocation-Type: Event` does).
    #[serde(rename = "async")]
    pub run_async: Option<bool>,
}

/// Header that makes a call asynchronous (`Event`) or synchronous
/// (`RequestResponse`, the default).
pub const INVOCATION_TYPE_HEADER: &str = "x-ignis-invocation-type";

/// The answer to an accepted asynchronous call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Read its progress at `GET /api/v1/invocations/{invocation_id}`.
    pub invocation_id: String,
    pub status: ignis_core::AsyncStatus,
}

#[utoipa::path(post, path = "/api/v1/functions/{name}/invoke", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), InvokeParams),
    request_body(content = Object, description = "The event: any JSON value (empty body = `{}`)"),
    responses(
        (status = 200, description = "The handler's return value, as JSON", body = Object,
         headers(("X-Ignis-Invocation-Id" = String), ("X-Ignis-Cold-Start" = bool), ("X-Ignis-Duration-Ms" = f64))),
        (status = 202, description = "Asynchronous (`?async=true` or `X-Ignis-Invocation-Type: Event`): stored in the queue; runs at least once", body = Accepted),
        (status = 400, description = "The event is not JSON", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody),
        (status = 413, description = "Event over 6 MiB", body = ErrorBody),
        (status = 429, description = "Throttled (see Retry-After); asynchronous: the queue is full", body = ErrorBody),
        (status = 502, description = "FunctionError, InitError, OutOfMemory, SandboxCrashed, InvalidResult, ResponseTooLarge", body = ErrorBody),
        (status = 503, description = "No backend, or shutting down", body = ErrorBody),
        (status = 504, description = "Timeout", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn invoke(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: Result<Query<InvokeParams>, QueryRejection>,
    req: Request,
) -> ApiResult<Response> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let run_async = match req
        .headers()
        .get(INVOCATION_TYPE_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => params.run_async == Some(true),
        Some(t) if t.eq_ignore_ascii_case("event") => true,
        Some(t) if t.eq_ignore_ascii_case("requestresponse") => params.run_async == Some(true),
        Some(t) => {
            return Err(ApiError::invalid(format!(
                "`X-Ignis-Invocation-Type` must be `Event` or `RequestResponse`, not `{t}`"
            )))
        }
    };
    let mark = req.extensions().get::<StageMark>().map(|m| m.0);
    let f = resolve(&state, &id, params.qualifier.as_deref()).await?;
    let bytes = body_bytes(req, &()).await?;
    let event = parse_event(&bytes)?;
    if run_async {
        let qualifier = params.qualifier.filter(|q| !q.is_empty() && q != "$LATEST");
        let e = state.asyncq.submit(&f, qualifier, event).await?;
        let mut r = (
            StatusCode::ACCEPTED,
            Json(Accepted {
                invocation_id: e.id.clone(),
                status: e.status,
            }),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/invocations/{}", e.id)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&e.id) {
            r.headers_mut().insert("x-ignis-invocation-id", v);
        }
        return Ok(r);
    }
    let stages = &state.engine.metrics().stages;
    stages.end(Stage::Handler, mark);
    let outcome = state.engine.invoke(f, event, Trigger::Api).await;
    let responding = stages.end(Stage::Answer, outcome.read_at);
    let response = respond(outcome);
    stages.end(Stage::Respond, responding);
    Ok(response)
}

fn respond(outcome: Outcome) -> Response {
    let mut headers = HeaderMap::new();
    outcome_headers(&outcome, &mut headers);
    let mut response = match outcome.result {
        Ok(value) => {
            let mut r = (StatusCode::OK, String::from(value.get())).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => ApiError::from(e).into_response(),
    };
    response.headers_mut().extend(headers);
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many records, newest first (1..=1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only records of this status: `success`, `error`, `timeout`, `throttled`.
    pub status: Option<ignis_core::InvocationStatus>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvocationList {
    pub invocations: Vec<InvocationRecord>,
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/invocations", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), ListParams),
    responses(
        (status = 200, description = "Recent invocations, newest first", body = InvocationList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn invocations(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<InvocationList>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("`limit` must be between 1 and 1000"));
    }
    lookup(&state, &id)?;
    let invocations = state
        .registry
        .store()
        .list_invocations(&id, limit, params.status)
        .await?;
    Ok(Json(InvocationList { invocations }))
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/invocations/{id}", tag = "invoke",
    params(("name" = String, Path, description = "Function name"), ("id" = String, Path, description = "Invocation id")),
    responses(
        (status = 200, description = "One invocation record, with its logs and error", body = InvocationRecord),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or invocation (records are kept 24 h)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn invocation(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: axum::extract::RawPathParams,
) -> ApiResult<Json<InvocationRecord>> {
    lookup(&state, &id)?;
    let inv = path_param(&params, "id");
    state
        .registry
        .store()
        .get_invocation(&id, &inv)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no invocation `{inv}` of `{id}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_nested_too_deep_are_refused_and_strings_do_not_count() {
        let ok = "[".repeat(MAX_EVENT_DEPTH) + &"]".repeat(MAX_EVENT_DEPTH);
        assert!(parse_event(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_EVENT_DEPTH + 1) + &"]".repeat(MAX_EVENT_DEPTH + 1);
        assert!(parse_event(deep.as_bytes()).is_err());
        let in_string = format!(
            "{{\"s\": \"{}\\\"{}\"}}",
            "[".repeat(5000),
            "{".repeat(5000)
        );
        assert!(parse_event(in_string.as_bytes()).is_ok(), "{in_string:.40}");
        assert!(parse_event(b"").unwrap().get() == "{}");
    }
}
