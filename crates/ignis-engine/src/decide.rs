//! The dispatch decision: what to do next with a function's queued calls,
//! as a pure function of its queue, its pools and the host's capacity. The
//! engine applies the decision under its lock and starts the tasks it
//! implies after releasing it.

use std::time::Duration;

use tokio::time::Instant;

use crate::stems::StemAvailability;

/// A function's queue and pools, as the decision sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FnView {
    pub queued: usize,
    /// When the oldest queued call arrived.
    pub oldest: Option<Instant>,
    /// Initialized sandboxes waiting for calls.
    pub idle: usize,
    /// Sandboxes booting, initializing or running calls.
    pub active: usize,
    pub batch_max: usize,
    /// How long a partial batch may wait for more calls.
    pub batch_wait: Duration,
    pub max_concurrency: usize,
}

/// What the host can offer a cold call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub stem: StemAvailability,
    /// The function's backend is backed off for this long.
    pub backoff: Option<Duration>,
    /// The memory of a new sandbox fits in the budget (possibly after
    /// evicting idle sandboxes of other functions and stem cells).
    pub memory_fits: bool,
}

/// The next step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dispatch {
    /// Nothing is queued.
    Nothing,
    /// Send the first `take` calls to the most recently used idle sandbox.
    Warm { take: usize },
    /// A partial batch waits for more calls until `until`.
    HoldBatch { until: Instant },
    /// Initialize a stem cell with the function and run the first `take`.
    Stem { take: usize },
    /// Boot a new sandbox for the first `take` calls.
    Cold { take: usize },
    /// No sandbox can take the calls now: they wait (their queue timeout
    /// bounds that), and capacity freed later pumps them.
    Wait,
    /// The backend is failing and nothing of the function runs that could
    /// take the calls later: fail them all now.
    FailAll { retry_after: Duration },
}

/// The decision.
pub fn next_action(f: &FnView, c: &Capacity, now: Instant) -> Dispatch {
    if f.queued == 0 {
        return Dispatch::Nothing;
    }
    let take = f.batch_max.max(1).min(f.queued);
    if f.idle > 0 {
        // Hold a partial batch back for up to batch_wait so that more
        // calls can join it.
        if f.batch_max > 1 && !f.batch_wait.is_zero() && f.queued < f.batch_max {
            if let Some(until) = f.oldest.map(|t| t + f.batch_wait).filter(|u| *u > now) {
                return Dispatch::HoldBatch { until };
            }
        }
        return Dispatch::Warm { take };
    }
    if f.active >= f.max_concurrency {
        return Dispatch::Wait;
    }
    if c.stem == StemAvailability::Ready {
        return Dispatch::Stem { take };
    }
    if let Some(retry_after) = c.backoff {
        return if f.active == 0 {
            Dispatch::FailAll { retry_after }
        } else {
            Dispatch::Wait
        };
    }
    if c.memory_fits {
        Dispatch::Cold { take }
    } else {
        Dispatch::Wait
    }
}

/// Whether a stem pool failed this function: it needed a new sandbox and
/// could not take a stem cell (the pool grows on misses).
pub fn stem_missed(f: &FnView, c: &Capacity) -> bool {
    f.queued > 0 && f.idle == 0 && f.active < f.max_concurrency && c.stem != StemAvailability::Ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use StemAvailability::{Ready, Unavailable};

    fn view(queued: usize, idle: usize, active: usize) -> FnView {
        FnView {
            queued,
            oldest: None,
            idle,
            active,
            batch_max: 1,
            batch_wait: Duration::ZERO,
            max_concurrency: 2,
        }
    }

    fn cap(stem: StemAvailability, backoff: Option<u64>, memory_fits: bool) -> Capacity {
        Capacity {
            stem,
            backoff: backoff.map(Duration::from_millis),
            memory_fits,
        }
    }

    /// Every combination of queue, idle, concurrency, stem, back-off and
    /// memory, against the rules written out once more, plainly.
    #[test]
    fn the_whole_table() {
        let now = Instant::now();
        let mut cases = 0;
        for queued in [0, 1, 3] {
            for idle in [0, 1] {
                for active in [0, 1, 2] {
                    for stem in [Ready, Unavailable] {
                        for backoff in [None, Some(500)] {
                            for memory in [true, false] {
                                let f = view(queued, idle, active);
                                let c = cap(stem, backoff, memory);
                                let expected = if queued == 0 {
                                    Dispatch::Nothing
                                } else if idle > 0 {
                                    Dispatch::Warm { take: 1 }
                                } else if active >= 2 {
                                    Dispatch::Wait
                                } else if stem == Ready {
                                    Dispatch::Stem { take: 1 }
                                } else if let Some(ms) = backoff {
                                    if active == 0 {
                                        Dispatch::FailAll {
                                            retry_after: Duration::from_millis(ms),
                                        }
                                    } else {
                                        Dispatch::Wait
                                    }
                                } else if memory {
                                    Dispatch::Cold { take: 1 }
                                } else {
                                    Dispatch::Wait
                                };
                                assert_eq!(next_action(&f, &c, now), expected, "{f:?} {c:?}");
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 144);
    }

    #[test]
    fn batches_take_up_to_their_size_and_partial_ones_wait_their_time() {
        let now = Instant::now();
        let c = cap(Ready, None, true);
        let batching = |queued, idle| FnView {
            queued,
            oldest: Some(now),
            idle,
            active: 0,
            batch_max: 8,
            batch_wait: Duration::from_millis(10),
            max_concurrency: 4,
        };
        assert_eq!(
            next_action(&batching(20, 1), &c, now),
            Dispatch::Warm { take: 8 }
        );
        assert_eq!(
            next_action(&batching(3, 1), &c, now),
            Dispatch::HoldBatch {
                until: now + Duration::from_millis(10)
            }
        );
        // Its time is up: it goes as it is.
        assert_eq!(
            next_action(&batching(3, 1), &c, now + Duration::from_millis(10)),
            Dispatch::Warm { take: 3 }
        );
        // No idle sandbox: a new one takes the partial batch at once.
        assert_eq!(
            next_action(&batching(3, 0), &c, now),
            Dispatch::Stem { take: 3 }
        );
    }

    #[test]
    fn a_miss_is_a_cold_need_without_a_stem_cell() {
        assert!(stem_missed(&view(1, 0, 0), &cap(Unavailable, None, true)));
        assert!(!stem_missed(&view(1, 0, 0), &cap(Ready, None, true)));
        assert!(!stem_missed(&view(1, 1, 0), &cap(Unavailable, None, true)));
        assert!(!stem_missed(&view(1, 0, 2), &cap(Unavailable, None, true)));
        assert!(!stem_missed(&view(0, 0, 0), &cap(Unavailable, None, true)));
    }
}
