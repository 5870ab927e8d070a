//! Extractors whose rejections are typed JSON errors.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
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
