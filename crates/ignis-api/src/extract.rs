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
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid(format!("request body is not valid: {e}")))
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
        serde_json::from_slice(&bytes)
            .map(|v| Some(JsonBody(v)))
            .map_err(|e| ApiError::invalid(format!("request body is not valid: {e}")))
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
