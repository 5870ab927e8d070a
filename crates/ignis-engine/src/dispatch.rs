//! Matching queued calls with sandboxes: reuse an idle one; else specialize
//! a stem cell; else boot a new sandbox, within the function's concurrency
//! limit, the memory budget and the backend's back-off.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ignis_core::{ErrorKind, Function, IgnisError, StartKind};
use ignis_sandbox::protocol::{self, Init};
use ignis_sandbox::{Channel, ExitReason, SandboxHandle, SandboxSpec};
use tokio::time::Instant;

use crate::state::{Lifecycle, SandboxState};
use crate::{
    new_id, Backoff, FnState, Inner, Live, Pending, Sandbox, State, StemCell, StemKey, Warm,
};

/// Longest a failing backend is left alone.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
        let name = function.label().into_owned();
        if let Some(&deleted) = st.removed.get(&name) {
            if function.version <= deleted {
                return Err(IgnisError::not_found(format!(
                    "function `{name}` was deleted"
                )));
            }
            // Created again since.
            st.removed.remove(&name);
        }
        let is_new = !st.functions.contains_key(&name);
        let fs = st
            .functions
            .entry(name.clone())
            .or_insert_with(|| FnState::new(function.clone()));
        if function.version > fs.function.version {
            fs.function = function.clone();
            let stale: Vec<Warm> = fs.idle.drain(..).collect();
            for w in stale {
                self.retire(&mut st, w.sandbox, "new version");
            }
        }
        if is_new {
            self.ensure_stem_pool(&mut st, StemKey::of(&function));
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

    /// Gives every function with queued calls a chance, in round-robin
    /// order, so that capacity freed by one function is shared fairly.
    pub(crate) fn pump_waiting(self: &Arc<Self>, st: &mut State) {
        let mut waiting: Vec<String> = st
            .functions
            .iter()
            .filter(|(_, fs)| !fs.queue.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.sort();
        let start = st.cursor % waiting.len();
        st.cursor = st.cursor.wrapping_add(1);
        for i in 0..waiting.len() {
            let name = &waiting[(start + i) % waiting.len()];
            self.pump(st, name);
        }
    }

    /// Hands queued calls of `name` to idle sandboxes, stem cells or new
    /// sandboxes.
    pub(crate) fn pump(self: &Arc<Self>, st: &mut State, name: &str) {
        loop {
            let Some(fs) = st.functions.get_mut(name) else {
                return;
            };
            if fs.queue.is_empty() {
                return;
            }
            let config = &fs.function.config;
            let batch_max = config.batch_max_size.max(1) as usize;
            if !fs.idle.is_empty() {
                // Hold a partial batch back for up to batch_max_wait_ms so
                // that more calls can join it.
                let wait = Duration::from_millis(config.batch_max_wait_ms);
                if batch_max > 1 && !wait.is_zero() && fs.queue.len() < batch_max {
                    let due = fs.queue.front().map(|p| p.arrived + wait);
                    if let Some(due) = due.filter(|d| *d > Instant::now()) {
                        if !fs.batch_timer {
                            fs.batch_timer = true;
                            let inner = self.clone();
                            let name = name.to_string();
                            tokio::spawn(async move {
                                tokio::time::sleep_until(due).await;
                                let mut st = inner.lock();
                                if let Some(fs) = st.functions.get_mut(&name) {
                                    fs.batch_timer = false;
                                }
                                inner.pump(&mut st, &name);
                            });
                        }
                        return;
                    }
                }
                let Some(warm) = fs.idle.pop() else { return };
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
            if fs.active >= config.max_concurrency as usize {
                return;
            }
            let function = fs.function.clone();
            if let Some(cell) = self.take_stem(st, &function) {
                let Some(fs) = st.functions.get_mut(name) else {
                    return;
                };
                let batch = take_batch(fs, batch_max);
                fs.active += 1;
                let inner = self.clone();
                tokio::spawn(async move { inner.specialize(cell, function, batch).await });
                continue;
            }
            if let Some(wait) = self.backing_off(st, function.config.backend) {
                let Some(fs) = st.functions.get_mut(name) else {
                    return;
                };
                if fs.active == 0 {
                    // Nothing of this function runs that could take these
                    // calls later: fail them now rather than let them time out.
                    let err = IgnisError {
                        retry_after_s: Some(wait.as_secs().max(1)),
                        ..IgnisError::new(
                            ErrorKind::BackendUnavailable,
                            format!(
                                "the {} backend is failing; next attempt in {:.1} s",
                                function.config.backend,
                                wait.as_secs_f64()
                            ),
                        )
                    };
                    let failed: Vec<Pending> = fs.queue.drain(..).collect();
                    for p in failed {
                        self.complete_refused(&function, p, err.clone());
                    }
                }
                return;
            }
            let need = u64::from(function.config.memory_mb);
            if !self.reserve(st, Some(name), need, true) {
                return;
            }
            let Some(fs) = st.functions.get_mut(name) else {
                return;
            };
            let batch = take_batch(fs, batch_max);
            fs.active += 1;
            let id = self.register_booting(st, name, function.config.backend, need);
            let inner = self.clone();
            tokio::spawn(async move { inner.cold_start(id, function, batch).await });
        }
    }

    /// Boots up to `n` more initialized sandboxes of `name` ahead of demand,
    /// within `max_concurrency` and the memory budget (without evicting
    /// anything). Returns how many started.
    pub(crate) fn prewarm(self: &Arc<Self>, st: &mut State, name: &str, n: usize) -> usize {
        let mut started = 0;
        while started < n {
            let Some(fs) = st.functions.get(name) else {
                break;
            };
            let function = fs.function.clone();
            if fs.idle.len() + fs.active >= function.config.max_concurrency as usize {
                break;
            }
            if let Some(cell) = self.take_stem(st, &function) {
                if let Some(fs) = st.functions.get_mut(name) {
                    fs.active += 1;
                }
                let inner = self.clone();
                tokio::spawn(async move { inner.specialize(cell, function, Vec::new()).await });
            } else {
                let need = u64::from(function.config.memory_mb);
                if self.backing_off(st, function.config.backend).is_some()
                    || !self.reserve(st, Some(name), need, false)
                {
                    break;
                }
                if let Some(fs) = st.functions.get_mut(name) {
                    fs.active += 1;
                }
                let id = self.register_booting(st, name, function.config.backend, need);
                let inner = self.clone();
                tokio::spawn(async move { inner.cold_start(id, function, Vec::new()).await });
            }
            started += 1;
        }
        started
    }

    /// Books a sandbox about to boot (its memory is already reserved).
    pub(crate) fn register_booting(
        &self,
        st: &mut State,
        owner: &str,
        backend: ignis_core::BackendKind,
        memory_mb: u64,
    ) -> String {
        let id = new_id("sb");
        st.live.insert(
            id.clone(),
            Live {
                life: Lifecycle::new(&id),
                function: owner.to_string(),
                backend,
                memory_mb,
                handle: Arc::new(Unbooted),
            },
        );
        id
    }

    /// A ready stem cell for `function`, if fairness allows: the last cell
    /// of a pool is kept for functions that have no sandbox at all, so one
    /// hot function cannot take every stem cell.
    fn take_stem(&self, st: &mut State, function: &Arc<Function>) -> Option<StemCell> {
        let key = StemKey::of(function);
        let has_sandboxes = st
            .functions
            .get(&*function.label())
            .is_some_and(|fs| fs.active > 0 || !fs.idle.is_empty());
        let pool = st.stems.get_mut(&key)?;
        let allowed = match pool.ready.len() {
            0 => false,
            1 => !has_sandboxes,
            _ => true,
        };
        if !allowed {
            pool.misses += 1;
            // Demand outgrew the pool: grow it.
            if pool.target < self.config.stem_max {
                pool.target += 1;
                pool.last_resize = Instant::now();
            }
            return None;
        }
        let cell = pool.ready.pop()?;
        pool.hits += 1;
        pool.last_hit = Instant::now();
        if let Some(live) = st.live.get_mut(&cell.id) {
            live.function = function.label().into_owned();
        }
        Some(cell)
    }

    /// Reserves `need` MiB of the memory budget. With `evict`, idle
    /// sandboxes of other functions (least recently used first), then stem
    /// cells of other keys, are removed to make room.
    pub(crate) fn reserve(
        &self,
        st: &mut State,
        for_function: Option<&str>,
        need: u64,
        evict: bool,
    ) -> bool {
        let budget = self.config.memory_budget_mb;
        while st.memory_used_mb + need > budget {
            if !evict {
                return false;
            }
            let victim = st
                .functions
                .iter()
                .filter(|(n, fs)| Some(n.as_str()) != for_function && !fs.idle.is_empty())
                .min_by_key(|(_, fs)| fs.idle[0].last_used)
                .map(|(n, _)| n.clone());
            if let Some(victim) = victim {
                if let Some(fs) = st.functions.get_mut(&victim) {
                    let w = fs.idle.remove(0);
                    self.retire(st, w.sandbox, "evicted to make room");
                }
                continue;
            }
            let stem = st.stems.iter_mut().find_map(|(_, pool)| pool.ready.pop());
            match stem {
                Some(cell) => self.retire_stem(st, cell, "evicted to make room"),
                None => return false,
            }
        }
        st.memory_used_mb += need;
        true
    }

    /// How long the backend is still being left alone after failures.
    fn backing_off(&self, st: &State, backend: ignis_core::BackendKind) -> Option<Duration> {
        let until = st.backoff.get(&backend)?.until?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// Counts a boot attempt of `backend`: failures back it off
    /// exponentially (0.1 s doubling to 30 s); a success resets it.
    pub(crate) fn boot_result(
        &self,
        st: &mut State,
        backend: ignis_core::BackendKind,
        error: Option<&str>,
    ) {
        let b = st.backoff.entry(backend).or_default();
        match error {
            None => {
                if b.failures > 0 {
                    tracing::info!(%backend, "backend recovered");
                }
                *b = Backoff::default();
            }
            Some(error) => {
                b.failures += 1;
                let delay = Duration::from_millis(100)
                    .saturating_mul(1 << (b.failures - 1).min(16))
                    .min(MAX_BACKOFF);
                b.until = Some(Instant::now() + delay);
                tracing::warn!(
                    %backend,
                    failures = b.failures,
                    backoff_ms = delay.as_millis() as u64,
                    error,
                    "backend failed to boot a sandbox; backing off"
                );
            }
        }
    }

    /// Boots a new sandbox for `function`, initializes it and runs `batch`
    /// (or, for a pre-warm, leaves it idle).
    async fn cold_start(self: Arc<Self>, id: String, function: Arc<Function>, batch: Vec<Pending>) {
        let started = Instant::now();
        let booted = self.boot(&id, &function).await;
        let result = match booted {
            Ok((handle, channel)) => {
                let mut sandbox = Sandbox {
                    id: id.clone(),
                    handle,
                    channel,
                    function: function.clone(),
                    cpu_mark_ms: 0.0,
                };
                match self.init(&mut sandbox, &function).await {
                    Ok(()) => Ok(sandbox),
                    Err(e) => {
                        sandbox.handle.destroy().await;
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
    async fn specialize(
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
        };
        let result = match self.init(&mut sandbox, &function).await {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                sandbox.handle.destroy().await;
                Err(e)
            }
        };
        {
            let mut st = self.lock();
            self.refill_stems(&mut st);
        }
        self.after_init(id, function, batch, result, started, StartKind::Stem)
            .await;
    }

    async fn after_init(
        self: Arc<Self>,
        id: String,
        function: Arc<Function>,
        batch: Vec<Pending>,
        result: Result<Sandbox, IgnisError>,
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
                {
                    let mut st = self.lock();
                    Self::transition(&mut st, &id, SandboxState::Idle);
                    Self::transition(&mut st, &id, SandboxState::Busy);
                }
                if batch.is_empty() {
                    self.release(sandbox, &function.label());
                } else {
                    self.run(sandbox, batch, start, Some(init_ms)).await;
                }
            }
            Err(err) => {
                tracing::warn!(function = %function.name, sandbox = %id, error = %err.message, "cold start failed");
                let mut st = self.lock();
                self.forget(&mut st, &id);
                if let Some(fs) = st.functions.get_mut(&*function.label()) {
                    fs.active = fs.active.saturating_sub(1);
                }
                // Everything queued would fail the same way (bad code, no
                // backend): fail it now rather than boot in a loop.
                let mut failed = batch;
                if let Some(fs) = st.functions.get_mut(&*function.label()) {
                    if fs.function.version == function.version {
                        failed.extend(fs.queue.drain(..));
                    }
                }
                drop(st);
                for p in failed {
                    self.complete_refused(&function, p, err.clone());
                }
                let mut st = self.lock();
                self.pump_waiting(&mut st);
            }
        }
    }

    /// Boots a generic sandbox; counts the attempt for the back-off.
    pub(crate) async fn boot(
        &self,
        id: &str,
        function: &Function,
    ) -> Result<(Arc<dyn SandboxHandle>, Channel), IgnisError> {
        self.boot_key(id, StemKey::of(function), function.config.cpus)
            .await
    }

    pub(crate) async fn boot_key(
        &self,
        id: &str,
        key: StemKey,
        cpus: f64,
    ) -> Result<(Arc<dyn SandboxHandle>, Channel), IgnisError> {
        let backend = self.backends.get(&key.backend).ok_or_else(|| {
            IgnisError::new(
                ErrorKind::BackendUnavailable,
                format!("the {} backend is not enabled on this server", key.backend),
            )
        })?;
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
                    self.boot_result(&mut st, key.backend, None);
                    let registered = match st.live.get_mut(id) {
                        Some(live) => {
                            live.handle = b.handle.clone();
                            true
                        }
                        None => false,
                    };
                    Self::transition(&mut st, id, SandboxState::Stem);
                    registered
                }
                Err(e) => {
                    let message = format!("could not start a sandbox: {e}");
                    self.boot_result(&mut st, key.backend, Some(&message));
                    false
                }
            }
        };
        let booted = booted.map_err(|e| {
            IgnisError::new(
                ErrorKind::BackendUnavailable,
                format!("could not start a sandbox: {e}"),
            )
        })?;
        if !registered {
            // Forgotten while booting: the server is shutting down.
            booted.handle.destroy().await;
            return Err(IgnisError::new(
                ErrorKind::ShuttingDown,
                "the server is shutting down",
            ));
        }
        Ok((booted.handle, booted.channel))
    }

    /// The CPU share of sandboxes of a stem key: the largest asked for by a
    /// function with that key (stem cells are generic, so they get the most
    /// any of their future owners needs).
    pub(crate) fn cpus_for(st: &State, key: StemKey) -> f64 {
        st.functions
            .values()
            .filter(|fs| StemKey::of(&fs.function) == key)
            .map(|fs| fs.function.config.cpus)
            .fold(ignis_core::function::limits::DEFAULT_CPUS, f64::max)
    }

    /// Sends `init` and waits for `ready` within the init timeout.
    async fn init(&self, sandbox: &mut Sandbox, function: &Function) -> Result<(), IgnisError> {
        {
            let mut st = self.lock();
            Self::transition(&mut st, &sandbox.id, SandboxState::Initializing);
        }
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
                let reason = match e {
                    ignis_sandbox::ChannelError::Exited(reason) => reason,
                    _ => sandbox.handle.exit_reason().await,
                };
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
        let id = sandbox.id.clone();
        if keep {
            Self::transition(&mut st, &id, SandboxState::Idle);
            if let Some(fs) = st.functions.get_mut(name) {
                fs.idle.push(Warm {
                    sandbox,
                    last_used: Instant::now(),
                });
            }
        } else {
            Self::transition(&mut st, &id, SandboxState::Draining);
            self.retire(&mut st, sandbox, "drained");
        }
        self.pump(&mut st, name);
        self.pump_waiting(&mut st);
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
        self.pump_waiting(&mut st);
    }

    pub(crate) fn retire_stem(&self, st: &mut State, cell: StemCell, why: &str) {
        tracing::debug!(sandbox = %cell.id, why, "retiring stem cell");
        self.forget(st, &cell.id);
        let handle = cell.handle;
        tokio::spawn(async move { handle.destroy().await });
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
impl SandboxHandle for Unbooted {
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
