//! Why a call did not produce a result, typed from where it happened to
//! the API, which maps [`CallError::kind`] to a status in one place.

use std::sync::Arc;
use std::time::Duration;

use ignis_core::{BackendKind, ErrorKind};
use ignis_sandbox::{ExitReason, SandboxError};
use ignis_store::StoreError;

/// What the handler did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionFailure {
    /// It raised or rejected.
    Raised,
    /// It returned something that is not JSON.
    InvalidResult,
    /// Its result is over the size limit.
    ResponseTooLarge,
}

/// When a sandbox died under a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Init,
    Run,
}

impl Phase {
    fn during(self) -> &'static str {
        match self {
            Phase::Init => "during initialization",
            Phase::Run => "while running the function",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{message}")]
    Function {
        failure: FunctionFailure,
        message: String,
        stack: Option<String>,
    },
    #[error("could not load handler `{handler}`: {kind}: {message}")]
    Init {
        handler: String,
        kind: String,
        message: String,
        stack: Option<String>,
    },
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("initialization timed out after {} ms", .0.as_millis())]
    InitTimeout(Duration),
    #[error("{}", died(.reason, *.phase))]
    Died { reason: ExitReason, phase: Phase },
    #[error("could not start a sandbox: {0}")]
    Start(Arc<SandboxError>),
    #[error("{message}")]
    Throttled { message: String, retry_after_s: u64 },
    #[error("the {backend} backend is failing; next attempt in {:.1} s", .retry_after.as_secs_f64())]
    BackedOff {
        backend: BackendKind,
        retry_after: Duration,
    },
    #[error("the {0} backend is not enabled on this server")]
    NoBackend(BackendKind),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("function `{0}` was deleted")]
    Deleted(String),
    #[error("the sandbox broke the channel protocol: {0}")]
    Protocol(String),
    #[error("the sandbox sent a message over the channel's size limit")]
    MessageTooLarge,
    #[error("the handler returned an invalid HTTP response: {0}")]
    InvalidHttpResponse(String),
    #[error("reading the function's code: {0}")]
    Code(Arc<StoreError>),
    #[error("the call was lost by the engine")]
    Lost,
}

fn died(reason: &ExitReason, phase: Phase) -> String {
    let during = phase.during();
    match reason {
        ExitReason::OutOfMemory => {
            format!("the sandbox ran out of memory and was killed {during}")
        }
        ExitReason::Crashed {
            exit_code: Some(code),
        } => format!("the sandbox exited with code {code} {during}"),
        ExitReason::Crashed { exit_code: None } => format!("the sandbox died {during}"),
        ExitReason::Killed => format!("the sandbox was killed {during}"),
    }
}

impl CallError {
    /// The error type the caller sees: every variant maps, no default.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CallError::Function { failure, .. } => match failure {
                FunctionFailure::Raised => ErrorKind::FunctionError,
                FunctionFailure::InvalidResult => ErrorKind::InvalidResult,
                FunctionFailure::ResponseTooLarge => ErrorKind::ResponseTooLarge,
            },
            CallError::Init { .. } => ErrorKind::InitError,
            CallError::Timeout(_) | CallError::InitTimeout(_) => ErrorKind::Timeout,
            CallError::Died { reason, .. } => exit_kind(reason),
            CallError::Start(e) => match &**e {
                SandboxError::Unavailable { .. }
                | SandboxError::Backend(_)
                | SandboxError::Io(_) => ErrorKind::BackendUnavailable,
                SandboxError::BootTimeout(_) => ErrorKind::Timeout,
                SandboxError::BootFailed(_) => ErrorKind::SandboxCrashed,
                SandboxError::Exited(reason) => exit_kind(reason),
            },
            CallError::Throttled { .. } => ErrorKind::Throttled,
            CallError::BackedOff { .. } | CallError::NoBackend(_) => ErrorKind::BackendUnavailable,
            CallError::ShuttingDown => ErrorKind::ShuttingDown,
            CallError::Deleted(_) => ErrorKind::NotFound,
            CallError::Protocol(_) => ErrorKind::SandboxCrashed,
            CallError::MessageTooLarge => ErrorKind::ResponseTooLarge,
            CallError::InvalidHttpResponse(_) => ErrorKind::InvalidResult,
            CallError::Code(_) | CallError::Lost => ErrorKind::Internal,
        }
    }

    /// The handler's stack trace, where there is one.
    pub fn stack(&self) -> Option<&str> {
        match self {
            CallError::Function { stack, .. } | CallError::Init { stack, .. } => stack.as_deref(),
            _ => None,
        }
    }

    /// Seconds after which a refused caller may retry.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            CallError::Throttled { retry_after_s, .. } => Some(*retry_after_s),
            CallError::BackedOff { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        }
    }
}

fn exit_kind(reason: &ExitReason) -> ErrorKind {
    match reason {
        ExitReason::OutOfMemory => ErrorKind::OutOfMemory,
        ExitReason::Crashed { .. } | ExitReason::Killed => ErrorKind::SandboxCrashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_failures_say_what_failed() {
        let start = |e| CallError::Start(Arc::new(e)).kind();
        assert_eq!(
            start(SandboxError::Exited(ExitReason::OutOfMemory)),
            ErrorKind::OutOfMemory
        );
        assert_eq!(
            start(SandboxError::Exited(ExitReason::Crashed {
                exit_code: Some(1)
            })),
            ErrorKind::SandboxCrashed
        );
        assert_eq!(
            start(SandboxError::BootTimeout(Duration::from_secs(30))),
            ErrorKind::Timeout
        );
        assert_eq!(
            start(SandboxError::Backend("engine down".into())),
            ErrorKind::BackendUnavailable
        );
        let died = CallError::Died {
            reason: ExitReason::Crashed { exit_code: Some(3) },
            phase: Phase::Run,
        };
        assert_eq!(died.kind(), ErrorKind::SandboxCrashed);
        assert_eq!(
            died.to_string(),
            "the sandbox exited with code 3 while running the function"
        );
        assert_eq!(CallError::Deleted("f".into()).kind(), ErrorKind::NotFound);
    }
}
