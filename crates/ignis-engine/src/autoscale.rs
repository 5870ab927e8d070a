//! The autoscaler: how many warm sandboxes a function should have, from
//! its observed concurrency (calls in flight plus queued), in the manner of
//! Knative's KPA: a 60 s stable window for the steady state, and a 6 s
//! panic window that reacts at once when load doubles and holds the scale
//! up while the burst lasts.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

pub const STABLE_WINDOW: Duration = Duration::from_secs(60);
pub const PANIC_WINDOW: Duration = Duration::from_secs(6);
/// Panic when the panic-window concurrency reaches this multiple of the
/// sandboxes there are.
pub const PANIC_THRESHOLD: f64 = 2.0;

#[derive(Debug, Default)]
pub struct Autoscaler {
    samples: VecDeque<(Instant, f64)>,
    panic_until: Option<Instant>,
    desired: u32,
}

/// One decision, with what it was based on (shown by `GET /pools`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Decision {
    pub desired: u32,
    pub stable_concurrency: f64,
    pub panic_concurrency: f64,
    pub panicking: bool,
}

impl Autoscaler {
    /// Records the concurrency observed at `now` and decides. `current` is
    /// the number of sandboxes the function has (idle, busy or booting).
    pub fn observe(
        &mut self,
        now: Instant,
        concurrency: f64,
        current: u32,
        min_warm: u32,
        max_concurrency: u32,
    ) -> Decision {
        self.samples.push_back((now, concurrency));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > STABLE_WINDOW)
        {
            self.samples.pop_front();
        }
        let avg = |window: Duration| {
            let (sum, n) = self
                .samples
                .iter()
                .filter(|(t, _)| now.duration_since(*t) <= window)
                .fold((0.0, 0u32), |(s, n), (_, c)| (s + c, n + 1));
            if n == 0 {
                0.0
            } else {
                sum / f64::from(n)
            }
        };
        let stable = avg(STABLE_WINDOW);
        let panic = avg(PANIC_WINDOW);
        if panic >= PANIC_THRESHOLD * f64::from(current.max(1)) && panic >= 1.0 {
            self.panic_until = Some(now + STABLE_WINDOW);
        }
        let panicking = self.panic_until.is_some_and(|t| now < t);
        if !panicking {
            self.panic_until = None;
        }
        let mut desired = stable.ceil() as u32;
        if panicking {
            // Scale up to the burst at once; never down while it lasts.
            desired = desired.max(panic.ceil() as u32).max(self.desired);
        }
        self.desired = desired.clamp(min_warm, max_concurrency.max(min_warm));
        Decision {
            desired: self.desired,
            stable_concurrency: stable,
            panic_concurrency: panic,
            panicking,
        }
    }

    pub fn desired(&self) -> u32 {
        self.desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        a: &mut Autoscaler,
        start: Instant,
        secs: std::ops::Range<u64>,
        c: f64,
        current: u32,
    ) -> Decision {
        let mut d = None;
        for s in secs {
            d = Some(a.observe(start + Duration::from_secs(s), c, current, 0, 100));
        }
        d.unwrap()
    }

    #[test]
    fn follows_steady_load() {
        let mut a = Autoscaler::default();
        let t = Instant::now();
        let d = run(&mut a, t, 0..120, 3.0, 3);
        assert_eq!(d.desired, 3);
        assert!(!d.panicking);
    }

    #[test]
    fn panics_when_load_doubles_and_holds() {
        let mut a = Autoscaler::default();
        let t = Instant::now();
        run(&mut a, t, 0..60, 2.0, 2);
        // Load jumps to 10 for 3 s: the stable average barely moves, the
        // panic window sees it.
        let d = run(&mut a, t, 60..63, 10.0, 2);
        assert!(d.panicking);
        assert!(d.desired >= 6, "{d:?}");
        let peak = d.desired;
        // Load drops: no scale-down while panicking.
        let d = run(&mut a, t, 63..70, 1.0, peak);
        assert!(d.panicking);
        assert_eq!(d.desired, peak);
        // A minute later the panic is over and the stable window rules.
        let d = run(&mut a, t, 70..200, 1.0, peak);
        assert!(!d.panicking);
        assert_eq!(d.desired, 1);
    }

    #[test]
    fn scales_to_zero_and_respects_bounds() {
        let mut a = Autoscaler::default();
        let t = Instant::now();
        run(&mut a, t, 0..30, 4.0, 4);
        let d = run(&mut a, t, 30..200, 0.0, 4);
        assert_eq!(d.desired, 0);
        let d = a.observe(t + Duration::from_secs(201), 0.0, 0, 2, 10);
        assert_eq!(d.desired, 2, "min_warm is a floor");
        let d = run(&mut Autoscaler::default(), t, 0..10, 500.0, 1);
        assert_eq!(d.desired, 100, "max_concurrency is a ceiling");
    }
}
