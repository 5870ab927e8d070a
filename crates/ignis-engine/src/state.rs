//! The sandbox lifecycle as a state machine with guarded transitions.
//!
//! ```text
//! Booting ─▶ Stem ─▶ Initializing ─▶ Idle ⇄ Busy
//!    │         │          │   └─────────────▶ │        (a cold call runs at once)
//!    └─────────┴──────────┴────────────┴──────┴─▶ Draining ─▶ Dead
//! ```
//!
//! Any state may go to `Dead` (a crash); `Draining` is a sandbox that will
//! not take new work and is removed when its current work ends. An illegal
//! transition is a bug in the engine: it fails debug builds (tests) and is
//! logged loudly in release builds, the state unchanged.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Booting,
    Stem,
    Initializing,
    Idle,
    Busy,
    Draining,
    Dead,
}

impl SandboxState {
    pub const ALL: [SandboxState; 7] = [
        SandboxState::Booting,
        SandboxState::Stem,
        SandboxState::Initializing,
        SandboxState::Idle,
        SandboxState::Busy,
        SandboxState::Draining,
        SandboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Booting => "booting",
            SandboxState::Stem => "stem",
            SandboxState::Initializing => "initializing",
            SandboxState::Idle => "idle",
            SandboxState::Busy => "busy",
            SandboxState::Draining => "draining",
            SandboxState::Dead => "dead",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether `self -> to` is a legal transition.
    pub fn can_go_to(self, to: SandboxState) -> bool {
        use SandboxState::*;
        matches!(
            (self, to),
            (Booting, Stem)
                | (Stem, Initializing)
                | (Initializing, Idle)
                | (Initializing, Busy)
                | (Idle, Busy)
                | (Busy, Idle)
                | (Booting | Stem | Initializing | Idle | Busy, Draining)
                | (Booting | Stem | Initializing | Idle | Busy | Draining, Dead)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal sandbox transition {from:?} -> {to:?}")]
pub struct IllegalTransition {
    pub from: SandboxState,
    pub to: SandboxState,
}

/// Transitions into each state since start, for introspection and metrics.
pub static TRANSITIONS: [AtomicU64; 7] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// The lifecycle of one sandbox.
#[derive(Debug)]
pub struct Lifecycle {
    id: String,
    state: SandboxState,
    /// When it entered `state`.
    since: tokio::time::Instant,
}

impl Lifecycle {
    pub fn new(id: &str) -> Self {
        TRANSITIONS[SandboxState::Booting.index()].fetch_add(1, Ordering::Relaxed);
        Self {
            id: id.to_string(),
            state: SandboxState::Booting,
            since: tokio::time::Instant::now(),
        }
    }

    pub fn state(&self) -> SandboxState {
        self.state
    }

    /// When it entered its current state.
    pub fn since(&self) -> tokio::time::Instant {
        self.since
    }

    /// Moves to `to`, or returns a typed error and stays put.
    pub fn try_go(&mut self, to: SandboxState) -> Result<(), IllegalTransition> {
        if !self.state.can_go_to(to) {
            return Err(IllegalTransition {
                from: self.state,
                to,
            });
        }
        tracing::trace!(sandbox = %self.id, from = self.state.as_str(), to = to.as_str(), "transition");
        TRANSITIONS[to.index()].fetch_add(1, Ordering::Relaxed);
        self.state = to;
        self.since = tokio::time::Instant::now();
        Ok(())
    }

    /// Moves to `to`; an illegal transition is an engine bug: it panics in
    /// debug builds and is logged (state unchanged) in release builds.
    pub fn go(&mut self, to: SandboxState) {
        if let Err(e) = self.try_go(to) {
            tracing::error!(sandbox = %self.id, error = %e, "lifecycle violation");
            debug_assert!(false, "sandbox {}: {e}", self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SandboxState::*;

    #[test]
    fn legal_paths() {
        let mut l = Lifecycle::new("sb");
        for s in [Stem, Initializing, Idle, Busy, Idle, Busy, Draining, Dead] {
            l.try_go(s).unwrap();
        }
        // A cold start that runs its call at once.
        let mut l = Lifecycle::new("sb2");
        for s in [Stem, Initializing, Busy, Idle] {
            l.try_go(s).unwrap();
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let mut l = Lifecycle::new("sb");
        assert_eq!(
            l.try_go(Busy),
            Err(IllegalTransition {
                from: Booting,
                to: Busy
            })
        );
        assert_eq!(l.state(), Booting);
        l.try_go(Dead).unwrap();
        for s in SandboxState::ALL {
            assert!(l.try_go(s).is_err(), "dead -> {s:?} allowed");
        }
        assert!(!Idle.can_go_to(Initializing));
        assert!(!Draining.can_go_to(Idle));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "illegal sandbox transition")]
    fn an_illegal_transition_fails_debug_builds() {
        let mut l = Lifecycle::new("sb");
        l.go(Idle);
    }
}
