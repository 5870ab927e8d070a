//! The AWS Lambda-compatible API: the rest-json wire format of botocore's
//! Lambda model (`botocore/data/lambda/2015-03-31/service-2.json`), signed
//! with AWS Signature Version 4, over the same store, model and engine as
//! the native API (a function created through one is visible and callable
//! through the other).
//!
//! Requests are authenticated by [`sigv4_layer`] (the body buffered with
//! the size limit, the signature verified by [`ignis_auth::sigv4`], the
//! access key id mapped to its ignis key); every operation then goes
//! through [`ignis_auth::authorize`] like the native handlers. Functions
//! live in the `default` namespace, or in the only namespace of a key
//! limited to one. What is supported and what differs from AWS:
//! docs/aws-compat.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use base64::Engine as _;
use ignis_auth::sigv4::{self, SigError};
use ignis_auth::{authorize, Action, Decision, Principal, Resource};
use ignis_core::{
    Alias, ErrorKind, Function, FunctionId, Qualifier, Runtime, Trigger, DEFAULT_NAMESPACE,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::Authenticated;
use crate::handlers::functions::{self, lookup, view};
use crate::handlers::{invoke, versions};
use crate::{ApiError, SharedState};

/// The largest synchronous payload (Lambda's 6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// The largest asynchronous payload (the current model's 1 MB).
pub const MAX_EVENT_PAYLOAD: usize = 1024 * 1024;
/// Most functions, versions or aliases in one page.
const MAX_PAGE: usize = 50;

/// The versions of Python and Node.js the images run, as Lambda names them.
const PYTHON_RUNTIME: &str = "python3.11";
const NODE_RUNTIME: &str = "nodejs18.x";

/// An error as Lambda clients read it: the status, the exception's name in
/// `x-amzn-ErrorType` (botocore takes the code from there) and a JSON body.
#[derive(Debug)]
pub struct LambdaError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u64>,
}

type LResult<T> = Result<T, LambdaError>;

impl LambdaError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    fn precondition(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            message,
        )
    }
}

impl From<ApiError> for LambdaError {
    fn from(e: ApiError) -> Self {
        let e = e.0;
        let (status, code) = match e.kind {
            ErrorKind::InvalidRequest => {
                (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
            }
            ErrorKind::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
            ),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "ResourceConflictException"),
            ErrorKind::Throttled => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
            ErrorKind::Unauthorized => (StatusCode::FORBIDDEN, "UnrecognizedClientException"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            ErrorKind::BackendUnavailable
            | ErrorKind::ShuttingDown
            | ErrorKind::InsufficientStorage => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceException")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException"),
        };
        Self {
            status,
            code,
            message: e.message,
            retry_after_s: e.retry_after_s,
        }
    }
}

impl IntoResponse for LambdaError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        };
        let body = json!({"Type": kind, "message": self.message});
        let mut r = (self.status, axum::Json(body)).into_response();
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// The routes, each behind [`sigv4_layer`]. Prefixes of operations ignis
/// does not implement answer a typed error after authentication.
pub fn router(state: &SharedState) -> Router<SharedState> {
    let fns = "/2015-03-31/functions";
    let mut r = Router::new()
        .route(fns, get(list_functions).post(create_function))
        .route(
            &format!("{fns}/"),
            get(list_functions).post(create_function),
        )
        .route(
            &format!("{fns}/{{name}}"),
            get(get_function).delete(delete_function),
        )
        .route(
            &format!("{fns}/{{name}}/configuration"),
            get(get_configuration).put(update_configuration),
        )
        .route(&format!("{fns}/{{name}}/code"), put(update_code))
        .route(
            &format!("{fns}/{{name}}/invocations"),
            post(invoke_function),
        )
        .route(
            &format!("{fns}/{{name}}/versions"),
            get(list_versions).post(publish_version),
        )
        .route(
            &format!("{fns}/{{name}}/aliases"),
            get(list_aliases).post(create_alias),
        )
        .route(
            &format!("{fns}/{{name}}/aliases/{{alias}}"),
            get(get_alias).put(update_alias).delete(delete_alias),
        )
        .route(
            "/2020-06-30/functions/{name}/code-signing-config",
            get(code_signing_config),
        );
    for prefix in [
        "2014-11-13",
        "2015-03-31",
        "2016-08-19",
        "2017-03-31",
        "2017-10-31",
        "2018-10-31",
        "2019-09-25",
        "2019-09-30",
        "2020-04-22",
        "2020-06-30",
        "2021-07-20",
        "2021-10-31",
        "2021-11-15",
        "2024-08-31",
        "2025-11-30",
        "2025-12-01",
    ] {
        r = r.route(&format!("/{prefix}/{{*rest}}"), any(unsupported));
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        sigv4_layer,
    ))
}

