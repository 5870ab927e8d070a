//! Matching queued calls with sandboxes: reuse an idle one, or boot a new
//! one within the function's concurrency limit and the memory budget.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

use base64::Engine as _;
use ignis_core::{ErrorKind, Function, IgnisError, StartKind};
use ignis_sandbox::protocol::{self, Init};
use ignis_sandbox::{ExitReason, SandboxSpec};

use crate::state::{Lifecycle, SandboxState};
use crate::{new_id, FnState, Inner, Live, Pending, Sandbox, State, Warm};

impl Inner {
    /// Queues a call and dispatches what can be dispatched.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        function: Arc<Function>,
        pending: Pending,
    ) -> Result<(), IgnisError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(IgnisError::new(
                ErrorKind::ShuttingDown,
                "the server is shutting down",
            ));
        }
        let mut st = self.lock();
        let name = function.name.clone();
        let fs = st.functions.entry(name.clone()).or_insert_with(|| FnState {
            function: function.clone(),
            queue: Default::default(),
            idle: Vec::new(),
            active: 0,
        });
        if function.version > fs.function.version {
            fs.function = function;
            let stale: Vec<Warm> = fs.idle.drain(..).collect();
            for w in stale {
                self.retire(&mut st, w.sandbox, "new version");
            }
        }
        let Some(fs) = st.functions.get_mut(&name) else {
            return Err(IgnisError::internal("function state vanished"));
        };
        if fs.queue.len() >= self.config.queue_capacity {
            return Err(IgnisError {
                retry_after_s: Some(1),
                ..IgnisError::new(
                    ErrorKind::Throttled,
                    format!(
                        "{} calls of `{name}` are already queued",
                        self.config.queue_capacity
                    ),
                )
            });
        }
        fs.queue.push_back(pending);
        self.pump(&mut st, &name);
        Ok(())
    }

    /// Hands queued calls of `name` to idle sandboxes, and boots new ones
    /// while the function's concurrency limit and the memory budget allow.
    pub(crate) fn pump(self: &Arc<Self>, st: &mut State, name: &str) {
        loop {
            let Some(fs) = st.functions.get_mut(name) else {
                return;
            };
            if fs.queue.is_empty() {
                return;
            }
            let batch_max = fs.function.config.batch_max_size.max(1) as usize;
            if let Some(warm) = fs.idle.pop() {
                let batch = take_batch(fs, batch_max);
                fs.active += 1;
                let id = warm.sandbox.id.clone();
                Self::transition(st, &id, SandboxState::Busy);
                let inner = self.clone();
                tokio::spawn(async move {
                    inner.run(warm.sandbox, batch, StartKind::Warm, None).await;
                });
                continue;
            }
            if fs.active >= fs.function.config.max_concurrency as usize {
                return;
            }
            let need = u64::from(fs.function.config.memory_mb);
            if !self.reserve(st, name, need) {
                return;
            }
            let Some(fs) = st.functions.get_mut(name) else {
                return;
            };
            let function = fs.function.clone();
            let batch = take_batch(fs, batch_max);
            fs.active += 1;
            let id = new_id("sb");
            st.live.insert(
                id.clone(),
                Live {
                    life: Lifecycle::new(&id),
                    function: name.to_string(),
                    backend: function.config.backend,
                    memory_mb: need,
                    handle: Arc::new(Unbooted),
                },
            );
            let inner = self.clone();
            tokio::spawn(async move { inner.cold_start(id, function, batch).await });
        }
    }

    /// Reserves `need` MiB of the memory budget, evicting idle sandboxes of
    /// other functions (least recently used first) when that makes room.
    fn reserve(&self, st: &mut State, name: &str, need: u64) -> bool {
        let budget = self.config.memory_budget_mb;
        while st.memory_used_mb + need > budget {
            let victim = st
                .functions
                .iter()
                .filter(|(n, fs)| n.as_str() != name && !fs.idle.is_empty())
                .min_by_key(|(_, fs)| fs.idle[0].last_used)
                .map(|(n, _)| n.clone());
            let Some(victim) = victim else {
                return false;
            };
            let Some(fs) = st.functions.get_mut(&victim) else {
                return false;
            };
            let w = fs.idle.remove(0);
            self.retire(st, w.sandbox, "evicted to make room");
        }
        st.memory_used_mb += need;
        true
    }

    /// Boots and initializes a sandbox for `batch`, then runs it.
    async fn cold_start(self: Arc<Self>, id: String, function: Arc<Function>, batch: Vec<Pending>) {
        let started = Instant::now();
        match self.boot_and_init(&id, &function).await {
            Ok(sandbox) => {
                let init_ms = started.elapsed().as_secs_f64() * 1e3;
                {
                    let mut st = self.lock();
                    Self::transition(&mut st, &id, SandboxState::Idle);
                    Self::transition(&mut st, &id, SandboxState::Busy);
                }
                self.run(sandbox, batch, StartKind::Cold, Some(init_ms))
                    .await;
            }
            Err(err) => {
                tracing::warn!(function = %function.name, sandbox = %id, error = %err.message, "cold start failed");
                let mut st = self.lock();
                self.forget(&mut st, &id);
                if let Some(fs) = st.functions.get_mut(&function.name) {
                    fs.active = fs.active.saturating_sub(1);
                }
                // Everything queued would fail the same way (bad code, no
                // backend): fail it now rather than boot in a loop.
                let mut failed = batch;
                if let Some(fs) = st.functions.get_mut(&function.name) {
                    if fs.function.version == function.version {
                        failed.extend(fs.queue.drain(..));
                    }
                }
                drop(st);
                for p in failed {
                    self.complete_refused(&function, p, err.clone());
                }
                let mut st = self.lock();
                self.pump(&mut st, &function.name);
            }
        }
    }

    async fn boot_and_init(&self, id: &str, function: &Function) -> Result<Sandbox, IgnisError> {
        let config = &function.config;
        let backend = self.backends.get(&config.backend).ok_or_else(|| {
            IgnisError::new(
                ErrorKind::BackendUnavailable,
                format!(
                    "the {} backend is not enabled on this server",
                    config.backend
                ),
            )
        })?;
        let spec = SandboxSpec {
            id: id.to_string(),
            runtime: config.runtime,
            memory_mb: config.memory_mb,
            cpus: config.cpus,
            boot_timeout: self.config.boot_timeout,
        };
        let booted = backend.boot(&spec).await.map_err(|e| {
            IgnisError::new(
                ErrorKind::BackendUnavailable,
                format!("could not start a sandbox: {e}"),
            )
        })?;
        let handle = booted.handle.clone();
        let registered = {
            let mut st = self.lock();
            let registered = match st.live.get_mut(id) {
                Some(live) => {
                    live.handle = handle.clone();
                    true
                }
                None => false,
            };
            Self::transition(&mut st, id, SandboxState::Stem);
            Self::transition(&mut st, id, SandboxState::Initializing);
            registered
        };
        if !registered {
            // Forgotten while booting: the server is shutting down.
            handle.destroy().await;
            return Err(IgnisError::new(
                ErrorKind::ShuttingDown,
                "the server is shutting down",
            ));
        }
        let mut sandbox = Sandbox {
            id: id.to_string(),
            handle,
            channel: booted.channel,
            function: Arc::new(function.clone()),
        };
        match self.init(&mut sandbox, function).await {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                sandbox.handle.destroy().await;
                Err(e)
            }
        }
    }

    /// Sends `init` and waits for `ready` within the init timeout.
    async fn init(&self, sandbox: &mut Sandbox, function: &Function) -> Result<(), IgnisError> {
        let code = self
            .store
            .read_code(&function.code_sha256)
            .await
            .map_err(|e| IgnisError::internal(format!("reading code: {e}")))?;
        let config = &function.config;
        let msg = Init {
            kind: "init",
            function: &function.name,
            version: function.version,
            handler: &config.handler,
            env: &config.env,
            code_zip_b64: base64::engine::general_purpose::STANDARD.encode(&code),
            memory_mb: config.memory_mb,
            timeout_ms: config.timeout_ms,
            sandbox_id: &sandbox.id,
            now_ms: ignis_core::now_ms(),
        };
        let timeout = self.config.init_timeout;
        let exchange = async {
            sandbox.channel.send(&msg).await?;
            loop {
                let reply = sandbox.channel.recv().await?;
                if reply.kind != protocol::STATS {
                    return Ok::<_, ignis_sandbox::ChannelError>(reply);
                }
            }
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Err(IgnisError::new(
                    ErrorKind::Timeout,
                    format!("initialization timed out after {} ms", timeout.as_millis()),
                ))
            }
            Ok(Err(e)) => {
                let reason = sandbox.handle.exit_reason().await;
                return Err(death_error(reason, &format!("during initialization ({e})")));
            }
            Ok(Ok(reply)) => reply,
        };
        match reply.kind.as_str() {
            protocol::READY => Ok(()),
            protocol::INIT_ERROR => {
                let e = reply.error.unwrap_or_default();
                Err(IgnisError::new(
                    ErrorKind::InitError,
                    format!(
                        "could not load handler `{}`: {}: {}",
                        config.handler, e.kind, e.message
                    ),
                )
                .with_stack(e.stack))
            }
            other => Err(IgnisError::new(
                ErrorKind::SandboxCrashed,
                format!("bootstrap answered init with `{other}`"),
            )),
        }
    }

    /// After a batch: back to the idle list, or retired when the function
    /// moved on to a new version, was deleted, or the server is stopping.
    pub(crate) fn release(self: &Arc<Self>, sandbox: Sandbox, name: &str) {
        let mut st = self.lock();
        let accepting = self.accepting.load(Ordering::SeqCst);
        let keep = st
            .functions
            .get(name)
            .is_some_and(|fs| fs.function.version == sandbox.function.version)
            && accepting;
        if let Some(fs) = st.functions.get_mut(name) {
            fs.active = fs.active.saturating_sub(1);
        }
        if keep {
            let id = sandbox.id.clone();
            Self::transition(&mut st, &id, SandboxState::Idle);
            if let Some(fs) = st.functions.get_mut(name) {
                fs.idle.push(Warm {
                    sandbox,
                    last_used: Instant::now(),
                });
            }
        } else {
            let id = sandbox.id.clone();
            Self::transition(&mut st, &id, SandboxState::Draining);
            self.retire(&mut st, sandbox, "drained");
        }
        self.pump(&mut st, name);
        self.changed.notify_waiters();
    }

    /// After a batch ended with the sandbox dead.
    pub(crate) fn bury(self: &Arc<Self>, sandbox: Sandbox, name: &str, requeue: Vec<Pending>) {
        let mut st = self.lock();
        if let Some(fs) = st.functions.get_mut(name) {
            fs.active = fs.active.saturating_sub(1);
            for p in requeue.into_iter().rev() {
                fs.queue.push_front(p);
            }
        }
        self.retire(&mut st, sandbox, "died");
        self.pump(&mut st, name);
    }
}

