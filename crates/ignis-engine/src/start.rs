//! Starting sandboxes: booting one (for a function or as a stem cell),
//! initializing it with a function's code, and what follows either way.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine as _;
use ignis_core::{Function, StartKind};
use ignis_sandbox::protocol::{GuestMessage, HostMessage, Init, Limits};
use ignis_sandbox::{Channel, ChannelError, SandboxHandle, SandboxSpec};
use tokio::time::Instant;

use crate::functions::{Pending, Sandbox, Warm};
use crate::sandboxes::SandboxId;
use crate::state::SandboxState;
use crate::stems::{StemCell, StemKey};
use crate::{CallError, Effect, Inner, Phase};

impl Inner {
    /// Boots a new sandbox for `function`, initializes it and runs `batch`
    /// (or, for a pre-warm, leaves it idle).
    pub(crate) async fn cold_start(
        self: Arc<Self>,
        id: SandboxId,
        function: Arc<Function>,
        batch: Vec<Pending>,
    ) {
        let started = Instant::now();
        let key = StemKey::of(&function);
        let result = match self.boot(&id, key, function.config.cpus).await {
            Ok((handle, channel)) => {
                let mut sandbox = Sandbox {
                    id: id.clone(),
                    handle,
                    channel,
                    function: function.clone(),
                    cpu_mark_ms: 0.0,
                    usage_read: None,
                };
                match self.init(&mut sandbox).await {
                    Ok(()) => Ok(sandbox),
                    Err(e) => {
                        self.destroy(&sandbox.handle).await;
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        };
        self.after_init(id, function, batch, result, started, StartKind::Cold)
            .await;
    }

    /// Initializes a stem cell with `function` and runs `batch`.
    pub(crate) async fn specialize(
        self: Arc<Self>,
        cell: StemCell,
        function: Arc<Function>,
        batch: Vec<Pending>,
    ) {
        let started = Instant::now();
        let id = cell.id.clone();
        let mut sandbox = Sandbox {
            id: cell.id,
            handle: cell.handle,
            channel: cell.channel,
            function: function.clone(),
            cpu_mark_ms: 0.0,
            usage_read: None,
        };
        let result = match self.init(&mut sandbox).await {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                self.destroy(&sandbox.handle).await;
                Err(e)
            }
        };
        // The pool lost a cell: boot its replacement.
        self.with_state(|st, fx| st.refill_stems(fx));
        self.after_init(id, function, batch, result, started, StartKind::Stem)
            .await;
    }

    async fn after_init(
        self: Arc<Self>,
        id: SandboxId,
        function: Arc<Function>,
        batch: Vec<Pending>,
        result: Result<Sandbox, CallError>,
        started: Instant,
        start: StartKind,
    ) {
        match result {
            Ok(mut sandbox) => {
                let init_ms = started.elapsed().as_secs_f64() * 1e3;
                if self.config.record {
                    // Calls are charged for their own CPU, not the boot's.
                    if let Some(u) = sandbox.handle.usage_now() {
                        sandbox.cpu_mark_ms = u.cpu_time_ms;
                    }
                }
                if batch.is_empty() {
                    // A pre-warm: straight to the idle list.
                    self.release(sandbox);
                } else {
                    self.with_state(|st, _| st.sandboxes.go(&id, SandboxState::Busy));
                    self.run(sandbox, batch, start, Some(init_ms)).await;
                }
            }
            Err(err) => {
                tracing::warn!(function = %function.label(), sandbox = %id, error = %err, "cold start failed");
                self.with_state(|st, fx| {
                    st.forget(&id);
                    let fid = function.pool_id();
                    let mut failed = batch;
                    if let Some(fs) = st.functions.get_mut(&fid) {
                        fs.active = fs.active.saturating_sub(1);
                        // Everything queued would fail the same way (bad
                        // code, no backend): fail it now rather than boot in
                        // a loop.
                        if fs.function.version == function.version {
                            failed.extend(fs.queue.drain(..));
                        }
                    }
                    fx.push(Effect::Refuse {
                        function: function.clone(),
                        calls: failed,
                        error: err,
                    });
                    st.pump_waiting(Instant::now(), fx);
                });
            }
        }
    }

    /// Boots a generic sandbox of `key` for the booked record `id`; counts
    /// the attempt for the backend's back-off.
    pub(crate) async fn boot(
        &self,
        id: &SandboxId,
        key: StemKey,
        cpus: f64,
    ) -> Result<(Arc<dyn SandboxHandle>, Channel), CallError> {
        let backend = self
            .backends
            .get(&key.backend)
            .ok_or(CallError::NoBackend(key.backend))?;
        let spec = SandboxSpec {
            id: id.to_string(),
            runtime: key.runtime,
            memory_mb: key.memory_mb,
            cpus,
            boot_timeout: self.config.boot_timeout,
        };
        let booted = backend.boot(&spec).await;
        let registered = {
            let mut st = self.lock();
            match &booted {
                Ok(b) => {
                    if st.backoff.get_mut(key.backend).succeeded() {
                        tracing::info!(backend = %key.backend, "backend recovered");
                    }
                    st.sandboxes.booted(id, b.handle.clone())
                }
                Err(e) if e.is_backend_failure() => {
                    let b = st.backoff.get_mut(key.backend);
                    let delay = b.failed(Instant::now());
                    tracing::warn!(
                        backend = %key.backend,
                        failures = b.failures(),
                        backoff_ms = delay.as_millis() as u64,
                        error = %e,
                        "backend failed to boot a sandbox; backing off"
                    );
                    false
                }
                Err(_) => false,
            }
        };
        let booted = booted.map_err(|e| CallError::Start(Arc::new(e)))?;
        if !registered {
            // Forgotten while booting: the server is shutting down.
            self.destroy(&booted.handle).await;
            return Err(CallError::ShuttingDown);
        }
        Ok((booted.handle, booted.channel))
    }

    /// Sends `init` and waits for `ready` within the init timeout.
    async fn init(&self, sandbox: &mut Sandbox) -> Result<(), CallError> {
        self.lock()
            .sandboxes
            .go(&sandbox.id, SandboxState::Initializing);
        let function = sandbox.function.clone();
        // The blob is read outside the database's lock: a cold start never
        // waits behind a batch of record inserts.
        let code = self
            .store
            .read_code(&function.code_sha256)
            .await
            .map_err(|e| CallError::Code(Arc::new(e)))?;
        let config = &function.config;
        let code_zip_b64 = tokio::task::spawn_blocking(move || {
            base64::engine::general_purpose::STANDARD.encode(&code)
        })
        .await
        .map_err(|_| CallError::Lost)?;
        let msg = HostMessage::Init(Init {
            function: &function.name,
            version: function.version,
            handler: &config.handler,
            env: &config.env,
            code_zip_b64,
            memory_mb: config.memory_mb,
            timeout_ms: config.timeout_ms,
            sandbox_id: sandbox.id.as_str(),
            now_ms: ignis_core::now_ms(),
            limits: Limits::default(),
        });
        let timeout = self.config.init_timeout;
        let exchange = async {
            sandbox.channel.send(&msg).await?;
            loop {
                match sandbox.channel.recv().await? {
                    GuestMessage::Stats { .. } | GuestMessage::Unknown { .. } => continue,
                    reply => return Ok::<_, ChannelError>(reply),
                }
            }
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(CallError::InitTimeout(timeout)),
            Ok(Err(e)) => return Err(self.died(&sandbox.handle, e, Phase::Init).await),
            Ok(Ok(reply)) => reply,
        };
        match reply {
            GuestMessage::Ready { .. } => Ok(()),
            GuestMessage::InitError { error, .. } => Err(CallError::Init {
                handler: config.handler.clone(),
                kind: error.kind,
                message: error.message,
                stack: error.stack,
            }),
            other => Err(CallError::Protocol(format!(
                "the bootstrap answered init with {other:?}"
            ))),
        }
    }

    /// Why the channel to a sandbox failed, as the error its call gets.
    pub(crate) async fn died(
        &self,
        handle: &Arc<dyn SandboxHandle>,
        e: ChannelError,
        phase: Phase,
    ) -> CallError {
        match e {
            ChannelError::BadMessage(m) => {
                handle.kill().await;
                CallError::Protocol(m)
            }
            ChannelError::LineTooLong => {
                handle.kill().await;
                CallError::MessageTooLarge
            }
            ChannelError::Exited(reason) => CallError::Died { reason, phase },
            ChannelError::Closed | ChannelError::Io(_) => CallError::Died {
                reason: handle.exit_reason().await,
                phase,
            },
        }
    }

    /// After a batch: back to the idle list, or retired when the function
    /// moved on to a new version, was deleted, or the server is stopping.
    pub(crate) fn release(self: &Arc<Self>, sandbox: Sandbox) {
        let accepting = self.accepting.load(Ordering::SeqCst);
        self.with_state(|st, fx| {
            let fid = sandbox.function.pool_id();
            let keep = accepting
                && st
                    .functions
                    .get(&fid)
                    .is_some_and(|fs| fs.function.version == sandbox.function.version);
            if let Some(fs) = st.functions.get_mut(&fid) {
                fs.active = fs.active.saturating_sub(1);
            }
            if keep {
                st.sandboxes.go(&sandbox.id, SandboxState::Idle);
                if let Some(fs) = st.functions.get_mut(&fid) {
                    fs.idle.push(Warm {
                        sandbox,
                        last_used: Instant::now(),
                    });
                }
            } else {
                st.sandboxes.go(&sandbox.id, SandboxState::Draining);
                st.retire(sandbox.id, sandbox.handle, "drained", fx);
            }
            let now = Instant::now();
            st.pump(&fid, now, fx);
            st.pump_waiting(now, fx);
        });
        self.changed.notify_waiters();
    }

    /// After a batch ended with the sandbox dead: the calls it had not
    /// started go back to the front of the queue.
    pub(crate) fn bury(self: &Arc<Self>, sandbox: Sandbox, requeue: Vec<Pending>) {
        self.with_state(|st, fx| {
            let fid = sandbox.function.pool_id();
            if let Some(fs) = st.functions.get_mut(&fid) {
                fs.active = fs.active.saturating_sub(1);
                for p in requeue.into_iter().rev() {
                    fs.queue.push_front(p);
                }
            }
            st.retire(sandbox.id, sandbox.handle, "died", fx);
            st.pump_waiting(Instant::now(), fx);
        });
        self.changed.notify_waiters();
    }

    /// Boots a stem cell for `key`'s pool.
    pub(crate) async fn boot_stem(self: Arc<Self>, id: SandboxId, key: StemKey, cpus: f64) {
        let booted = self.boot(&id, key, cpus).await;
        let accepting = self.accepting.load(Ordering::SeqCst);
        self.with_state(|st, fx| {
            match booted {
                Ok((handle, channel)) => {
                    let cell = StemCell {
                        id: id.clone(),
                        handle,
                        channel,
                    };
                    if let Some(cell) = st.stems.booted(&key, cell, accepting) {
                        st.retire(cell.id, cell.handle, "not needed any more", fx);
                    }
                    // A queued call may have been waiting for exactly this.
                    st.pump_waiting(Instant::now(), fx);
                }
                Err(e) => {
                    tracing::debug!(sandbox = %id, error = %e, "stem cell boot failed");
                    st.stems.boot_failed(&key);
                    st.forget(&id);
                }
            }
        });
        self.changed.notify_waiters();
    }
}

impl crate::State {
    /// Boots stem cells up to each pool's target, within the memory budget
    /// (never evicting warm sandboxes for them) and the backends' back-off.
    pub(crate) fn refill_stems(&mut self, fx: &mut crate::Effects) {
        if !self.accepting {
            return;
        }
        let now = Instant::now();
        for (key, n) in self.stems.to_boot() {
            if !self.backends.contains(&key.backend)
                || self.backoff.remaining(key.backend, now).is_some()
            {
                continue;
            }
            for _ in 0..n {
                let need = u64::from(key.memory_mb);
                if !self.budget.reserve(need) {
                    return;
                }
                let cpus = self.cpus_for(key);
                let id =
                    self.sandboxes
                        .booting(crate::sandboxes::Owner::Stem(key), key.backend, need);
                self.stems.boot_started(&key);
                fx.push(Effect::BootStem { id, key, cpus });
            }
        }
    }
}