/// The largest request body: a base64 zip of the largest code archive.
fn body_limit(state: &SharedState) -> usize {
    (state.config.max_code_bytes as usize) / 3 * 4 + (1 << 20)
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// 16 bytes laid out as a UUID v4 (the shape of Lambda's ids).
fn uuid_layout(b: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// Authenticates with SigV4: buffers the body (with the limit), verifies
/// the signature against the secret derived for the access key id, and
/// hands the handlers the key's principal and the body. Every answer gets
/// an `x-amzn-RequestId`.
async fn sigv4_layer(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let request_id = new_request_id();
    let mut response = match authenticate(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

async fn authenticate(state: &SharedState, req: Request) -> LResult<Request> {
    let ip = crate::auth::client_ip(&req);
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, body_limit(state))
        .await
        .map_err(|_| {
            LambdaError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                "the request body is over the size limit",
            )
        })?;
    let principal = if state.auth.enabled() {
        state
            .auth
            .check_rate(ip)
            .map_err(|e| LambdaError::from(crate::auth::auth_error(e)))?;
        let headers: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let signed = sigv4::Request {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers,
            body_sha256: sigv4::body_sha256(&bytes),
        };
        let mut principal = None;
        let verified = sigv4::verify(&signed, "lambda", now_s(), |akid| {
            let (secret, p) = state.auth.aws_lookup(akid)?;
            principal = Some(p);
            Some(secret)
        });
        match (verified, principal) {
            (Ok(_), Some(p)) => p,
            (Err(e), _) => {
                if e != SigError::Missing {
                    state.auth.failed(ip);
                }
                tracing::info!(reason = %e, "Lambda API request refused");
                return Err(signature_error(e));
            }
            (Ok(_), None) => {
                return Err(signature_error(SigError::Mismatch));
            }
        }
    } else {
        Principal::auth_disabled()
    };
    parts.extensions.insert(Authenticated {
        principal,
        csrf: None,
    });
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn signature_error(e: SigError) -> LambdaError {
    let code = match &e {
        SigError::Missing => "MissingAuthenticationTokenException",
        SigError::UnknownKey(_) => "UnrecognizedClientException",
        _ => "InvalidSignatureException",
    };
    let message = match &e {
        SigError::Skewed { .. } => format!("Signature expired: {e}"),
        _ => e.to_string(),
    };
    LambdaError::new(StatusCode::FORBIDDEN, code, message)
}

/// What every operation knows of its request.
struct Ctx {
    principal: Principal,
    namespace: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = LambdaError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Authenticated>()
            .map(|a| a.principal.clone())
            .ok_or_else(|| signature_error(SigError::Missing))?;
        let namespace = match &principal.namespaces {
            ignis_core::auth::Namespaces::Only(set) if set.len() == 1 => {
                set.iter().next().cloned().unwrap_or_default()
            }
            _ => DEFAULT_NAMESPACE.to_string(),
        };
        Ok(Ctx {
            principal,
            namespace,
        })
    }
}

impl Ctx {
    /// The one authorization decision of an operation.
    fn allow(&self, action: Action) -> LResult<()> {
        match authorize(
            &self.principal,
            action,
            Resource::Namespace(&self.namespace),
        ) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(LambdaError::new(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!("not authorized: {reason}"),
            )),
        }
    }

    fn id(&self, name: &str) -> FunctionId {
        FunctionId::new(self.namespace.clone(), name.to_string())
    }
}

/// `{FunctionName}` of a path: a name, `name:qualifier`,
/// `account:function:name[:qualifier]` or a full ARN, percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub qualifier: Option<String>,
}

/// Parses `{FunctionName}` (as it arrived, percent-encoded) and merges the
/// `Qualifier` query parameter: the two must agree when both are given.
pub fn parse_target(raw: &str, query_qualifier: Option<&str>) -> LResult<Target> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| LambdaError::invalid("the function name is not UTF-8"))?;
    let parts: Vec<&str> = decoded.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, q] => (*name, Some(*q)),
        ["arn", _partition, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _account, "function", name, q] => (*name, Some(*q)),
        _ => {
            return Err(LambdaError::invalid(format!(
                "`{decoded}` is not a function name, a partial ARN or a function ARN"
            )))
        }
    };
    if name.is_empty() || qualifier == Some("") {
        return Err(LambdaError::invalid(format!(
            "`{decoded}` is not a function name"
        )));
    }
    let query_qualifier = query_qualifier.filter(|q| !q.is_empty());
    let qualifier = match (qualifier, query_qualifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(LambdaError::invalid(format!(
                "the qualifier in the function name (`{a}`) and the Qualifier parameter (`{b}`) disagree"
            )))
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    Ok(Target {
        name: name.to_string(),
        qualifier,
    })
}

#[derive(Debug, Default, Deserialize)]
struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<usize>,
    #[serde(rename = "FunctionVersion")]
    function_version: Option<String>,
    #[serde(rename = "MasterRegion")]
    _master_region: Option<String>,
}

/// The raw `{name}` of the matched path.
fn raw_name(params: &axum::extract::RawPathParams, key: &str) -> String {
    crate::extract::path_param(params, key)
}

fn query<T: Default + serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> LResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| LambdaError::invalid(e.body_text()))
}

