//! Messages of the sandbox channel (docs/protocol.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `init`: load a function into a stem cell.
#[derive(Debug, Clone, Serialize)]
pub struct Init<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: &'a str,
    pub version: u64,
    pub handler: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub code_zip_b64: String,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub sandbox_id: &'a str,
    pub now_ms: i64,
}

/// One call inside an `invoke` message.
#[derive(Debug, Clone, Serialize)]
pub struct InvokeItem<'a> {
    pub id: &'a str,
    pub event: &'a RawValue,
    /// Absolute Unix time in ms by which the call must end, if it started
    /// when the message was written; informational for the handler.
    pub deadline_ms: i64,
    /// The call's time limit. A bootstrap running a batch one call after
    /// another counts it from the call's own start.
    pub timeout_ms: u64,
}

/// `invoke`: run a batch of calls.
#[derive(Debug, Clone, Serialize)]
pub struct Invoke<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub items: Vec<InvokeItem<'a>>,
    pub concurrent: bool,
}

/// An error reported by the bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub stack: Option<String>,
}

/// Any message from the sandbox. One flat shape rather than a tagged enum so
/// that `value` can stay raw JSON (it is passed to the caller unparsed).
#[derive(Debug, Deserialize)]
pub struct Incoming {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub logs_truncated: bool,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
    /// `exited`: the bootstrap's exit status.
    #[serde(default)]
    pub code: Option<i64>,
    /// `exited`: whether the guest kernel's OOM killer struck.
    #[serde(default)]
    pub oom: Option<bool>,
}

impl Incoming {
    /// Why the sandbox is going away, from an `exited` message.
    pub fn exit_reason(&self) -> crate::ExitReason {
        if self.oom == Some(true) {
            crate::ExitReason::OutOfMemory
        } else {
            crate::ExitReason::Crashed {
                exit_code: self.code,
            }
        }
    }
}

pub const READY: &str = "ready";
pub const INIT_ERROR: &str = "init_error";
pub const RESULT: &str = "result";
pub const STATS: &str = "stats";
/// Sent by a microVM's init after the bootstrap exited: `{"type":"exited",
/// "code":N,"oom":bool}`.
pub const EXITED: &str = "exited";
