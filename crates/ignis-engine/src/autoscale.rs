//! The autoscaler: how many warm sandboxes a function should have, from
//! its observed concurrency (calls in flight plus queued), in the manner of
//! Knative's KPA: a 60 s stable window for the steady state, and a 6 s
//! panic window that reacts at once when load doubles and holds the scale
//! up while the burst lasts.
//!
//! The engine samples every function once a second, on its own tick; the
//! averages are over time (each sample holds until the next), so how often
//! anything else happens never weighs in.

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
    /// (when, concurrency), oldest first.
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
    /// The time-weighted mean concurrency over the last `window` before
    /// `now`: each sample counts for as long as it held.
    fn average(&self, now: Instant, window: Duration) -> f64 {
        let start = now.checked_sub(window).unwrap_or(now);
        let mut weighted = 0.0;
        let mut covered = 0.0;
        let mut it = self.samples.iter().peekable();
        while let Some((t, c)) = it.next() {
            let until = it.peek().map_or(now, |(next, _)| *next);
            let from = (*t).max(start);
            if until > from {
                let dt = (until - from).as_secs_f64();
                weighted += c * dt;
                covered += dt;
            }
        }
        if covered > 0.0 {
            weighted / covered
        } else {
            // A single sample at `now`: it is all there is.
            self.samples.back().map_or(0.0, |(_, c)| *c)
        }
    }

    /// Records the concurrency at `now` (the engine's one-second tick) and
    /// decides. `current` is the number of sandboxes the function has
    /// (idle, busy or booting).
    pub fn observe(
        &mut self,
        now: Instant,
        concurrency: f64,
        current: u32,
        min_warm: u32,
        max_concurrency: u32,
    ) -> Decision {
        self.samples.push_back((now, concurrency));
        // Keep the sample that covers the window's start.
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= STABLE_WINDOW)
        {
            self.samples.pop_front();
        }
        let stable = self.average(now, STABLE_WINDOW);
        let panic = self.average(now, PANIC_WINDOW);
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

    /// The average is over time, not over samples: extra samples at one
    /// moment (of a bursty second) do not outweigh the rest of the minute.
    #[test]
    fn averages_over_time_not_over_samples() {
        let t = Instant::now();
        let mut a = Autoscaler::default();
        run(&mut a, t, 0..59, 0.0, 1);
        // Sixty samples of 10 within one millisecond, then the tick goes on.
        for i in 0..60 {
            a.observe(
                t + Duration::from_secs(59) + Duration::from_micros(i),
                10.0,
                1,
                0,
                100,
            );
        }
        let d = a.observe(t + Duration::from_secs(60), 0.0, 1, 0, 100);
        // Together they held for one second of the minute: 10 / 60. Counted
        // per sample it would have been 10 * 60 / 120 = 5.
        assert!((d.stable_concurrency - 10.0 / 60.0).abs() < 0.01, "{d:?}");
        let mut b = Autoscaler::default();
        run(&mut b, t, 0..30, 2.0, 1);
        let d = run(&mut b, t, 30..60, 4.0, 1);
        // 30 s at 2 then 30 s at 4 (the last sample has held 0 s yet).
        assert!((d.stable_concurrency - 3.0).abs() < 0.1, "{d:?}");
    }

    #[test]
    fn panics_when_load_doubles_and_holds() {
        let mut a = Autoscaler::default();
        let t = Instant::now();
        run(&mut a, t, 0..60, 2.0, 2);
        // Load jumps to 10 for 3 s: the stable average barely moves, the
        // panic window sees it.
        let d = run(&mut a, t, 60..64, 10.0, 2);
        assert!(d.panicking, "{d:?}");
        assert!(d.desired >= 6, "{d:?}");
        let peak = d.desired;
        // Load drops: no scale-down while panicking (the burst's last
        // second still enters the window: it may even go up).
        let mut last = peak;
        for s in 64..70 {
            let d = a.observe(t + Duration::from_secs(s), 1.0, last, 0, 100);
            assert!(d.panicking);
            assert!(d.desired >= last, "{d:?} after {last}");
            last = d.desired;
        }
        // A minute later the panic is over and the stable window rules.
        let d = run(&mut a, t, 70..200, 1.0, last);
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
