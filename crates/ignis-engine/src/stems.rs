//! Stem cells: generic sandboxes booted ahead of demand per (runtime,
//! backend, memory size), initialized with a function's code when a cold
//! call needs one. A pool grows (to `stem_max`) when cold calls find it
//! empty and shrinks back after a minute unused; the last ready cell of a
//! pool is kept for functions that have no sandbox at all, so that one hot
//! function cannot take them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ignis_core::{BackendKind, Function, Runtime};
use ignis_sandbox::{Channel, SandboxHandle};
use serde::Serialize;
use tokio::time::Instant;

use crate::sandboxes::SandboxId;

/// A stem pool that served nothing for this long shrinks by one.
pub const STEM_IDLE: Duration = Duration::from_secs(60);

/// What a stem cell can serve: any function of this runtime, backend and
/// memory size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StemKey {
    pub runtime: Runtime,
    pub backend: BackendKind,
    pub memory_mb: u32,
}

impl StemKey {
    pub fn of(f: &Function) -> Self {
        Self {
            runtime: f.config.runtime,
            backend: f.config.backend,
            memory_mb: f.config.memory_mb,
        }
    }
}

impl std::fmt::Display for StemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}m", self.runtime, self.backend, self.memory_mb)
    }
}

/// A booted sandbox waiting for `init`.
pub(crate) struct StemCell {
    pub id: SandboxId,
    pub handle: Arc<dyn SandboxHandle>,
    pub channel: Channel,
}

/// Whether a function may take a stem cell of its key now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemAvailability {
    /// One is ready for it.
    Ready,
    /// None ready, or only the last one, kept for functions without any
    /// sandbox.
    Unavailable,
}

pub(crate) struct StemPool {
    pub ready: Vec<StemCell>,
    pub booting: usize,
    pub target: usize,
    pub hits: u64,
    pub misses: u64,
    last_hit: Instant,
    last_resize: Instant,
}

/// Every pool, with the bounds of their targets.
pub(crate) struct StemPools {
    pools: BTreeMap<StemKey, StemPool>,
    initial: usize,
    max: usize,
}

impl StemPools {
    pub fn new(initial: usize, max: usize) -> Self {
        Self {
            pools: BTreeMap::new(),
            initial,
            max: max.max(initial),
        }
    }

    /// A pool for `key` from now on (at its initial target).
    pub fn ensure(&mut self, key: StemKey, now: Instant) {
        let initial = self.initial;
        self.pools.entry(key).or_insert_with(|| StemPool {
            ready: Vec::new(),
            booting: 0,
            target: initial,
            hits: 0,
            misses: 0,
            last_hit: now,
            last_resize: now,
        });
    }

    /// Fairness: a function that already has sandboxes leaves the last
    /// ready cell to those that have none.
    pub fn availability(&self, key: &StemKey, has_sandboxes: bool) -> StemAvailability {
        let ready = self.pools.get(key).map_or(0, |p| p.ready.len());
        match ready {
            0 => StemAvailability::Unavailable,
            1 if has_sandboxes => StemAvailability::Unavailable,
            _ => StemAvailability::Ready,
        }
    }

    /// Takes a ready cell (a hit).
    pub fn take(&mut self, key: &StemKey, now: Instant) -> Option<StemCell> {
        let pool = self.pools.get_mut(key)?;
        let cell = pool.ready.pop()?;
        pool.hits += 1;
        pool.last_hit = now;
        Some(cell)
    }

    /// A cold call found no cell it could take: demand outgrew the pool.
    pub fn miss(&mut self, key: &StemKey, now: Instant) {
        let max = self.max;
        if let Some(pool) = self.pools.get_mut(key) {
            pool.misses += 1;
            if pool.target < max {
                pool.target += 1;
                pool.last_resize = now;
            }
        }
    }

