//! Messages of the sandbox channel (docs/protocol.md), typed: one enum for
//! what the host sends ([`HostMessage`]), one for what it receives
//! ([`GuestMessage`], with an `Unknown` catch-all). Everything that speaks
//! the protocol (the engine, the microVM backend, the bench, the tests)
//! uses these; nobody writes protocol JSON by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ExitReason;

/// Largest result a handler may return: 6 MiB, as AWS Lambda.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Most captured output per stream and call, bytes of UTF-8.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// The limits a bootstrap applies, sent in `init`: set here, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_response_bytes: usize,
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_log_bytes: MAX_LOG_BYTES,
        }
    }
}

/// `init`: load a function into a stem cell.
#[derive(Debug, Clone, Serialize)]
pub struct Init<'a> {
    pub function: &'a str,
    pub version: u64,
    pub handler: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub code_zip_b64: String,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub sandbox_id: &'a str,
    pub now_ms: i64,
    pub limits: Limits,
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
    pub items: Vec<InvokeItem<'a>>,
    pub concurrent: bool,
}

/// `restore`: the first message to a microVM clone restored from a
/// snapshot, giving it its own identity.
#[derive(Debug, Clone, Serialize)]
pub struct Restore<'a> {
    /// 32 bytes of host entropy, hex.
    pub seed: String,
    pub now_ms: i64,
    pub sandbox_id: &'a str,
}

/// What the host sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMessage<'a> {
    Restore(Restore<'a>),
    Init(Init<'a>),
    Invoke(Invoke<'a>),
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

/// What a call's handler printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logs {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

/// One `result`: the outcome of one invoke item.
#[derive(Debug)]
pub struct CallResult {
    pub id: String,
    /// The value as raw JSON (passed to the caller unparsed), or the error.
    pub outcome: Result<Box<RawValue>, ErrorBody>,
    pub logs: Logs,
    /// The handler's wall time as the sandbox saw it.
    pub duration_ms: Option<f64>,
}

/// What the host receives.
#[derive(Debug)]
pub enum GuestMessage {
    /// A microVM's bootstrap is up (its first line).
    Booted,
    /// A restored clone took its identity.
    Restored {
        kernel_reseeded: bool,
    },
    /// `init` worked.
    Ready {
        logs: Logs,
    },
    /// `init` failed: the handler could not be loaded.
    InitError {
        error: ErrorBody,
        logs: Logs,
    },
    Result(CallResult),
    /// Resource use, where the guest can tell.
    Stats {
        rss_bytes: Option<u64>,
    },
    /// The bootstrap exited (a microVM's init says so before powering off).
    Exited(ExitReason),
    /// The bootstrap refused a message.
    Error {
        message: String,
    },
    /// A type this host does not know (a newer bootstrap): ignored.
    Unknown {
        kind: String,
    },
}

/// The flat shape every message is read into first: one parse, and `value`
/// stays raw JSON (serde cannot keep a raw value inside a tagged enum).
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    value: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    logs_truncated: bool,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    rss_bytes: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    kernel_reseeded: Option<bool>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    oom: Option<bool>,
}

/// Why a line is not a message of the protocol.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl GuestMessage {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let w: Wire = serde_json::from_slice(line).map_err(|e| {
            let preview = String::from_utf8_lossy(&line[..line.len().min(200)]);
            ParseError(format!("{e}: {preview}"))
        })?;
        let logs = Logs {
            stdout: w.stdout,
            stderr: w.stderr,
            truncated: w.logs_truncated,
        };
        Ok(match w.kind.as_str() {
            "booted" => GuestMessage::Booted,
            "restored" => GuestMessage::Restored {
                kernel_reseeded: w.kernel_reseeded == Some(true),
            },
            "ready" => GuestMessage::Ready { logs },
            "init_error" => GuestMessage::InitError {
                error: w.error.unwrap_or_default(),
                logs,
            },
            "result" => {
                let id =
                    w.id.ok_or_else(|| ParseError("a result without an id".into()))?;
                let outcome = if w.ok == Some(true) {
                    Ok(match w.value {
                        Some(v) => v,
                        None => RawValue::from_string("null".into())
                            .map_err(|e| ParseError(e.to_string()))?,
                    })
                } else {
                    Err(w.error.unwrap_or_else(|| ErrorBody {
                        kind: "FunctionError".into(),
                        message: "the handler failed without saying why".into(),
                        stack: None,
                    }))
                };
                GuestMessage::Result(CallResult {
                    id,
                    outcome,
                    logs,
                    duration_ms: w.duration_ms,
                })
            }
            "stats" => GuestMessage::Stats {
                rss_bytes: w.rss_bytes,
            },
            "exited" => GuestMessage::Exited(if w.oom == Some(true) {
                ExitReason::OutOfMemory
            } else {
                ExitReason::Crashed { exit_code: w.code }
            }),
            "error" => GuestMessage::Error {
                message: w.message.unwrap_or_default(),
            },
            _ => GuestMessage::Unknown { kind: w.kind },
        })
    }
}

