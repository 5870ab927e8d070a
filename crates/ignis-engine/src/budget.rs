//! The memory budget: the sum of `memory_mb` over all sandboxes stays under
//! it. When a cold start does not fit, idle sandboxes of other functions
//! (least recently used first) and then ready stem cells of other keys are
//! evicted, but only if that makes room: [`plan_eviction`] decides before
//! anything is removed.

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    budget_mb: u64,
    used_mb: u64,
}

impl MemoryBudget {
    pub fn new(budget_mb: u64) -> Self {
        Self {
            budget_mb,
            used_mb: 0,
        }
    }

    pub fn budget_mb(&self) -> u64 {
        self.budget_mb
    }

    pub fn used_mb(&self) -> u64 {
        self.used_mb
    }

    pub fn free_mb(&self) -> u64 {
        self.budget_mb.saturating_sub(self.used_mb)
    }

    /// Reserves `need` MiB if it fits.
    pub fn reserve(&mut self, need: u64) -> bool {
        if need > self.free_mb() {
            return false;
        }
        self.used_mb += need;
        true
    }

    pub fn release(&mut self, mb: u64) {
        self.used_mb = self.used_mb.saturating_sub(mb);
    }
}

/// Something that could be evicted to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<T> {
    pub what: T,
    pub memory_mb: u64,
    /// Idle sandboxes: when last used (older goes first). Stem cells come
    /// after every idle sandbox.
    pub last_used: Option<Instant>,
}

/// What to evict so that `need` MiB fit in `free` MiB: the least recently
/// used idle sandboxes first, then stem cells; `None` (evict nothing) when
/// even all of them would not make room. `Some(empty)` when it fits already.
pub fn plan_eviction<T: Clone>(
    need: u64,
    free: u64,
    candidates: &[Candidate<T>],
) -> Option<Vec<T>> {
    if need <= free {
        return Some(Vec::new());
    }
    let mut order: Vec<&Candidate<T>> = candidates.iter().collect();
    // Idle sandboxes by age, then stem cells (no last use).
    order.sort_by_key(|c| (c.last_used.is_none(), c.last_used));
    let mut freed = free;
    let mut victims = Vec::new();
    for c in order {
        victims.push(c.what.clone());
        freed += c.memory_mb;
        if need <= freed {
            return Some(victims);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reserves_within_the_budget() {
        let mut b = MemoryBudget::new(512);
        assert!(b.reserve(256));
        assert!(b.reserve(256));
        assert!(!b.reserve(1));
        b.release(128);
        assert_eq!(b.free_mb(), 128);
        b.release(10_000);
        assert_eq!(b.used_mb(), 0);
    }

    #[test]
    fn evicts_oldest_idle_first_then_stems_and_only_if_it_helps() {
        let t = Instant::now();
        let c = |what: &'static str, mb: u64, age_s: Option<u64>| Candidate {
            what,
            memory_mb: mb,
            last_used: age_s.map(|a| t + Duration::from_secs(1000 - a)),
        };
        let candidates = vec![
            c("stem", 128, None),
            c("idle-new", 128, Some(1)),
            c("idle-old", 128, Some(100)),
        ];
        assert_eq!(plan_eviction(100, 200, &candidates), Some(vec![]));
        assert_eq!(plan_eviction(256, 128, &candidates), Some(vec!["idle-old"]));
        assert_eq!(
            plan_eviction(384, 128, &candidates),
            Some(vec!["idle-old", "idle-new"])
        );
        assert_eq!(
            plan_eviction(512, 128, &candidates),
            Some(vec!["idle-old", "idle-new", "stem"])
        );
        // Not enough even with everything: nothing is evicted for nothing.
        assert_eq!(plan_eviction(1024, 128, &candidates), None);
        assert_eq!(plan_eviction::<&str>(1, 0, &[]), None);
    }
}