fn take_batch(fs: &mut FnState, max: usize) -> Vec<Pending> {
    let n = max.min(fs.queue.len());
    fs.queue.drain(..n).collect()
}

/// The error a call gets when its sandbox died.
pub(crate) fn death_error(reason: ExitReason, context: &str) -> IgnisError {
    match reason {
        ExitReason::OutOfMemory => IgnisError::new(
            ErrorKind::OutOfMemory,
            format!("the sandbox ran out of memory and was killed {context}"),
        ),
        ExitReason::Crashed { exit_code } => IgnisError::new(
            ErrorKind::SandboxCrashed,
            match exit_code {
                Some(code) => format!("the sandbox exited with code {code} {context}"),
                None => format!("the sandbox died {context}"),
            },
        ),
        ExitReason::Killed => IgnisError::new(
            ErrorKind::SandboxCrashed,
            format!("the sandbox was killed {context}"),
        ),
    }
}

/// Placeholder handle of a sandbox that is still booting.
struct Unbooted;

#[async_trait::async_trait]
impl ignis_sandbox::SandboxHandle for Unbooted {
    fn id(&self) -> &str {
        ""
    }
    async fn kill(&self) {}
    async fn destroy(&self) {}
    async fn exit_reason(&self) -> ExitReason {
        ExitReason::Killed
    }
    async fn usage(&self) -> Option<ignis_sandbox::ResourceUsage> {
        None
    }
}
