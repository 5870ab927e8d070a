//! The error vocabulary of ignis. Every failure a user can see has an
//! [`ErrorKind`]; the API crate is the one place that maps kinds to status
//! codes (see DESIGN.md, "Status codes of an invocation").

use serde::{Deserialize, Serialize};

/// What went wrong, as the user sees it. Serialized as the `type` field of
/// every error body: `{"error": {"type": "...", "message": "..."}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ErrorKind {
    /// Malformed request, failed validation, bad code archive.
    InvalidRequest,
    /// Request body or code archive over its size limit.
    PayloadTooLarge,
    /// Unknown function or route.
    NotFound,
    /// Name or route already taken.
    Conflict,
    /// The handler raised an exception or rejected.
    FunctionError,
    /// The handler returned a value that cannot be serialized as JSON.
    InvalidResult,
    /// The handler's result exceeds the response size limit (6 MiB).
    ResponseTooLarge,
    /// The handler ran past `timeout_ms`.
    Timeout,
    /// The sandbox was killed for exceeding `memory_mb`.
    OutOfMemory,
    /// The sandbox died (bootstrap exit, segfault, killed from outside).
    SandboxCrashed,
    /// The handler could not be loaded (missing file or function, import error).
    InitError,
    /// Queue full, concurrency limit or capacity bound reached.
    Throttled,
    /// No backend can run the function (engine not reachable, image missing).
    BackendUnavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// The data directory's disk is full: nothing was stored.
    InsufficientStorage,
    /// Missing or bad credentials.
    Unauthorized,
    /// Credentials valid, action not allowed.
    Forbidden,
    /// A bug or an environment failure; details are in the server log only.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::NotFound => "NotFound",
            Self::Conflict => "Conflict",
            Self::FunctionError => "FunctionError",
            Self::InvalidResult => "InvalidResult",
            Self::ResponseTooLarge => "ResponseTooLarge",
            Self::Timeout => "Timeout",
            Self::OutOfMemory => "OutOfMemory",
            Self::SandboxCrashed => "SandboxCrashed",
            Self::InitError => "InitError",
            Self::Throttled => "Throttled",
            Self::BackendUnavailable => "BackendUnavailable",
            Self::ShuttingDown => "ShuttingDown",
            Self::InsufficientStorage => "InsufficientStorage",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::Internal => "Internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "InvalidRequest" => Self::InvalidRequest,
            "PayloadTooLarge" => Self::PayloadTooLarge,
            "NotFound" => Self::NotFound,
            "Conflict" => Self::Conflict,
            "FunctionError" => Self::FunctionError,
            "InvalidResult" => Self::InvalidResult,
            "ResponseTooLarge" => Self::ResponseTooLarge,
            "Timeout" => Self::Timeout,
            "OutOfMemory" => Self::OutOfMemory,
            "SandboxCrashed" => Self::SandboxCrashed,
            "InitError" => Self::InitError,
            "Throttled" => Self::Throttled,
            "BackendUnavailable" => Self::BackendUnavailable,
            "ShuttingDown" => Self::ShuttingDown,
            "InsufficientStorage" => Self::InsufficientStorage,
            "Unauthorized" => Self::Unauthorized,
            "Forbidden" => Self::Forbidden,
            "Internal" => Self::Internal,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a kind and a message meant for the user. Libraries return
/// their own typed errors and convert into this at the engine/API boundary.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct IgnisError {
    pub kind: ErrorKind,
    pub message: String,
    /// Stack trace of a handler error, when there is one.
    pub stack: Option<String>,
    /// Seconds after which a throttled caller may retry.
    pub retry_after_s: Option<u64>,
}

impl IgnisError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            stack: None,
            retry_after_s: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn with_stack(mut self, stack: Option<String>) -> Self {
        self.stack = stack;
        self
    }
}
