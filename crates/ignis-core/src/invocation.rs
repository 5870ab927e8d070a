//! The record kept for every invocation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{BackendKind, ErrorKind};

/// How an invocation arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `POST /api/v1/functions/{name}/invoke`
    Api,
    /// An HTTP trigger route under `/fn/`.
    Http,
    /// An asynchronous invocation, run from the durable queue.
    Async,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Http => "http",
            Trigger::Async => "async",
        }
    }
}

/// Where the sandbox that served a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartKind {
    /// A new sandbox was booted for this call.
    Cold,
    /// A pre-booted generic sandbox was initialized with the function's code.
    Stem,
    /// An idle, initialized sandbox was reused.
    Warm,
}

impl StartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::Stem => "stem",
            StartKind::Warm => "warm",
        }
    }
}

/// Outcome of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    Success,
    Error,
    Timeout,
    Throttled,
}

impl InvocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Success => "success",
            InvocationStatus::Error => "error",
            InvocationStatus::Timeout => "timeout",
            InvocationStatus::Throttled => "throttled",
        }
    }

    pub fn from_error(kind: Option<ErrorKind>) -> Self {
        match kind {
            None => InvocationStatus::Success,
            Some(ErrorKind::Timeout) => InvocationStatus::Timeout,
            Some(ErrorKind::Throttled) => InvocationStatus::Throttled,
            Some(_) => InvocationStatus::Error,
        }
    }
}

/// One invocation, as stored and listed by `GET /functions/{name}/invocations`.
/// Durations are milliseconds as floating point numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvocationRecord {
    pub id: String,
    /// The function's namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub function: String,
    pub version: u64,
    pub backend: BackendKind,
    pub trigger: Trigger,
    /// Unix time in milliseconds when the call arrived.
    pub started_at_ms: i64,
    /// Time spent queued before a sandbox took the call.
    pub queue_ms: f64,
    /// Time spent booting and initializing a sandbox (cold and stem starts).
    pub init_ms: Option<f64>,
    /// Handler execution, from the invoke being written to the result read.
    pub exec_ms: f64,
    /// From arrival to answer.
    pub total_ms: f64,
    pub start: Option<StartKind>,
    /// Number of calls sent to the sandbox in the same `invoke` message.
    pub batch_size: u32,
    pub status: InvocationStatus,
    pub error_type: Option<ErrorKind>,
    pub error_message: Option<String>,
    /// The handler's stack trace, for a `FunctionError` or `InitError`.
    #[serde(default)]
    pub error_stack: Option<String>,
    pub response_bytes: u64,
    /// Peak memory of the sandbox during the call, where the backend can tell.
    pub peak_memory_bytes: Option<u64>,
    /// CPU time of the sandbox during the call, where the backend can tell.
    pub cpu_ms: Option<f64>,
    pub stdout: String,
    pub stderr: String,
    pub logs_truncated: bool,
    pub sandbox_id: Option<String>,
}

fn default_namespace() -> String {
    crate::function::DEFAULT_NAMESPACE.to_string()
}

impl InvocationRecord {
    /// A successful warm API call of `function` in the default namespace
    /// that took `total_ms` (all of it in the handler), with nothing else
    /// known: the base that tests change the fields they look at from.
    pub fn success(function: &str, id: &str, started_at_ms: i64, total_ms: f64) -> Self {
        Self {
            id: id.into(),
            namespace: default_namespace(),
            function: function.into(),
            version: 1,
            backend: BackendKind::Docker,
            trigger: Trigger::Api,
            started_at_ms,
            queue_ms: 0.0,
            init_ms: None,
            exec_ms: total_ms,
            total_ms,
            start: Some(StartKind::Warm),
            batch_size: 1,
            status: InvocationStatus::Success,
            error_type: None,
            error_message: None,
            error_stack: None,
            response_bytes: 0,
            peak_memory_bytes: None,
            cpu_ms: None,
            stdout: String::new(),
            stderr: String::new(),
            logs_truncated: false,
            sandbox_id: None,
        }
    }

    /// `function` or `namespace/function`: the metrics label.
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        crate::function::qualified(&self.namespace, &self.function)
    }
}

/// Where an asynchronous invocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AsyncStatus {
    /// Accepted (stored), waiting for its first attempt.
    Queued,
    /// An attempt runs.
    Running,
    /// An attempt failed; the next one is due at `not_before_ms`.
    Failed,
    /// An attempt succeeded (terminal).
    Succeeded,
    /// Every attempt failed, or it waited past its maximum age (terminal;
    /// a dead letter, which can be retried).
    Dead,
}

impl AsyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AsyncStatus::Queued => "queued",
            AsyncStatus::Running => "running",
            AsyncStatus::Failed => "failed",
            AsyncStatus::Succeeded => "succeeded",
            AsyncStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => AsyncStatus::Queued,
            "running" => AsyncStatus::Running,
            "failed" => AsyncStatus::Failed,
            "succeeded" => AsyncStatus::Succeeded,
            "dead" => AsyncStatus::Dead,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, AsyncStatus::Succeeded | AsyncStatus::Dead)
    }
}

/// An asynchronous invocation, as `GET /api/v1/invocations/{id}` shows it:
/// stored when accepted, then each attempt's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AsyncEvent {
    /// `evt-...`.
    pub id: String,
    pub namespace: String,
    pub function: String,
    /// The alias or version it was sent to (`None`: the latest).
    pub qualifier: Option<String>,
    /// The event, as JSON text.
    #[schema(value_type = Object)]
    pub event: Box<serde_json::value::RawValue>,
    pub status: AsyncStatus,
    /// Attempts run (or running).
    pub attempts: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    pub enqueued_at_ms: i64,
    /// It goes to the dead letters if not done by then.
    pub expires_at_ms: i64,
    /// The next attempt is not before this.
    pub not_before_ms: i64,
    /// The version the last attempt ran.
    pub version: Option<u64>,
    /// The last attempt's result (succeeded), as JSON.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<serde_json::value::RawValue>>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// The invocation record of the last attempt.
    pub last_invocation_id: Option<String>,
    /// When the last attempt started and when it ended.
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Why it is dead: `retries exhausted`, `max age`, `function deleted`, or
    /// what was missing when it was to run (a deleted function or alias).
    pub dead_reason: Option<String>,
}
