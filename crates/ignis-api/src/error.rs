//! [`ApiError`]: the one place where errors become HTTP responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ignis_core::{ErrorKind, IgnisError};
use ignis_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error body: `{"error": {"type": "...", "message": "..."}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of the error types of DESIGN.md (`InvalidRequest`, `NotFound`, `Timeout`, ...).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: ErrorKind,
    pub message: String,
    /// Stack trace of a handler error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub IgnisError);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self(IgnisError::invalid(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self(IgnisError::not_found(message))
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }
}

impl From<IgnisError> for ApiError {
    fn from(e: IgnisError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::NameTaken(_) | StoreError::RouteTaken(_) => ErrorKind::Conflict,
            StoreError::VersionMismatch { .. } => ErrorKind::Conflict,
            StoreError::NotFound(_) | StoreError::NamespaceNotFound(_) => ErrorKind::NotFound,
            StoreError::NamespaceTaken(_) | StoreError::NamespaceNotEmpty(_) => ErrorKind::Conflict,
            StoreError::VersionNotFound { .. }
            | StoreError::AliasNotFound { .. }
            | StoreError::EventNotFound(_) => ErrorKind::NotFound,
            StoreError::NotPublished { .. } => ErrorKind::InvalidRequest,
            StoreError::AliasTaken { .. } | StoreError::InUse(_) => ErrorKind::Conflict,
            StoreError::QueueFull(_) => ErrorKind::Throttled,
            StoreError::DiskFull { .. } => ErrorKind::InsufficientStorage,
            StoreError::BlobMissing(_)
            | StoreError::Open(_)
            | StoreError::Sqlite(_)
            | StoreError::Migration(_)
            | StoreError::Io(_)
            | StoreError::Corrupt(_)
            | StoreError::Join(_) => ErrorKind::Internal,
        };
        let mut err = IgnisError::new(kind, e.to_string());
        if kind == ErrorKind::Throttled {
            err.retry_after_s = Some(1);
        }
        Self(err)
    }
}

/// A call's typed error as the caller sees it: its kind picks the status.
impl From<ignis_engine::CallError> for ApiError {
    fn from(e: ignis_engine::CallError) -> Self {
        Self(IgnisError {
            kind: e.kind(),
            message: e.to_string(),
            stack: e.stack().map(str::to_string),
            retry_after_s: e.retry_after_s(),
        })
    }
}

impl From<ignis_package::PackageError> for ApiError {
    fn from(e: ignis_package::PackageError) -> Self {
        let kind = if e.is_size_limit() {
            ErrorKind::PayloadTooLarge
        } else {
            ErrorKind::InvalidRequest
        };
        Self(IgnisError::new(kind, e.to_string()))
    }
}

/// The status code of each error type (DESIGN.md, "Status codes").
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::FunctionError
        | ErrorKind::InvalidResult
        | ErrorKind::ResponseTooLarge
        | ErrorKind::OutOfMemory
        | ErrorKind::SandboxCrashed
        | ErrorKind::InitError => StatusCode::BAD_GATEWAY,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::BackendUnavailable | ErrorKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.kind);
        let message = if e.kind == ErrorKind::Internal {
            // The cause is logged once, here; the client learns nothing internal.
            tracing::error!(error = %e.message, "internal error");
            "internal error; the cause is in the server log".to_string()
        } else {
            e.message
        };
        let body = ErrorBody {
            error: ErrorDetail {
                kind: e.kind,
                message,
                stack: e.stack,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if e.kind == ErrorKind::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ignis\""),
            );
        }
        if let Some(s) = e.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        response
    }
}