fn page_size(max_items: Option<usize>) -> LResult<usize> {
    match max_items {
        None => Ok(MAX_PAGE),
        Some(0) => Err(LambdaError::invalid("`MaxItems` must be at least 1")),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

/// What a qualifier names, for reading: the latest (`None`) or a version.
async fn resolve_read(
    state: &SharedState,
    id: &FunctionId,
    qualifier: Option<&str>,
) -> LResult<(Arc<Function>, Option<String>)> {
    let latest = lookup(state, id)?;
    match qualifier {
        None | Some("$LATEST") => Ok((latest, qualifier.map(str::to_string))),
        Some(q) => match Qualifier::parse(q).map_err(ApiError::from)? {
            Qualifier::Latest => Ok((latest, Some(q.to_string()))),
            Qualifier::Version(v) => Ok((
                state
                    .registry
                    .version(id, v)
                    .await
                    .map_err(ApiError::from)?,
                Some(q.to_string()),
            )),
            Qualifier::Alias(a) => {
                let alias = state.registry.alias(id, &a).ok_or_else(|| {
                    LambdaError::not_found(format!("function `{id}` has no alias `{a}`"))
                })?;
                Ok((
                    state
                        .registry
                        .version(id, alias.version)
                        .await
                        .map_err(ApiError::from)?,
                    Some(q.to_string()),
                ))
            }
        },
    }
}

fn arn(state: &SharedState, name: &str, qualifier: Option<&str>) -> String {
    let base = format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        state.config.aws_region, state.config.aws_account
    );
    match qualifier {
        Some(q) => format!("{base}:{q}"),
        None => base,
    }
}

/// A revision id that changes with every change of a function version and
/// reads the same every time (derived, not stored).
fn revision_of(f: &Function) -> String {
    let digest = Sha256::digest(format!(
        "{}/{}/{}/{}",
        f.namespace,
        f.name,
        f.version,
        f.updated_at.timestamp_micros()
    ));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    uuid_layout(b)
}

fn code_sha256_b64(f: &Function) -> String {
    let hex_digest = f.source_sha256.as_deref().unwrap_or(&f.code_sha256);
    let bytes = hex::decode(hex_digest).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn runtime_name(r: Runtime) -> &'static str {
    match r {
        Runtime::Python3 => PYTHON_RUNTIME,
        Runtime::Nodejs => NODE_RUNTIME,
    }
}

fn parse_runtime(s: &str) -> LResult<&'static str> {
    if s == "python3" || s.starts_with("python3.") {
        Ok("python3")
    } else if s == "nodejs" || (s.starts_with("nodejs") && s.ends_with(".x")) {
        Ok("nodejs")
    } else {
        Err(LambdaError::invalid(format!(
            "Value {s} at 'runtime' failed to satisfy constraint: ignis runs python3.x and nodejs*.x"
        )))
    }
}

/// `FunctionConfiguration` of a function version. `version_label` is
/// `$LATEST` or the number; `qualified` is the qualifier the request named
/// (the ARN carries it only then).
fn configuration(
    state: &SharedState,
    f: &Function,
    principal: &Principal,
    qualified: Option<&str>,
) -> Value {
    let f = view(f, principal);
    let version = if f.published {
        f.version.to_string()
    } else {
        "$LATEST".to_string()
    };
    let mut c = json!({
        "FunctionName": f.name,
        "FunctionArn": arn(state, &f.name, qualified),
        "Runtime": runtime_name(f.config.runtime),
        "Role": f.config.role.clone().unwrap_or_else(|| format!("arn:aws:iam::{}:role/ignis", state.config.aws_account)),
        "Handler": f.config.handler,
        "CodeSize": f.code_size_bytes,
        "Description": f.config.description,
        "Timeout": f.config.timeout_ms.div_ceil(1000).max(1),
        "MemorySize": f.config.memory_mb,
        "LastModified": f.updated_at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "CodeSha256": code_sha256_b64(&f),
        "Version": version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision_of(&f),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", f.name)},
    });
    if !f.config.env.is_empty() {
        c["Environment"] = json!({"Variables": f.config.env});
    }
    c
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// The JSON body of a request (empty: `{}`).
fn body_json(bytes: &Bytes) -> LResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(LambdaError::invalid(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(LambdaError::invalid(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn string_field(body: &Map<String, Value>, key: &str) -> LResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(LambdaError::invalid(format!("`{key}` must be a string"))),
    }
}

fn int_field(body: &Map<String, Value>, key: &str) -> LResult<Option<u64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| LambdaError::invalid(format!("`{key}` must be a positive integer"))),
    }
}

fn bool_field(body: &Map<String, Value>, key: &str) -> LResult<bool> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(LambdaError::invalid(format!("`{key}` must be a boolean"))),
    }
}