    /// How many cells each pool should start booting now.
    pub fn to_boot(&self) -> Vec<(StemKey, usize)> {
        self.pools
            .iter()
            .map(|(k, p)| (*k, p.target.saturating_sub(p.ready.len() + p.booting)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn boot_started(&mut self, key: &StemKey) {
        if let Some(p) = self.pools.get_mut(key) {
            p.booting += 1;
        }
    }

    /// A cell finished booting: kept when its pool still wants it (and
    /// `accepting`), else handed back to be retired.
    pub fn booted(&mut self, key: &StemKey, cell: StemCell, accepting: bool) -> Option<StemCell> {
        let Some(pool) = self.pools.get_mut(key) else {
            return Some(cell);
        };
        pool.booting = pool.booting.saturating_sub(1);
        if accepting && pool.ready.len() < pool.target.max(1) {
            pool.ready.push(cell);
            None
        } else {
            Some(cell)
        }
    }

    /// A boot of `key` failed.
    pub fn boot_failed(&mut self, key: &StemKey) {
        if let Some(p) = self.pools.get_mut(key) {
            p.booting = p.booting.saturating_sub(1);
        }
    }

    /// Shrinks pools that went unused; pools no function needs (not in
    /// `used`) go to zero. Returns the cells to retire.
    pub fn resize(&mut self, used: &[StemKey], now: Instant) -> Vec<StemCell> {
        let mut surplus = Vec::new();
        for (key, pool) in self.pools.iter_mut() {
            if !used.contains(key) {
                pool.target = 0;
            } else if pool.target > self.initial
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
        surplus
    }

    /// Removes the ready cell `id` (it died while waiting).
    pub fn remove(&mut self, id: &SandboxId) -> Option<StemCell> {
        for pool in self.pools.values_mut() {
            if let Some(i) = pool.ready.iter().position(|c| &c.id == id) {
                return Some(pool.ready.remove(i));
            }
        }
        None
    }

    /// Ready cells of keys other than `except`, for eviction.
    pub fn evictable(&self, except: &StemKey) -> Vec<(StemKey, SandboxId, u64)> {
        self.pools
            .iter()
            .filter(|(k, _)| *k != except)
            .flat_map(|(k, p)| {
                p.ready
                    .iter()
                    .map(move |c| (*k, c.id.clone(), u64::from(k.memory_mb)))
            })
            .collect()
    }

    /// Every ready cell, taken (shutdown).
    pub fn drain(&mut self) -> Vec<StemCell> {
        self.pools
            .values_mut()
            .flat_map(|p| p.ready.drain(..))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&StemKey, &StemPool)> {
        self.pools.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StemKey {
        StemKey {
            runtime: Runtime::Python3,
            backend: BackendKind::Docker,
            memory_mb: 128,
        }
    }

    /// Pools are exercised with cells by the engine tests (they need a
    /// channel); here, the bookkeeping without cells.
    #[test]
    fn grows_on_misses_to_the_max_and_boots_the_difference() {
        let t = Instant::now();
        let mut p = StemPools::new(1, 3);
        p.ensure(key(), t);
        assert_eq!(p.to_boot(), vec![(key(), 1)]);
        p.boot_started(&key());
        assert!(p.to_boot().is_empty());
        for _ in 0..5 {
            p.miss(&key(), t);
        }
        assert_eq!(p.to_boot(), vec![(key(), 2)], "target 3, one booting");
        let (_, pool) = p.iter().next().unwrap();
        assert_eq!((pool.target, pool.misses), (3, 5));
        p.boot_failed(&key());
        assert_eq!(p.to_boot(), vec![(key(), 3)]);
        // Unused for a minute: back towards the initial size, one step a minute.
        assert!(p.resize(&[key()], t + STEM_IDLE).is_empty());
        assert_eq!(p.iter().next().unwrap().1.target, 2);
        p.resize(&[key()], t + STEM_IDLE + Duration::from_secs(1));
        assert_eq!(
            p.iter().next().unwrap().1.target,
            2,
            "not twice in a minute"
        );
        // No function needs it: zero.
        p.resize(&[], t + STEM_IDLE * 3);
        assert_eq!(p.iter().next().unwrap().1.target, 0);
        assert_eq!(p.availability(&key(), false), StemAvailability::Unavailable);
    }
}
