//! `/api/v1/functions`: create, list, read, update, delete functions and
//! read their code.

use std::collections::BTreeMap;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use ignis_auth::Principal;
use ignis_core::{
    validate_name, CodeInput, CreateFunctionRequest, Function, FunctionConfig, FunctionId,
    IgnisError, UpdateFunctionRequest, DEFAULT_NAMESPACE,
};
use ignis_package::Archive;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::extract::{path_param, Caller, Fid, JsonBody, Ns};
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FunctionList {
    pub functions: Vec<Function>,
}

/// Parses a create or update body (kept as JSON until then so that the
/// audit log can name the target of a refused request). Integral floats
/// count as integers, as in [`crate::extract::parse`]; these bodies hold no
/// free-form JSON whose numbers would change.
fn parse_body<T: serde::de::DeserializeOwned>(mut body: Value) -> ApiResult<T> {
    crate::extract::integral_floats_as_integers(&mut body);
    serde_json::from_value(body)
        .map_err(|e| ApiError::invalid(format!("request body is not valid: {e}")))
}

/// Normalizes uploaded code into the canonical archive, on the blocking
/// pool (unzipping, hashing up to 50 MiB).
async fn package(code: CodeInput, limit: u64) -> ApiResult<Archive> {
    tokio::task::spawn_blocking(move || package_blocking(code, limit))
        .await
        .map_err(|e| ApiError(IgnisError::internal(e.to_string())))?
}

fn package_blocking(code: CodeInput, limit: u64) -> ApiResult<Archive> {
    match (code.files, code.zip_base64) {
        (Some(files), None) => Ok(ignis_package::from_files(&files, limit)?),
        (None, Some(b64)) => {
            // Reject before decoding what cannot fit.
            if (b64.len() as u64 / 4) * 3 > limit + 3 {
                return Err(ApiError(IgnisError::new(
                    ignis_core::ErrorKind::PayloadTooLarge,
                    format!("code archive is over the limit of {limit} bytes"),
                )));
            }
            let zip = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    ApiError::invalid(format!("`code.zip_base64` is not valid base64: {e}"))
                })?;
            Ok(ignis_package::from_zip(&zip, limit)?)
        }
        _ => Err(ApiError::invalid(
            "`code` must have exactly one of `files` and `zip_base64`",
        )),
    }
}

/// The handler's module must be in the archive.
fn check_handler(config: &FunctionConfig, archive: &Archive) -> ApiResult<()> {
    let candidates = config.handler_files();
    if candidates.iter().any(|f| archive.contains(f)) {
        return Ok(());
    }
    let mut listing: Vec<&str> = archive.files.iter().map(String::as_str).take(20).collect();
    if archive.files.len() > 20 {
        listing.push("...");
    }
    Err(ApiError::invalid(format!(
        "handler `{}` needs {} in the code archive, which holds: {}",
        config.handler,
        candidates
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or "),
        listing.join(", ")
    )))
}

/// A function as `caller` may see it: environment variable values are
/// masked for roles that may not read secrets (viewers).
pub(crate) fn view(f: &Function, caller: &Principal) -> Function {
    let mut f = f.clone();
    if !ignis_auth::sees_secrets(caller) {
        for v in f.config.env.values_mut() {
            *v = MASK.to_string();
        }
    }
    f
}

/// What a masked environment variable value reads as.
pub const MASK: &str = "********";

/// `Location` of a function.
fn location(f: &Function) -> String {
    if f.namespace == DEFAULT_NAMESPACE {
        format!("/api/v1/functions/{}", f.name)
    } else {
        format!("/api/v1/namespaces/{}/functions/{}", f.namespace, f.name)
    }
}

/// Runs an audited management action: its outcome (ok or the error type)
/// goes to the audit log either way.
pub(crate) async fn audited<T>(
    state: &SharedState,
    caller: &Principal,
    action: &str,
    target: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    };
    state
        .auth
        .audit(Some(caller), action, target, outcome)
        .await;
    result
}