/// Fields ignis cannot honour: refused rather than silently dropped.
fn refuse_unsupported(body: &Map<String, Value>) -> LResult<()> {
    let non_empty = |k: &str| {
        body.get(k).is_some_and(|v| match v {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
    };
    for k in [
        "Layers",
        "FileSystemConfigs",
        "ImageConfig",
        "CapacityProviderConfig",
    ] {
        if non_empty(k) {
            return Err(LambdaError::invalid(format!(
                "`{k}` is not supported by ignis"
            )));
        }
    }
    if let Some(p) = body.get("PackageType").and_then(Value::as_str) {
        if p != "Zip" {
            return Err(LambdaError::invalid(
                "ignis runs zip packages only (`PackageType: Zip`)",
            ));
        }
    }
    if let Some(a) = body.get("Architectures").and_then(Value::as_array) {
        if a.iter().any(|v| v != "x86_64") {
            return Err(LambdaError::invalid("ignis runs `x86_64` only"));
        }
    }
    Ok(())
}

/// The configuration fields of a Lambda request, as a native patch.
fn native_config(body: &Map<String, Value>, native: &mut Map<String, Value>) -> LResult<()> {
    if let Some(r) = string_field(body, "Runtime")? {
        native.insert("runtime".into(), json!(parse_runtime(&r)?));
    }
    if let Some(h) = string_field(body, "Handler")? {
        native.insert("handler".into(), json!(h));
    }
    if let Some(t) = int_field(body, "Timeout")? {
        if !(1..=900).contains(&t) {
            return Err(LambdaError::invalid(format!(
                "Value {t} at 'timeout' failed to satisfy constraint: between 1 and 900"
            )));
        }
        native.insert("timeout_ms".into(), json!(t * 1000));
    }
    if let Some(m) = int_field(body, "MemorySize")? {
        native.insert("memory_mb".into(), json!(m));
    }
    if let Some(d) = string_field(body, "Description")? {
        native.insert("description".into(), json!(d));
    }
    if let Some(r) = string_field(body, "Role")? {
        native.insert("role".into(), json!(r));
    }
    match body.get("Environment") {
        None | Some(Value::Null) => {}
        Some(Value::Object(env)) => {
            let vars = match env.get("Variables") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(v) => {
                    serde_json::from_value::<BTreeMap<String, String>>(v.clone()).map_err(|_| {
                        LambdaError::invalid("`Environment.Variables` must map names to strings")
                    })?
                }
            };
            native.insert("env".into(), json!(vars));
        }
        Some(_) => return Err(LambdaError::invalid("`Environment` must be an object")),
    }
    Ok(())
}

/// `Code` of CreateFunction or the body of UpdateFunctionCode: only
/// `ZipFile` (base64 in the JSON).
fn native_code(code: &Map<String, Value>) -> LResult<Value> {
    for k in ["S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"] {
        if code.get(k).is_some_and(|v| !v.is_null()) {
            return Err(LambdaError::invalid(format!(
                "`{k}`: ignis takes the code inline, as `ZipFile`"
            )));
        }
    }
    match string_field(code, "ZipFile")? {
        Some(zip) => Ok(json!({"zip_base64": zip})),
        None => Err(LambdaError::invalid("`ZipFile` is required")),
    }
}

/// The function's current revision must be `expected` when given.
fn check_revision(f: &Function, expected: Option<&str>) -> LResult<()> {
    match expected {
        Some(r) if r != revision_of(f) => Err(LambdaError::precondition(format!(
            "the revision id {r} is not the function's current revision ({})",
            revision_of(f)
        ))),
        _ => Ok(()),
    }
}

async fn publish(
    state: &SharedState,
    id: &FunctionId,
    description: String,
) -> LResult<Arc<Function>> {
    let v = versions::publish_inner(
        state,
        id,
        versions::PublishRequest {
            description,
            expected_version: None,
        },
    )
    .await?;
    Ok(state
        .registry
        .version(id, v.version)
        .await
        .map_err(ApiError::from)?)
}

// ---- operations ----------------------------------------------------------

async fn create_function(
    State(state): State<SharedState>,
    ctx: Ctx,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let body = body_json(&bytes)?;
    refuse_unsupported(&body)?;
    let name = string_field(&body, "FunctionName")?
        .ok_or_else(|| LambdaError::invalid("`FunctionName` is required"))?;
    let target = parse_target(&name, None)?;
    if target.qualifier.is_some() {
        return Err(LambdaError::invalid(
            "`FunctionName` may not carry a qualifier here",
        ));
    }
    let mut native = Map::new();
    native.insert("name".into(), json!(target.name));
    for k in ["Runtime", "Handler"] {
        if string_field(&body, k)?.is_none() {
            return Err(LambdaError::invalid(format!("`{k}` is required")));
        }
    }
    native_config(&body, &mut native)?;
    let code = match body.get("Code") {
        Some(Value::Object(c)) => native_code(c)?,
        _ => return Err(LambdaError::invalid("`Code` is required")),
    };
    native.insert("code".into(), code);
    let publish_it = bool_field(&body, "Publish")?;
    let description = string_field(&body, "Description")?.unwrap_or_default();
    let id = ctx.id(&target.name);
    let result = async {
        let f = functions::create_function(&state, ctx.namespace.clone(), Value::Object(native))
            .await
            .map_err(LambdaError::from)?;
        if publish_it {
            let v = publish(&state, &id, description).await?;
            return Ok(configuration(&state, &v, &ctx.principal, None));
        }
        Ok(configuration(&state, &f, &ctx.principal, None))
    }
    .await;
    let result = audited_l(&state, &ctx, "function.create", &id.to_string(), result).await;
    Ok(json_response(StatusCode::CREATED, result?))
}

/// [`audited`], for operations whose error is a [`LambdaError`].
async fn audited_l<T>(
    state: &SharedState,
    ctx: &Ctx,
    action: &str,
    target: &str,
    result: LResult<T>,
) -> LResult<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    state
        .auth
        .audit(Some(&ctx.principal), action, target, outcome)
        .await;
    result
}

