//! Back-off of a failing backend: consecutive boot failures leave it alone
//! for 0.1 s, doubling to 30 s; a success resets it. The one place that
//! computes it.

use std::collections::HashMap;
use std::time::Duration;

use ignis_core::BackendKind;
use tokio::time::Instant;

/// Longest a failing backend is left alone.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// How long the backend is still left alone at `now`.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until.filter(|u| *u > now).map(|u| u - now)
    }

    /// A boot failed at `now`: returns how long the backend is left alone.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.until = Some(now + delay);
        delay
    }

    /// A boot worked: returns whether the backend had been failing.
    pub fn succeeded(&mut self) -> bool {
        let was_failing = self.failures > 0;
        *self = Backoff::default();
        was_failing
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// The back-off of every backend.
#[derive(Debug, Default)]
pub struct Backoffs(HashMap<BackendKind, Backoff>);

impl Backoffs {
    pub fn remaining(&self, backend: BackendKind, now: Instant) -> Option<Duration> {
        self.0.get(&backend)?.remaining(now)
    }

    pub fn get_mut(&mut self, backend: BackendKind) -> &mut Backoff {
        self.0.entry(backend).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_ceiling_and_resets() {
        let t = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.remaining(t), None);
        let delays: Vec<u64> = (0..12).map(|_| b.failed(t).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        assert_eq!(b.remaining(t), Some(MAX_BACKOFF));
        assert_eq!(b.remaining(t + MAX_BACKOFF), None);
        assert!(b.succeeded());
        assert!(!b.succeeded());
        assert_eq!(b.failed(t), Duration::from_millis(100));
    }

    #[test]
    fn backends_are_apart() {
        let t = Instant::now();
        let mut all = Backoffs::default();
        all.get_mut(BackendKind::Docker).failed(t);
        assert!(all.remaining(BackendKind::Docker, t).is_some());
        assert!(all.remaining(BackendKind::Microvm, t).is_none());
    }
}