#[utoipa::path(post, path = "/api/v1/functions", tag = "functions",
    request_body = CreateFunctionRequest,
    responses(
        (status = 201, description = "Created", body = Function),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such namespace", body = ErrorBody),
        (status = 409, description = "Name or route taken", body = ErrorBody),
        (status = 413, description = "Code over the size limit", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    Ns(namespace): Ns,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let target = body
        .get("name")
        .and_then(Value::as_str)
        .map(|n| ignis_core::qualified(&namespace, n).into_owned())
        .unwrap_or_else(|| format!("{namespace}/?"));
    let result = create_inner(&state, namespace, &caller.principal, body).await;
    audited(
        &state,
        &caller.principal,
        "function.create",
        &target,
        result,
    )
    .await
}

async fn create_inner(
    state: &SharedState,
    namespace: String,
    caller: &Principal,
    body: Value,
) -> ApiResult<Response> {
    let f = create_function(state, namespace, body).await?;
    let mut response = (StatusCode::CREATED, Json(view(&f, caller))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location(&f)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Creates a function from a body in the native wire format (what the
/// native API and the Lambda API's CreateFunction share).
pub(crate) async fn create_function(
    state: &SharedState,
    namespace: String,
    body: Value,
) -> ApiResult<Arc<Function>> {
    let CreateFunctionRequest { name, code, config } = parse_body(body)?;
    validate_name(&name)?;
    let config = config.into_new_config()?;
    if config
        .http_qualifier
        .as_deref()
        .is_some_and(|q| q != "$LATEST")
    {
        return Err(ApiError::invalid(
            "`http_qualifier`: a new function has no published version or alias yet; set it with an update",
        ));
    }
    let archive = package(code, state.config.max_code_bytes).await?;
    check_handler(&config, &archive)?;
    let id = FunctionId::new(namespace, name);
    let f = state
        .registry
        .store()
        .create_function(&id, &config, &archive)
        .await?;
    let f = state.registry.put(f);
    state.engine.function_created(f.clone());
    tracing::info!(function = %f.label(), version = f.version, "function created");
    Ok(f)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `true`: the functions of every namespace the key may read (on
    /// `/api/v1/functions` only), instead of one namespace's.
    pub all_namespaces: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/functions", tag = "functions",
    params(ListParams),
    responses(
        (status = 200, description = "The namespace's functions, by name", body = FunctionList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    Ns(namespace): Ns,
    Caller(caller): Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<FunctionList>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let functions = if params.all_namespaces == Some(true) {
        state
            .registry
            .list()
            .into_iter()
            .filter(|f| caller.principal.sees(&f.namespace))
            .collect()
    } else {
        state.registry.list_namespace(&namespace)
    };
    Ok(Json(FunctionList {
        functions: functions
            .iter()
            .map(|f| view(f, &caller.principal))
            .collect(),
    }))
}

pub(crate) fn lookup(state: &SharedState, id: &FunctionId) -> ApiResult<Arc<Function>> {
    state
        .registry
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("function `{id}` does not exist")))
}

#[utoipa::path(get, path = "/api/v1/functions/{name}", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The function (environment values masked for viewers)", body = Function),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
) -> ApiResult<Json<Function>> {
    Ok(Json(view(&*lookup(&state, &id)?, &caller.principal)))
}

#[utoipa::path(put, path = "/api/v1/functions/{name}", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = UpdateFunctionRequest,
    responses(
        (status = 200, description = "Updated (version bumped when anything changed)", body = Function),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody),
        (status = 409, description = "Route taken, or a concurrent update", body = ErrorBody),
        (status = 413, description = "Code over the size limit", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn update(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Function>> {
    let result = update_inner(&state, &id, &caller.principal, body).await;
    audited(
        &state,
        &caller.principal,
        "function.update",
        &id.to_string(),
        result,
    )
    .await
}

async fn update_inner(
    state: &SharedState,
    id: &FunctionId,
    caller: &Principal,
    body: Value,
) -> ApiResult<Json<Function>> {
    let f = update_function(state, id, body).await?;
    Ok(Json(view(&f, caller)))
}

/// Updates a function from a body in the native wire format; an update
/// that changes nothing returns the function as it is.
pub(crate) async fn update_function(
    state: &SharedState,
    id: &FunctionId,
    body: Value,
) -> ApiResult<Arc<Function>> {
    let current = lookup(state, id)?;
    let UpdateFunctionRequest {
        code,
        config: patch,
    } = parse_body(body)?;
    if code.is_none() && patch.is_empty() {
        return Err(ApiError::invalid(
            "nothing to update: give `code` and/or configuration fields",
        ));
    }
    let config = patch.apply(&current.config)?;
    if let Some(q) = config.http_qualifier.as_deref() {
        // The trigger's target must exist now (a published version, an alias).
        crate::handlers::invoke::resolve(state, id, Some(q)).await?;
    }
    let archive = match code {
        Some(c) => Some(package(c, state.config.max_code_bytes).await?),
        None => None,
    };
    match &archive {
        Some(a) => check_handler(&config, a)?,
        None if config.runtime != current.config.runtime
            || config.handler != current.config.handler =>
        {
            let stored = state
                .registry
                .store()
                .read_code(&current.code_sha256)
                .await?;
            let stored =
                tokio::task::spawn_blocking(move || ignis_package::from_zip(&stored, u64::MAX))
                    .await
                    .map_err(|e| ApiError(IgnisError::internal(e.to_string())))??;
            check_handler(&config, &stored)?;
        }
        None => {}
    }
    let same_code = archive
        .as_ref()
        .is_none_or(|a| a.sha256 == current.code_sha256);
    if same_code && config == current.config {
        // Nothing changed: no new version, no drained pool.
        return Ok(current);
    }
    let code = if same_code { None } else { archive.as_ref() };
    let f = state
        .registry
        .store()
        .update_function(id, current.version, &config, code)
        .await?;
    let f = state.registry.put(f);
    state.engine.function_updated(f.clone());
    tracing::info!(function = %f.label(), version = f.version, "function updated");
    collect_garbage(state).await;
    Ok(f)
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
) -> ApiResult<StatusCode> {
    let result = delete_inner(&state, &id).await;
    audited(
        &state,
        &caller.principal,
        "function.delete",
        &id.to_string(),
        result,
    )
    .await
}

pub(crate) async fn delete_inner(state: &SharedState, id: &FunctionId) -> ApiResult<StatusCode> {
    if !state.registry.store().delete_function(id).await? {
        return Err(ApiError::not_found(format!(
            "function `{id}` does not exist"
        )));
    }
    if let Some(old) = state.registry.remove(id) {
        state.engine.function_removed(&old.id(), old.version);
    }
    // Its waiting asynchronous events become dead letters (running ones
    // end as the engine ends them).
    match state
        .registry
        .store()
        .kill_events_of(id, crate::asyncq::now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(function = %id, events = n, "queued events of a deleted function are dead letters")
        }
        Err(e) => {
            tracing::warn!(function = %id, error = %e, "could not end the queued events of a deleted function")
        }
    }
    tracing::info!(function = %id, "function deleted");
    collect_garbage(state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Collects code the change left unreferenced. The change itself is
/// durable already: a failure here only leaves a file for the next pass.
async fn collect_garbage(state: &SharedState) {
    if let Err(e) = state.registry.collect_garbage().await {
        tracing::warn!(error = %e, "could not collect unreferenced code");
    }
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/code", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The normalized zip archive", content_type = "application/zip"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn code(State(state): State<SharedState>, Fid(id): Fid) -> ApiResult<Response> {
    let f = lookup(&state, &id)?;
    let bytes = state.registry.store().read_code(&f.code_sha256).await?;
    let disposition = format!("attachment; filename=\"{}-v{}.zip\"", f.name, f.version);
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&f.code_sha256) {
        headers.insert("x-ignis-code-sha256", v);
    }
    Ok(response)
}

/// Body of `POST /api/v1/functions/{name}/warm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarmRequest {
    /// How many sandboxes to boot ahead of demand (1..=100).
    #[schema(minimum = 1, maximum = 100)]
    pub count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarmResponse {
    pub requested: u32,
    /// How many started booting (bounded by `max_concurrency` and the memory budget).
    pub started: u32,
}

#[utoipa::path(post, path = "/api/v1/functions/{name}/warm", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = WarmRequest,
    responses(
        (status = 202, description = "Sandboxes are booting", body = WarmResponse),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn warm(
    State(state): State<SharedState>,
    Fid(id): Fid,
    JsonBody(body): JsonBody<WarmRequest>,
) -> ApiResult<(StatusCode, Json<WarmResponse>)> {
    let f = lookup(&state, &id)?;
    if !(1..=100).contains(&body.count) {
        return Err(ApiError::invalid("`count` must be between 1 and 100"));
    }
    let started = state.engine.prewarm(f, body.count);
    Ok((
        StatusCode::ACCEPTED,
        Json(WarmResponse {
            requested: body.count,
            started,
        }),
    ))
}

/// The code of a function's current version, as files.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionFiles {
    pub version: u64,
    /// Path to content, for text files (UTF-8, up to 1 MiB each).
    pub files: BTreeMap<String, String>,
    /// Paths of the other files (binary or larger).
    pub binary: Vec<String>,
}

/// Text files larger than this are listed as binary.
const MAX_TEXT_FILE: usize = 1 << 20;

#[utoipa::path(get, path = "/api/v1/functions/{name}/files", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The current version's files (for the console's editor)", body = FunctionFiles),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn files(
    State(state): State<SharedState>,
    Fid(id): Fid,
) -> ApiResult<Json<FunctionFiles>> {
    let f = lookup(&state, &id)?;
    let bytes = state.registry.store().read_code(&f.code_sha256).await?;
    let entries = tokio::task::spawn_blocking(move || ignis_package::unpack(&bytes, u64::MAX))
        .await
        .map_err(|e| ApiError(IgnisError::internal(e.to_string())))??;
    let mut files = BTreeMap::new();
    let mut binary = Vec::new();
    for (path, content) in entries {
        match String::from_utf8(content) {
            Ok(text) if text.len() <= MAX_TEXT_FILE => {
                files.insert(path, text);
            }
            _ => binary.push(path),
        }
    }
    Ok(Json(FunctionFiles {
        version: f.version,
        files,
        binary,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    /// Newest first; the last 10 versions are kept.
    pub versions: Vec<ignis_core::FunctionVersion>,
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/versions", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The kept versions: configuration and code hash of each (env values masked for viewers)", body = VersionList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn versions(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
) -> ApiResult<Json<VersionList>> {
    lookup(&state, &id)?;
    let mut versions = state.registry.store().list_versions(&id).await?;
    if !ignis_auth::sees_secrets(&caller.principal) {
        for v in &mut versions {
            for value in v.config.env.values_mut() {
                *value = MASK.to_string();
            }
        }
    }
    Ok(Json(VersionList { versions }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestEventList {
    pub events: Vec<ignis_core::TestEvent>,
}

/// Most saved test events per function, and the largest one.
const MAX_TEST_EVENTS: usize = 50;
const MAX_TEST_EVENT_BYTES: usize = 256 * 1024;

#[utoipa::path(get, path = "/api/v1/functions/{name}/test-events", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "Saved test events, by name", body = TestEventList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn test_events(
    State(state): State<SharedState>,
    Fid(id): Fid,
) -> ApiResult<Json<TestEventList>> {
    lookup(&state, &id)?;
    let events = state.registry.store().list_test_events(&id).await?;
    Ok(Json(TestEventList { events }))
}

fn validate_event_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "a test event's name has 1 to 64 characters from A-Z, a-z, 0-9, space, `-`, `_`, `.`",
        ))
    }
}

#[utoipa::path(put, path = "/api/v1/functions/{name}/test-events/{event}", tag = "functions",
    params(("name" = String, Path, description = "Function name"), ("event" = String, Path, description = "Test event name", pattern = "^[A-Za-z0-9 ._-]{1,64}$")),
    request_body(content = Object, description = "The event: any JSON value (256 KiB at most)"),
    responses(
        (status = 200, description = "Saved", body = ignis_core::TestEvent),
        (status = 400, description = "Bad name or not JSON", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody),
        (status = 409, description = "Too many saved events", body = ErrorBody),
        (status = 413, description = "Event too large", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn put_test_event(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: axum::extract::RawPathParams,
    body: axum::body::Bytes,
) -> ApiResult<Json<ignis_core::TestEvent>> {
    let name = path_param(&params, "event");
    validate_event_name(&name)?;
    lookup(&state, &id)?;
    if body.len() > MAX_TEST_EVENT_BYTES {
        return Err(ApiError(IgnisError::new(
            ignis_core::ErrorKind::PayloadTooLarge,
            format!("a test event is at most {MAX_TEST_EVENT_BYTES} bytes"),
        )));
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("the event is not valid JSON: {e}")))?;
    let store = state.registry.store();
    let existing = store.list_test_events(&id).await?;
    if existing.len() >= MAX_TEST_EVENTS && !existing.iter().any(|e| e.name == name) {
        return Err(ApiError(IgnisError::new(
            ignis_core::ErrorKind::Conflict,
            format!("a function keeps at most {MAX_TEST_EVENTS} test events: delete one first"),
        )));
    }
    let saved = ignis_core::TestEvent {
        name,
        event,
        updated_at_ms: ignis_core::now_ms(),
    };
    store.put_test_event(&id, &saved).await?;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}/test-events/{event}", tag = "functions",
    params(("name" = String, Path, description = "Function name"), ("event" = String, Path, description = "Test event name", pattern = "^[A-Za-z0-9 ._-]{1,64}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or event", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete_test_event(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: axum::extract::RawPathParams,
) -> ApiResult<StatusCode> {
    let name = path_param(&params, "event");
    lookup(&state, &id)?;
    if !state.registry.store().delete_test_event(&id, &name).await? {
        return Err(ApiError::not_found(format!("no test event `{name}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}