async fn list_functions(
    State(state): State<SharedState>,
    ctx: Ctx,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let q = query(q)?;
    let size = page_size(q.max_items)?;
    let all = state.registry.list_namespace(&ctx.namespace);
    let start = match &q.marker {
        Some(m) => all.partition_point(|f| f.name.as_str() <= m.as_str()),
        None => 0,
    };
    let page: Vec<Value> = all[start..]
        .iter()
        .take(size)
        .map(|f| configuration(&state, f, &ctx.principal, None))
        .collect();
    let mut out = json!({"Functions": page});
    if start + size < all.len() {
        out["NextMarker"] = json!(all[start + size - 1].name);
    }
    Ok(json_response(StatusCode::OK, out))
}

async fn get_function(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<QualifierQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let t = parse_target(&raw_name(&params, "name"), query(q)?.qualifier.as_deref())?;
    let id = ctx.id(&t.name);
    let (f, qualified) = resolve_read(&state, &id, t.qualifier.as_deref()).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let location = if ctx.namespace == DEFAULT_NAMESPACE {
        format!("http://{host}/api/v1/functions/{}/code", f.name)
    } else {
        format!(
            "http://{host}/api/v1/namespaces/{}/functions/{}/code",
            ctx.namespace, f.name
        )
    };
    let out = json!({
        "Configuration": configuration(&state, &f, &ctx.principal, qualified.as_deref()),
        "Code": {"RepositoryType": "S3", "Location": location},
        "Tags": {},
    });
    Ok(json_response(StatusCode::OK, out))
}

async fn get_configuration(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<QualifierQuery>, axum::extract::rejection::QueryRejection>,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let t = parse_target(&raw_name(&params, "name"), query(q)?.qualifier.as_deref())?;
    let id = ctx.id(&t.name);
    let (f, qualified) = resolve_read(&state, &id, t.qualifier.as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        configuration(&state, &f, &ctx.principal, qualified.as_deref()),
    ))
}

/// An operation that changes `$LATEST` takes no qualifier.
fn unqualified(raw: &str) -> LResult<Target> {
    let t = parse_target(raw, None)?;
    match t.qualifier.as_deref() {
        None | Some("$LATEST") => Ok(t),
        Some(q) => Err(LambdaError::invalid(format!(
            "only $LATEST can be changed, not `{q}`"
        ))),
    }
}

async fn update_configuration(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let body = body_json(&bytes)?;
    refuse_unsupported(&body)?;
    let id = ctx.id(&t.name);
    let result = async {
        let current = lookup(&state, &id)?;
        check_revision(&current, string_field(&body, "RevisionId")?.as_deref())?;
        let mut native = Map::new();
        native_config(&body, &mut native)?;
        let f = if native.is_empty() {
            current
        } else {
            functions::update_function(&state, &id, Value::Object(native)).await?
        };
        Ok(configuration(&state, &f, &ctx.principal, None))
    }
    .await;
    let v = audited_l(&state, &ctx, "function.update", &id.to_string(), result).await?;
    Ok(json_response(StatusCode::OK, v))
}

async fn update_code(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let body = body_json(&bytes)?;
    refuse_unsupported(&body)?;
    let id = ctx.id(&t.name);
    let result = async {
        let current = lookup(&state, &id)?;
        check_revision(&current, string_field(&body, "RevisionId")?.as_deref())?;
        let code = native_code(&body)?;
        if bool_field(&body, "DryRun")? {
            return Ok(configuration(&state, &current, &ctx.principal, None));
        }
        let f = functions::update_function(&state, &id, json!({"code": code})).await?;
        if bool_field(&body, "Publish")? {
            let v = publish(&state, &id, String::new()).await?;
            return Ok(configuration(&state, &v, &ctx.principal, None));
        }
        Ok(configuration(&state, &f, &ctx.principal, None))
    }
    .await;
    let v = audited_l(&state, &ctx, "function.update", &id.to_string(), result).await?;
    Ok(json_response(StatusCode::OK, v))
}

