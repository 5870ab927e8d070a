//! Extractors whose rejections are typed JSON errors.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;
use ignis_core::{ErrorKind, IgnisError};

/// A JSON body. Any content type is accepted; a body that is not JSON, or
/// not the expected shape, is a 400 with the parser's explanation.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body into `T`. JSON has one number type: `2.0` is the
/// integer 2 to JSON Schema (the OpenAPI document's `integer`), so a body
/// that serde refuses only because an integer field holds an integral float
/// is parsed again with such floats as integers. The first parse's error is
/// the one reported.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).or_else(|e| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|mut v| integral_floats_as_integers(&mut v).then_some(v))
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| ApiError::invalid(format!("request body is not valid: {e}")))
    })
}

/// Turns every float with no fractional part that fits an `i64` or `u64`
/// into that integer; whether any was turned.
pub fn integral_floats_as_integers(v: &mut serde_json::Value) -> bool {
    use serde_json::{Number, Value};
    // 2^63 and 2^64, exact in an f64; below them the casts are exact.
    const I64_END: f64 = 9_223_372_036_854_775_808_u64 as f64;
    const U64_END: f64 = 2.0 * I64_END;
    match v {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            let as_int = if f.fract() != 0.0 {
                None
            } else if (-I64_END..I64_END).contains(&f) {
                Some(Number::from(f as i64))
            } else if (0.0..U64_END).contains(&f) {
                Some(Number::from(f as u64))
            } else {
                None
            };
            match as_int {
                Some(i) => {
                    *n = i;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => {
            let mut any = false;
            for i in items {
                any |= integral_floats_as_integers(i);
            }
            any
        }
        Value::Object(map) => {
            let mut any = false;
            for i in map.values_mut() {
                any |= integral_floats_as_integers(i);
            }
            any
        }
        _ => false,
    }
}

/// An optional JSON body: an empty body is `None`, anything else must parse.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse(&bytes).map(|v| Some(JsonBody(v)))
    }
}

/// The request's JSON body, for handlers that look at the request first.
pub async fn parse_json<T: DeserializeOwned>(req: Request) -> Result<T, ApiError> {
    <JsonBody<T> as FromRequest<()>>::from_request(req, &())
        .await
        .map(|b| b.0)
}

/// The raw body, with the size limit reported as 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(IgnisError::new(
                    ErrorKind::PayloadTooLarge,
                    "request body is over the size limit",
                ))
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"))
            }
        })
}

/// The path's namespace: the `{namespace}` parameter, or `default` on the
/// un-prefixed paths.
pub struct Ns(pub String);

/// The path's function: `{name}` in the path's namespace.
pub struct Fid(pub ignis_core::FunctionId);

async fn params_of(
    parts: &mut axum::http::request::Parts,
) -> Result<Vec<(String, String)>, ApiError> {
    use axum::extract::rejection::RawPathParamsRejection;
    match axum::extract::RawPathParams::from_request_parts(parts, &()).await {
        Ok(p) => Ok(p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        // A route without parameters (`/api/v1/functions`).
        Err(RawPathParamsRejection::MissingPathParams(_)) => Ok(Vec::new()),
        Err(e) => Err(ApiError::invalid(e.body_text())),
    }
}

fn namespace_of(params: &[(String, String)]) -> Result<String, ApiError> {
    match params.iter().find(|(k, _)| k == "namespace") {
        Some((_, ns)) => {
            ignis_core::validate_namespace(ns)?;
            Ok(ns.clone())
        }
        None => Ok(ignis_core::DEFAULT_NAMESPACE.to_string()),
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ns {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let params = params_of(parts).await?;
        Ok(Ns(namespace_of(&params)?))
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Fid {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let params = params_of(parts).await?;
        let namespace = namespace_of(&params)?;
        let name = params
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ApiError::invalid("no function name in the path"))?;
        Ok(Fid(ignis_core::FunctionId::new(namespace, name)))
    }
}

/// Who made the request (the auth middleware put it there).
pub struct Caller(pub crate::auth::Authenticated);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<crate::auth::Authenticated>()
            .cloned()
            .map(Caller)
            .ok_or_else(crate::auth::unauthorized)
    }
}

/// A path parameter by name ("" when absent).
pub fn path_param(params: &axum::extract::RawPathParams, name: &str) -> String {
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}
