//! One module per API resource.

pub mod access;
pub mod events;
pub mod functions;
pub mod health;
pub mod invoke;
pub mod metrics;
pub mod triggers;
pub mod versions;

use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use ignis_core::{ErrorKind, IgnisError};

use crate::ApiError;

/// The console's pages and assets; for anything else, a JSON 404.
pub async fn not_found(
    axum::extract::State(state): axum::extract::State<crate::SharedState>,
    method: Method,
    uri: Uri,
) -> Response {
    if let Some(page) = crate::console::serve(&state.config.console, &method, &uri).await {
        return page;
    }
    ApiError::not_found(format!("no such endpoint: {method} {}", uri.path())).into_response()
}

/// The fallback of a route's method router, which adds `Allow` itself.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut r = ApiError::invalid(format!("method {method} is not allowed on {}", uri.path()))
        .into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// A 405 with the `Allow` header (RFC 9110, 15.5.6) listing `allowed`, for
/// a method that reaches a route taking any (the triggers) but is not one
/// the route serves.
pub fn method_not_allowed_of(method: &Method, uri: &Uri, allowed: &[Method]) -> Response {
    let mut r = ApiError::invalid(format!("method {method} is not allowed on {}", uri.path()))
        .into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = axum::http::HeaderValue::from_str(&allow) {
        r.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    r
}

/// A panic in a handler is a bug: answer 500 in the usual shape.
pub fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    ApiError(IgnisError::new(
        ErrorKind::Internal,
        format!("handler panicked: {detail}"),
    ))
    .into_response()
}