async fn delete_function(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<QualifierQuery>, axum::extract::rejection::QueryRejection>,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = parse_target(&raw_name(&params, "name"), query(q)?.qualifier.as_deref())?;
    let id = ctx.id(&t.name);
    let result = async {
        match t.qualifier.as_deref() {
            None | Some("$LATEST") => {
                functions::delete_inner(&state, &id).await?;
            }
            Some(q) => match Qualifier::parse(q).map_err(ApiError::from)? {
                Qualifier::Version(v) => versions::delete_version_inner(&state, &id, v).await?,
                _ => {
                    return Err(LambdaError::invalid(
                        "an alias is deleted with DeleteAlias, not DeleteFunction",
                    ))
                }
            },
        }
        Ok(())
    }
    .await;
    audited_l(&state, &ctx, "function.delete", &id.to_string(), result).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `errorType` and `errorMessage` of a handler's error message
/// (`ValueError: boom` → `ValueError`, `boom`).
fn split_error(message: &str) -> (String, String) {
    if let Some((t, m)) = message.split_once(": ") {
        let ident = !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'));
        if ident {
            return (t.to_string(), m.to_string());
        }
    }
    ("Error".to_string(), message.to_string())
}

async fn invoke_function(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<QualifierQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::Invoke)?;
    let t = parse_target(&raw_name(&params, "name"), query(q)?.qualifier.as_deref())?;
    let id = ctx.id(&t.name);
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let kind = header_str("x-amz-invocation-type").unwrap_or("RequestResponse");
    let tail = match header_str("x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(LambdaError::invalid(format!(
                "`X-Amz-Log-Type` must be None or Tail, not `{other}`"
            )))
        }
    };
    let limit = if kind == "Event" {
        MAX_EVENT_PAYLOAD
    } else {
        MAX_SYNC_PAYLOAD
    };
    if bytes.len() > limit {
        return Err(LambdaError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!(
                "{} bytes of payload; the limit of a {kind} invocation is {limit}",
                bytes.len()
            ),
        ));
    }
    let event = invoke::parse_event(&bytes).map_err(|e| {
        LambdaError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            e.0.message,
        )
    })?;
    let qualifier = t.qualifier.filter(|q| q != "$LATEST");
    lookup(&state, &id)?;
    let f = invoke::resolve(&state, &id, qualifier.as_deref()).await?;
    match kind {
        "RequestResponse" => {}
        "Event" => {
            let e = state.asyncq.submit(&f, qualifier, event).await?;
            let mut r = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&e.id) {
                r.headers_mut().insert("x-ignis-invocation-id", v);
            }
            return Ok(r);
        }
        "DryRun" => return Ok(StatusCode::NO_CONTENT.into_response()),
        other => {
            return Err(LambdaError::invalid(format!(
                "`X-Amz-Invocation-Type` must be RequestResponse, Event or DryRun, not `{other}`"
            )))
        }
    }
    let outcome = if tail {
        state
            .engine
            .invoke_with_log_tail(f.clone(), event, Trigger::Api)
            .await
    } else {
        state.engine.invoke(f.clone(), event, Trigger::Api).await
    };
    let mut h = HeaderMap::new();
    invoke::outcome_headers(&outcome, &mut h);
    let executed = if f.published {
        outcome.version.to_string()
    } else {
        "$LATEST".to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&executed) {
        h.insert("x-amz-executed-version", v);
    }
    if let Some(logs) = &outcome.log_tail {
        let b64 = base64::engine::general_purpose::STANDARD.encode(logs.as_bytes());
        if let Ok(v) = HeaderValue::from_str(&b64) {
            h.insert("x-amz-log-result", v);
        }
    }
    let mut response = match outcome.result {
        Ok(value) => {
            let mut r = (StatusCode::OK, String::from(value.get())).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            let timeout_s = f.config.timeout_ms as f64 / 1000.0;
            let function_error = |error_type: String, message: String, stack: Option<&str>| {
                let trace: Vec<&str> = stack.map(|s| s.lines().collect()).unwrap_or_default();
                let body =
                    json!({"errorMessage": message, "errorType": error_type, "stackTrace": trace});
                let mut r = (StatusCode::OK, axum::Json(body)).into_response();
                r.headers_mut().insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
                r
            };
            match e.kind() {
                ErrorKind::FunctionError | ErrorKind::InvalidResult => {
                    let (t, m) = split_error(&e.to_string());
                    function_error(t, m, e.stack())
                }
                ErrorKind::InitError => {
                    let (t, m) = split_error(&e.to_string());
                    let t = if t == "Error" {
                        "Runtime.ImportModuleError".to_string()
                    } else {
                        t
                    };
                    function_error(t, m, e.stack())
                }
                ErrorKind::Timeout => function_error(
                    "Sandbox.Timedout".into(),
                    format!("Task timed out after {timeout_s:.2} seconds"),
                    None,
                ),
                ErrorKind::OutOfMemory | ErrorKind::SandboxCrashed => function_error(
                    "Runtime.ExitError".into(),
                    format!("RequestId: {} Error: {e}", outcome.id),
                    None,
                ),
                ErrorKind::ResponseTooLarge => {
                    function_error("Function.ResponseSizeTooLarge".into(), e.to_string(), None)
                }
                _ => LambdaError::from(ApiError::from(e)).into_response(),
            }
        }
    };
    response.headers_mut().extend(h);
    Ok(response)
}

async fn publish_version(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let body = body_json(&bytes)?;
    let id = ctx.id(&t.name);
    let result = async {
        let current = lookup(&state, &id)?;
        check_revision(&current, string_field(&body, "RevisionId")?.as_deref())?;
        if let Some(sha) = string_field(&body, "CodeSha256")? {
            if sha != code_sha256_b64(&current) {
                return Err(LambdaError::precondition(format!(
                    "CodeSha256 {sha} is not the code of $LATEST ({})",
                    code_sha256_b64(&current)
                )));
            }
        }
        let description = string_field(&body, "Description")?.unwrap_or_default();
        let v = publish(&state, &id, description).await?;
        Ok(configuration(
            &state,
            &v,
            &ctx.principal,
            Some(&v.version.to_string()),
        ))
    }
    .await;
    let v = audited_l(&state, &ctx, "function.publish", &id.to_string(), result).await?;
    Ok(json_response(StatusCode::CREATED, v))
}

