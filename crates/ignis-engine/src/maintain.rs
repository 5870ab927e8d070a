//! The maintainer: once a second it samples each function's concurrency
//! for the autoscaler (the only place samples are taken), then maintains:
//! pre-warms up to the desired size, reaps idle sandboxes past their
//! keep-alive, keeps the stem-cell pools at their (adaptive) targets.
//! Maintenance also runs after changes (a new function, a death) without
//! sampling. Sandboxes that die while idle leave the pools at once; when
//! the death notifications could not keep up, the engine resynchronizes
//! from the backend's own list.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::functions::Sandbox;
use crate::sandboxes::SandboxId;
use crate::state::SandboxState;
use crate::stems::StemKey;
use crate::{Effects, Engine, Inner, State};

impl State {
    /// One autoscaler sample per function, at the tick.
    pub(crate) fn sample(&mut self, now: Instant) {
        for fs in self.functions.values_mut() {
            let config = &fs.function.config;
            let concurrency = (fs.active + fs.queue.len()) as f64;
            let current = (fs.idle.len() + fs.active) as u32;
            fs.decision = Some(fs.autoscaler.observe(
                now,
                concurrency,
                current,
                config.min_warm,
                config.max_concurrency,
            ));
        }
    }

    /// Scales each function to its last decision (at least `min_warm`),
    /// reaps idle sandboxes past their keep-alive, resizes and refills the
    /// stem pools, and pumps what waits.
    pub(crate) fn maintain(&mut self, now: Instant, fx: &mut Effects) {
        let mut expired: Vec<Sandbox> = Vec::new();
        let mut to_warm = Vec::new();
        for (id, fs) in self.functions.iter_mut() {
            let config = &fs.function.config;
            let floor = fs.autoscaler.desired().max(config.min_warm) as usize;
            let current = fs.idle.len() + fs.active;
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
            if current < floor && fs.queue.is_empty() {
                to_warm.push((id.clone(), floor - current));
            }
        }
        for s in expired {
            self.retire(s.id, s.handle, "keep-alive expired", fx);
        }
        for (id, n) in to_warm {
            let started = self.prewarm(&id, n, now, fx);
            if started > 0 {
                tracing::debug!(function = %id, started, "pre-warming");
            }
        }
        let used: Vec<StemKey> = self
            .functions
            .values()
            .map(|fs| StemKey::of(&fs.function))
            .collect();
        for cell in self.stems.resize(&used, now) {
            self.retire(cell.id, cell.handle, "stem pool shrank", fx);
        }
        self.refill_stems(fx);
        self.pump_waiting(now, fx);
    }

    /// A sandbox died on its own. Idle ones and stem cells leave their
    /// pools now (maintenance replaces what `min_warm` or the stem target
    /// needs); a busy one is handled by the call running on it. Returns
    /// whether it was one of those.
    pub(crate) fn sandbox_died(&mut self, id: &SandboxId, fx: &mut Effects) -> bool {
        match self.sandboxes.state(id) {
            Some(SandboxState::Idle) => {
                let found = self.functions.values_mut().find_map(|fs| {
                    let i = fs.idle.iter().position(|w| &w.sandbox.id == id)?;
                    Some(fs.idle.remove(i).sandbox)
                });
                match found {
                    Some(s) => {
                        tracing::warn!(sandbox = %id, function = %s.function.label(), "idle sandbox died; replacing");
                        self.retire(s.id, s.handle, "died while idle", fx);
                        true
                    }
                    None => false,
                }
            }
            Some(SandboxState::Stem) => match self.stems.remove(id) {
                Some(cell) => {
                    tracing::warn!(sandbox = %id, "stem cell died; replacing");
                    self.retire(cell.id, cell.handle, "died while waiting", fx);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

impl Engine {
    pub(crate) fn spawn_maintainer(&self) {
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.config.reap_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.accepting.load(Ordering::SeqCst) {
                    return;
                }
                inner.with_state(|st, fx| {
                    let now = Instant::now();
                    st.sample(now);
                    st.maintain(now, fx);
                });
            }
        });
    }

    /// Sandboxes that die while idle (killed from outside, crashed) are
    /// dropped from the pools at once; maintenance replaces them. A
    /// listener that fell behind (the notifications overflowed) does not
    /// lose deaths: it asks the backend which sandboxes still run.
    pub(crate) fn spawn_death_listeners(&self) {
        for backend in self.inner.backends.values() {
            let Some(mut deaths) = backend.deaths() else {
                continue;
            };
            let kind = backend.kind();
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    let died = deaths.recv().await;
                    let Some(inner) = weak.upgrade() else { return };
                    match died {
                        Ok(id) => inner.sandbox_died(&SandboxId::from(id.as_str())),
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(backend = %kind, missed, "death notifications overflowed; resynchronizing from the backend");
                            inner.resync(kind).await;
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        }
    }
}

impl Inner {
    pub(crate) fn sandbox_died(self: &Arc<Self>, id: &SandboxId) {
        self.with_state(|st, fx| {
            if st.sandbox_died(id, fx) {
                st.maintain(Instant::now(), fx);
            }
        });
        self.changed.notify_waiters();
    }

    /// Every idle sandbox or stem cell of `backend` the backend no longer
    /// runs is dead.
    pub(crate) async fn resync(self: &Arc<Self>, backend: ignis_core::BackendKind) {
        let Some(b) = self.backends.get(&backend) else {
            return;
        };
        let alive: HashSet<String> = match b.alive().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%backend, error = %e, "cannot list the backend's sandboxes");
                return;
            }
        };
        let gone: Vec<SandboxId> = {
            let st = self.lock();
            st.sandboxes
                .iter()
                .filter(|(id, r)| {
                    r.backend == backend
                        && matches!(r.life.state(), SandboxState::Idle | SandboxState::Stem)
                        && !alive.contains(id.as_str())
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in gone {
            self.sandbox_died(&id);
        }
    }
}
