//! The maintainer: once a tick it samples each function's concurrency for
//! the autoscaler, pre-warms up to the desired size, reaps idle sandboxes
//! past their keep-alive, and keeps the stem-cell pools at their (adaptive)
//! targets. Also: sandboxes that die while idle leave the pools at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::state::SandboxState;
use crate::{Inner, Sandbox, State, StemCell, StemKey, StemPool};

/// A stem pool that served nothing for this long shrinks by one.
const STEM_IDLE: Duration = Duration::from_secs(60);

impl Inner {
    pub(crate) fn ensure_stem_pool(&self, st: &mut State, key: StemKey) {
        let now = Instant::now();
        st.stems.entry(key).or_insert_with(|| StemPool {
            ready: Vec::new(),
            booting: 0,
            target: self.config.stem_initial,
            hits: 0,
            misses: 0,
            last_hit: now,
            last_resize: now,
        });
    }

    pub(crate) fn maintain(self: &Arc<Self>, st: &mut State) {
        let now = Instant::now();
        let mut expired: Vec<Sandbox> = Vec::new();
        let mut to_warm: Vec<(String, usize)> = Vec::new();
        for (name, fs) in st.functions.iter_mut() {
            let config = &fs.function.config;
            let concurrency = (fs.active + fs.queue.len()) as f64;
            let current = (fs.idle.len() + fs.active) as u32;
            let decision = fs.autoscaler.observe(
                now,
                concurrency,
                current,
                config.min_warm,
                config.max_concurrency,
            );
            fs.decision = Some(decision);
            let floor = decision.desired as usize;
            // Scale down: idle sandboxes above the desired size go once
            // their keep-alive is over (oldest first, at the front).
            let keep_alive = Duration::from_secs(config.keep_alive_s);
            while fs.idle.len() + fs.active > floor
                && fs
                    .idle
                    .first()
                    .is_some_and(|w| now.duration_since(w.last_used) >= keep_alive)
            {
                expired.push(fs.idle.remove(0).sandbox);
            }
            // Scale up ahead of demand.
            if (current as usize) < floor && fs.queue.is_empty() {
                to_warm.push((name.clone(), floor - current as usize));
            }
        }
        for sandbox in expired {
            self.retire(st, sandbox, "keep-alive expired");
        }
        for (name, n) in to_warm {
            let started = self.prewarm(st, &name, n);
            if started > 0 {
                tracing::debug!(function = %name, started, "pre-warming");
            }
        }
        self.resize_stems(st, now);
        self.refill_stems(st);
        self.pump_waiting(st);
    }

    /// Shrinks pools that went unused; pools no function needs go to zero.
    fn resize_stems(&self, st: &mut State, now: Instant) {
        let used: std::collections::HashSet<StemKey> = st
            .functions
            .values()
            .map(|fs| StemKey::of(&fs.function))
            .collect();
        let mut surplus = Vec::new();
        for (key, pool) in st.stems.iter_mut() {
            if !used.contains(key) {
                pool.target = 0;
            } else if pool.target > self.config.stem_initial
                && now.duration_since(pool.last_hit) >= STEM_IDLE
                && now.duration_since(pool.last_resize) >= STEM_IDLE
            {
                pool.target -= 1;
                pool.last_resize = now;
            }
            while pool.ready.len() > pool.target {
                if let Some(cell) = pool.ready.pop() {
                    surplus.push(cell);
                }
            }
        }
        for cell in surplus {
            self.retire_stem(st, cell, "stem pool shrank");
        }
    }

    /// Boots stem cells up to each pool's target, within the memory budget
    /// (never evicting warm sandboxes for them) and the backends' back-off.
    pub(crate) fn refill_stems(self: &Arc<Self>, st: &mut State) {
        if !self.accepting.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let keys: Vec<StemKey> = st.stems.keys().copied().collect();
        for key in keys {
            if !self.backends.contains_key(&key.backend) || self.backing_off_kind(st, key.backend) {
                continue;
            }
            while let Some(pool) = st.stems.get(&key) {
                if pool.ready.len() + pool.booting >= pool.target {
                    break;
                }
                if !self.reserve(st, None, u64::from(key.memory_mb), false) {
                    break;
                }
                let cpus = Self::cpus_for(st, key);
                let label = format!("stem:{}/{}/{}", key.runtime, key.backend, key.memory_mb);
                let id = self.register_booting(st, &label, key.backend, u64::from(key.memory_mb));
                if let Some(pool) = st.stems.get_mut(&key) {
                    pool.booting += 1;
                }
                let inner = self.clone();
                tokio::spawn(async move { inner.boot_stem(id, key, cpus).await });
            }
        }
    }

    fn backing_off_kind(&self, st: &State, backend: ignis_core::BackendKind) -> bool {
        st.backoff
            .get(&backend)
            .and_then(|b| b.until)
            .is_some_and(|until| until > Instant::now())
    }

    async fn boot_stem(self: Arc<Self>, id: String, key: StemKey, cpus: f64) {
        let booted = self.boot_key(&id, key, cpus).await;
        let mut st = self.lock();
        if let Some(pool) = st.stems.get_mut(&key) {
            pool.booting = pool.booting.saturating_sub(1);
        }
        match booted {
            Ok((handle, channel)) => {
                let cell = StemCell {
                    id: id.clone(),
                    handle,
                    channel,
                };
                let accepting = self.accepting.load(std::sync::atomic::Ordering::SeqCst);
                match st.stems.get_mut(&key) {
                    Some(pool) if accepting && pool.ready.len() < pool.target.max(1) => {
                        pool.ready.push(cell);
                    }
                    _ => self.retire_stem(&mut st, cell, "not needed any more"),
                }
                // A queued call may have been waiting for exactly this.
                self.pump_waiting(&mut st);
            }
            Err(e) => {
                tracing::debug!(sandbox = %id, error = %e.message, "stem cell boot failed");
                self.forget(&mut st, &id);
            }
        }
    }

    /// A sandbox died on its own. Idle ones and stem cells leave their pools
    /// now (the next tick replaces what `min_warm` or the stem target
    /// needs); a busy one is handled by the call running on it.
    pub(crate) fn sandbox_died(self: &Arc<Self>, id: &str) {
        let mut st = self.lock();
        let state = st.live.get(id).map(|l| l.life.state());
        match state {
            Some(SandboxState::Idle) => {
                let mut found = None;
                for fs in st.functions.values_mut() {
                    if let Some(i) = fs.idle.iter().position(|w| w.sandbox.id == id) {
                        found = Some(fs.idle.remove(i).sandbox);
                        break;
                    }
                }
                if let Some(sandbox) = found {
                    tracing::warn!(sandbox = id, function = %sandbox.function.name, "idle sandbox died; replacing");
                    self.retire(&mut st, sandbox, "died while idle");
                }
            }
            Some(SandboxState::Stem) => {
                let mut found = None;
                for pool in st.stems.values_mut() {
                    if let Some(i) = pool.ready.iter().position(|c| c.id == id) {
                        found = Some(pool.ready.remove(i));
                        break;
                    }
                }
                if let Some(cell) = found {
                    tracing::warn!(sandbox = id, "stem cell died; replacing");
                    self.retire_stem(&mut st, cell, "died while waiting");
                }
            }
            _ => return,
        }
        self.maintain(&mut st);
    }
}
