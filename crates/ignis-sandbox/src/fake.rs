//! An in-process backend for engine and API tests. It speaks the real
//! channel protocol over an in-memory pipe; handlers are scripted by the
//! event:
//!
//! - `{"sleep_ms": N}` sleeps, then echoes the event;
//! - `{"raise": "msg"}` fails with `FunctionError`;
//! - `{"crash": true}` / `{"oom": true}` kill the sandbox (exit reason
//!   `Crashed` / `OutOfMemory`);
//! - `{"return": V}` returns `V`;
//! - anything else is echoed back.
//!
//! For an HTTP trigger's event (API Gateway's shape, with `requestContext`),
//! the script is the request's body parsed as JSON, when it is an object.
//!
//! A handler named `missing.handler` fails `init`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use ignis_core::BackendKind;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;

use crate::{
    Backend, BackendStatus, Booted, Channel, ExitReason, ResourceUsage, SandboxError,
    SandboxHandle, SandboxSpec,
};

/// Knobs and counters shared by a fake backend and its sandboxes.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Simulated boot time in milliseconds.
    pub boot_delay_ms: AtomicU64,
    /// Simulated removal time in milliseconds (Docker takes tens).
    pub destroy_delay_ms: AtomicU64,
    /// The next N boots fail (the backend failing).
    pub failing_boots: AtomicUsize,
    /// The next boot's bootstrap dies at start, for this reason (e.g. out
    /// of memory), as opposed to the backend failing.
    pub boot_exit: Mutex<Option<ExitReason>>,
    /// Capacity of the death notifications (0: 64); a small one lets a
    /// test make the engine's listener lag.
    pub death_capacity: AtomicUsize,
    pub boots: AtomicUsize,
    pub destroyed: AtomicUsize,
    pub alive: AtomicUsize,
    sandboxes: Mutex<HashMap<String, Weak<FakeSandbox>>>,
    deaths: Mutex<Option<tokio::sync::broadcast::Sender<String>>>,
}

impl FakeState {
    /// Ids of the sandboxes alive now (neither destroyed nor dead).
    pub fn alive_ids(&self) -> Vec<String> {
        lock(&self.sandboxes)
            .iter()
            .filter(|(_, w)| {
                w.upgrade().is_some_and(|s| {
                    !s.destroyed.load(Ordering::SeqCst) && lock(&s.reason).is_none()
                })
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[derive(Clone, Default)]
pub struct FakeBackend {
    pub state: Arc<FakeState>,
    kind: Option<BackendKind>,
}

impl FakeBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Kills a sandbox "from outside", as `docker kill` would, and reports
    /// its death.
    pub fn crash(&self, id: &str) {
        let sandbox = lock(&self.state.sandboxes).get(id).and_then(Weak::upgrade);
        if let Some(sb) = sandbox {
            lock(&sb.reason).get_or_insert(ExitReason::Crashed {
                exit_code: Some(137),
            });
            if let Some(task) = lock(&sb.task).take() {
                task.abort();
            }
        }
        if let Some(tx) = lock(&self.state.deaths).as_ref() {
            let _ = tx.send(id.to_string());
        }
    }

    /// A fake standing in for another backend kind (e.g. `microvm`).
    pub fn with_kind(kind: BackendKind) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        self.kind.unwrap_or(BackendKind::Docker)
    }

    async fn status(&self) -> BackendStatus {
        BackendStatus {
            kind: self.kind(),
            available: true,
            detail: "fake in-process backend".into(),
            accelerator: None,
        }
    }

    async fn boot(&self, spec: &SandboxSpec) -> Result<Booted, SandboxError> {
        self.state.boots.fetch_add(1, Ordering::SeqCst);
        let delay = self.state.boot_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if let Some(reason) = lock(&self.state.boot_exit).take() {
            return Err(SandboxError::Exited(reason));
        }
        let failing = self.state.failing_boots.load(Ordering::SeqCst);
        if failing > 0 {
            self.state
                .failing_boots
                .store(failing - 1, Ordering::SeqCst);
            return Err(SandboxError::Backend("injected boot failure".into()));
        }
        let (host, guest) = tokio::io::duplex(1 << 20);
        let (host_r, host_w) = tokio::io::split(host);
        let reason = Arc::new(Mutex::new(None));
        let task = tokio::spawn(serve(guest, reason.clone()));
        self.state.alive.fetch_add(1, Ordering::SeqCst);
        let handle = Arc::new(FakeSandbox {
            id: spec.id.clone(),
            task: Mutex::new(Some(task)),
            reason,
            state: self.state.clone(),
            destroyed: std::sync::atomic::AtomicBool::new(false),
        });
        lock(&self.state.sandboxes).insert(spec.id.clone(), Arc::downgrade(&handle));
        Ok(Booted {
            handle,
            channel: Channel::new(host_r, host_w),
        })
    }

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        Ok(0)
    }

    async fn alive(&self) -> Result<std::collections::HashSet<String>, SandboxError> {
        Ok(self.state.alive_ids().into_iter().collect())
    }

    fn deaths(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        let mut tx = lock(&self.state.deaths);
        Some(
            tx.get_or_insert_with(|| {
                let cap = self.state.death_capacity.load(Ordering::SeqCst);
                tokio::sync::broadcast::channel(if cap == 0 { 64 } else { cap }).0
            })
            .subscribe(),
        )
    }
}

struct FakeSandbox {
    id: String,
    task: Mutex<Option<JoinHandle<()>>>,
    reason: Arc<Mutex<Option<ExitReason>>>,
    state: Arc<FakeState>,
    destroyed: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl SandboxHandle for FakeSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    async fn kill(&self) {
        lock(&self.reason).get_or_insert(ExitReason::Killed);
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }

    async fn destroy(&self) {
        self.kill().await;
        let delay = self.state.destroy_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if !self.destroyed.swap(true, Ordering::SeqCst) {
            self.state.destroyed.fetch_add(1, Ordering::SeqCst);
            self.state.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn exit_reason(&self) -> ExitReason {
        lock(&self.reason).unwrap_or(ExitReason::Crashed { exit_code: None })
    }

    async fn usage(&self) -> Option<ResourceUsage> {
        Some(ResourceUsage {
            memory_bytes: 1 << 20,
            peak_memory_bytes: Some(1 << 20),
            cpu_time_ms: 0.0,
        })
    }
}

async fn serve(stream: tokio::io::DuplexStream, reason: Arc<Mutex<Option<ExitReason>>>) {
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            return;
        };
        let replies = match msg["type"].as_str() {
            Some("init") if msg["handler"] == "missing.handler" => vec![json!({
                "type": "init_error",
                "error": {"type": "HandlerNotFound", "message": "no handler `handler` in missing"}
            })],
            Some("init") => vec![json!({"type": "ready"})],
            Some("invoke") => {
                for item in msg["items"].as_array().cloned().unwrap_or_default() {
                    let script = item["event"]["requestContext"]
                        .is_object()
                        .then(|| item["event"]["body"].as_str())
                        .flatten()
                        .and_then(|b| serde_json::from_str::<Value>(b).ok())
                        .filter(Value::is_object);
                    let event = script.as_ref().unwrap_or(&item["event"]);
                    if let Some(ms) = event["sleep_ms"].as_u64() {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if event["crash"] == true || event["oom"] == true {
                        let why = if event["oom"] == true {
                            ExitReason::OutOfMemory
                        } else {
                            ExitReason::Crashed { exit_code: Some(1) }
                        };
                        lock(&reason).get_or_insert(why);
                        return;
                    }
                    let reply = match event["raise"].as_str() {
                        Some(m) => json!({"type": "result", "id": item["id"], "ok": false,
                            "error": {"type": "FunctionError", "message": format!("Error: {m}"), "stack": "at fake"},
                            "stdout": "", "stderr": "", "logs_truncated": false}),
                        None => json!({"type": "result", "id": item["id"], "ok": true,
                            "value": event.get("return").unwrap_or(&item["event"]),
                            "stdout": "", "stderr": "", "logs_truncated": false}),
                    };
                    // Results stream back one by one, as the real bootstraps do.
                    let mut bytes = reply.to_string().into_bytes();
                    bytes.push(b'\n');
                    if w.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Vec::new()
            }
            _ => vec![json!({"type": "error", "message": "unknown message"})],
        };
        for reply in replies {
            let mut bytes = reply.to_string().into_bytes();
            bytes.push(b'\n');
            if w.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}