async fn list_versions(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let q = query(q)?;
    let size = page_size(q.max_items)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let id = ctx.id(&t.name);
    let latest = lookup(&state, &id)?;
    let stored = state
        .registry
        .store()
        .list_versions(&id)
        .await
        .map_err(ApiError::from)?;
    let mut all: Vec<(String, Value)> = vec![(
        "$LATEST".to_string(),
        configuration(&state, &latest, &ctx.principal, Some("$LATEST")),
    )];
    let mut published: Vec<u64> = stored
        .iter()
        .filter(|v| v.published)
        .map(|v| v.version)
        .collect();
    published.sort_unstable();
    for v in published {
        let f = state
            .registry
            .version(&id, v)
            .await
            .map_err(ApiError::from)?;
        all.push((
            v.to_string(),
            configuration(&state, &f, &ctx.principal, Some(&v.to_string())),
        ));
    }
    let start = match &q.marker {
        Some(m) => all
            .iter()
            .position(|(k, _)| k == m)
            .map(|i| i + 1)
            .ok_or_else(|| LambdaError::invalid(format!("`Marker` {m} is not a version")))?,
        None => 0,
    };
    let page: Vec<Value> = all[start..]
        .iter()
        .take(size)
        .map(|(_, v)| v.clone())
        .collect();
    let mut out = json!({"Versions": page});
    if start + size < all.len() {
        out["NextMarker"] = json!(all[start + size - 1].0);
    }
    Ok(json_response(StatusCode::OK, out))
}

fn alias_configuration(state: &SharedState, function: &str, a: &Alias) -> Value {
    let mut c = json!({
        "AliasArn": arn(state, function, Some(&a.name)),
        "Name": a.name,
        "FunctionVersion": a.version.to_string(),
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.weights.is_empty() {
        let w: BTreeMap<String, f64> = a.weights.iter().map(|(v, w)| (v.to_string(), *w)).collect();
        c["RoutingConfig"] = json!({"AdditionalVersionWeights": w});
    }
    c
}

fn alias_version(s: &str) -> LResult<u64> {
    if s == "$LATEST" {
        return Err(LambdaError::invalid(
            "an ignis alias names a published version, not $LATEST: publish one first",
        ));
    }
    s.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        LambdaError::invalid(format!("`FunctionVersion` {s} is not a version number"))
    })
}

/// `RoutingConfig.AdditionalVersionWeights`, when given (`{}` clears).
fn routing(body: &Map<String, Value>) -> LResult<Option<BTreeMap<u64, f64>>> {
    let Some(rc) = body.get("RoutingConfig").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let weights = rc
        .get("AdditionalVersionWeights")
        .cloned()
        .unwrap_or(json!({}));
    let raw: BTreeMap<String, f64> = serde_json::from_value(weights)
        .map_err(|_| LambdaError::invalid("`AdditionalVersionWeights` maps versions to weights"))?;
    raw.into_iter()
        .map(|(k, w)| Ok((alias_version(&k)?, w)))
        .collect::<LResult<_>>()
        .map(Some)
}

async fn create_alias(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let body = body_json(&bytes)?;
    let id = ctx.id(&t.name);
    let name = string_field(&body, "Name")?.unwrap_or_default();
    let result = async {
        let version = alias_version(
            &string_field(&body, "FunctionVersion")?
                .ok_or_else(|| LambdaError::invalid("`FunctionVersion` is required"))?,
        )?;
        let req = versions::CreateAliasRequest {
            name: name.clone(),
            version,
            weights: routing(&body)?.unwrap_or_default(),
            description: string_field(&body, "Description")?.unwrap_or_default(),
        };
        let a = versions::create_alias_inner(&state, &id, req).await?;
        Ok(alias_configuration(&state, &t.name, &a))
    }
    .await;
    let v = audited_l(
        &state,
        &ctx,
        "alias.create",
        &format!("{id}:{name}"),
        result,
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, v))
}

async fn list_aliases(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let q = query(q)?;
    let size = page_size(q.max_items)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let id = ctx.id(&t.name);
    lookup(&state, &id)?;
    let filter = match q.function_version.as_deref() {
        None => None,
        Some(v) => Some(alias_version(v)?),
    };
    let all: Vec<Alias> = state
        .registry
        .aliases(&id)
        .into_iter()
        .filter(|a| filter.is_none_or(|v| a.version == v || a.weights.contains_key(&v)))
        .collect();
    let start = match &q.marker {
        Some(m) => all.partition_point(|a| a.name.as_str() <= m.as_str()),
        None => 0,
    };
    let page: Vec<Value> = all[start..]
        .iter()
        .take(size)
        .map(|a| alias_configuration(&state, &t.name, a))
        .collect();
    let mut out = json!({"Aliases": page});
    if start + size < all.len() {
        out["NextMarker"] = json!(all[start + size - 1].name);
    }
    Ok(json_response(StatusCode::OK, out))
}