impl HostMessage<'_> {
    /// The message as one line of JSON (without the newline).
    pub fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_messages_carry_their_type() {
        let env = BTreeMap::from([("K".to_string(), "V".to_string())]);
        let init = HostMessage::Init(Init {
            function: "f",
            version: 3,
            handler: "main.handler",
            env: &env,
            code_zip_b64: "UEs=".into(),
            memory_mb: 128,
            timeout_ms: 3000,
            sandbox_id: "sb-1",
            now_ms: 5,
            limits: Limits::default(),
        });
        let v: serde_json::Value = serde_json::from_slice(&init.to_line().unwrap()).unwrap();
        assert_eq!(v["type"], "init");
        assert_eq!(v["env"]["K"], "V");
        assert_eq!(v["limits"]["max_response_bytes"], 6291456);
        assert_eq!(v["limits"]["max_log_bytes"], 65536);
        let event = RawValue::from_string("{\"a\":1}".into()).unwrap();
        let invoke = HostMessage::Invoke(Invoke {
            items: vec![InvokeItem {
                id: "inv-1",
                event: &event,
                deadline_ms: 9,
                timeout_ms: 100,
            }],
            concurrent: false,
        });
        assert_eq!(
            String::from_utf8(invoke.to_line().unwrap()).unwrap(),
            r#"{"type":"invoke","items":[{"id":"inv-1","event":{"a":1},"deadline_ms":9,"timeout_ms":100}],"concurrent":false}"#
        );
        let restore = HostMessage::Restore(Restore {
            seed: "00".into(),
            now_ms: 1,
            sandbox_id: "sb",
        });
        let v: serde_json::Value = serde_json::from_slice(&restore.to_line().unwrap()).unwrap();
        assert_eq!(v["type"], "restore");
    }

    #[test]
    fn guest_messages_parse_into_their_variants() {
        let r = GuestMessage::parse(
            br#"{"type":"result","id":"inv-1","ok":true,"value":{"x": [1, 2]},"stdout":"hi","stderr":"","logs_truncated":false,"duration_ms":1.5}"#,
        )
        .unwrap();
        let GuestMessage::Result(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.id, "inv-1");
        // The value is passed through as it came, unparsed.
        assert_eq!(r.outcome.unwrap().get(), r#"{"x": [1, 2]}"#);
        assert_eq!(r.logs.stdout, "hi");
        let e = GuestMessage::parse(
            br#"{"type":"result","id":"inv-2","ok":false,"error":{"type":"FunctionError","message":"ValueError: x","stack":"tb"}}"#,
        )
        .unwrap();
        let GuestMessage::Result(e) = e else { panic!() };
        assert_eq!(e.outcome.unwrap_err().stack.as_deref(), Some("tb"));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"ready","stdout":"imported"}"#).unwrap(),
            GuestMessage::Ready { logs } if logs.stdout == "imported"
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"init_error","error":{"type":"ImportError","message":"m"}}"#).unwrap(),
            GuestMessage::InitError { error, .. } if error.kind == "ImportError"
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"booted"}"#).unwrap(),
            GuestMessage::Booted
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"restored","kernel_reseeded":true}"#).unwrap(),
            GuestMessage::Restored {
                kernel_reseeded: true
            }
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"exited","code":3,"oom":false}"#).unwrap(),
            GuestMessage::Exited(ExitReason::Crashed { exit_code: Some(3) })
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"exited","code":137,"oom":true}"#).unwrap(),
            GuestMessage::Exited(ExitReason::OutOfMemory)
        ));
        assert!(matches!(
            GuestMessage::parse(br#"{"type":"telemetry","x":1}"#).unwrap(),
            GuestMessage::Unknown { kind } if kind == "telemetry"
        ));
        assert!(GuestMessage::parse(b"not json").is_err());
        assert!(GuestMessage::parse(br#"{"type":"result","ok":true}"#).is_err());
    }
}