async fn get_alias(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let id = ctx.id(&t.name);
    lookup(&state, &id)?;
    let name = decoded(&raw_name(&params, "alias"))?;
    let a = state
        .registry
        .alias(&id, &name)
        .ok_or_else(|| LambdaError::not_found(format!("function `{id}` has no alias `{name}`")))?;
    Ok(json_response(
        StatusCode::OK,
        alias_configuration(&state, &t.name, &a),
    ))
}

fn decoded(raw: &str) -> LResult<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| LambdaError::invalid("the path is not UTF-8"))
}

async fn update_alias(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
    bytes: Bytes,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let body = body_json(&bytes)?;
    let id = ctx.id(&t.name);
    let name = decoded(&raw_name(&params, "alias"))?;
    let result = async {
        let version = match string_field(&body, "FunctionVersion")? {
            Some(v) => Some(alias_version(&v)?),
            None => None,
        };
        let req = versions::UpdateAliasRequest {
            version,
            weights: routing(&body)?,
            description: string_field(&body, "Description")?,
            revision_id: string_field(&body, "RevisionId")?,
        };
        let a = versions::update_alias_inner(&state, &id, &name, req)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::Conflict {
                    LambdaError::precondition(e.0.message)
                } else {
                    LambdaError::from(e)
                }
            })?;
        Ok(alias_configuration(&state, &t.name, &a))
    }
    .await;
    let v = audited_l(
        &state,
        &ctx,
        "alias.update",
        &format!("{id}:{name}"),
        result,
    )
    .await?;
    Ok(json_response(StatusCode::OK, v))
}

async fn delete_alias(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
) -> LResult<Response> {
    ctx.allow(Action::WriteFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let id = ctx.id(&t.name);
    let name = decoded(&raw_name(&params, "alias"))?;
    let result = versions::delete_alias_inner(&state, &id, &name)
        .await
        .map_err(LambdaError::from);
    audited_l(
        &state,
        &ctx,
        "alias.delete",
        &format!("{id}:{name}"),
        result,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn code_signing_config(
    State(state): State<SharedState>,
    ctx: Ctx,
    params: axum::extract::RawPathParams,
) -> LResult<Response> {
    ctx.allow(Action::ReadFunctions)?;
    let t = unqualified(&raw_name(&params, "name"))?;
    let id = ctx.id(&t.name);
    lookup(&state, &id)?;
    Ok(json_response(
        StatusCode::OK,
        json!({"CodeSigningConfigArn": "", "FunctionName": t.name}),
    ))
}

async fn unsupported(method: Method, uri: axum::http::Uri) -> LambdaError {
    LambdaError::new(
        StatusCode::BAD_REQUEST,
        "UnsupportedOperationException",
        format!(
            "ignis does not implement {method} {}: docs/aws-compat.md lists the operations it does",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, q: Option<&str>) -> Target {
        Target {
            name: name.into(),
            qualifier: q.map(str::to_string),
        }
    }

    #[test]
    fn function_names_in_every_form() {
        assert_eq!(parse_target("f1", None).unwrap(), t("f1", None));
        assert_eq!(
            parse_target("f1%3A%24LATEST", None).unwrap(),
            t("f1", Some("$LATEST"))
        );
        assert_eq!(
            parse_target("f1:prod", None).unwrap(),
            t("f1", Some("prod"))
        );
        assert_eq!(
            parse_target("123456789012%3Afunction%3Af1", None).unwrap(),
            t("f1", None)
        );
        assert_eq!(
            parse_target(
                "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af1",
                None
            )
            .unwrap(),
            t("f1", None)
        );
        assert_eq!(
            parse_target("arn:aws:lambda:us-east-1:123456789012:function:f1:7", None).unwrap(),
            t("f1", Some("7"))
        );
        assert_eq!(
            parse_target("f1", Some("prod")).unwrap(),
            t("f1", Some("prod"))
        );
        assert_eq!(
            parse_target("f1:prod", Some("prod")).unwrap(),
            t("f1", Some("prod"))
        );
    }

    #[test]
    fn a_disagreement_or_a_malformed_name_is_invalid() {
        for (raw, q) in [
            ("f1:prod", Some("3")),
            ("a:b:c", None),
            ("arn:aws:s3:::bucket", None),
            ("", None),
            ("f1:", None),
        ] {
            let e = parse_target(raw, q).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValueException", "{raw}");
        }
    }

    #[test]
    fn runtimes_map_to_the_two_ignis_runs() {
        assert_eq!(parse_runtime("python3.12").unwrap(), "python3");
        assert_eq!(parse_runtime("python3.9").unwrap(), "python3");
        assert_eq!(parse_runtime("nodejs20.x").unwrap(), "nodejs");
        for bad in ["java21", "go1.x", "provided.al2023", "python2.7", "nodejs"] {
            if bad == "nodejs" {
                continue;
            }
            assert!(parse_runtime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn handler_errors_split_into_type_and_message() {
        assert_eq!(
            split_error("ValueError: boom: twice"),
            ("ValueError".into(), "boom: twice".into())
        );
        assert_eq!(
            split_error("something broke"),
            ("Error".into(), "something broke".into())
        );
        assert_eq!(
            split_error("a sentence: with a colon"),
            ("Error".into(), "a sentence: with a colon".into())
        );
    }
}
