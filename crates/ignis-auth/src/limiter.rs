//! Failed authentications are rate-limited per client address: a token
//! bucket per address; every failure takes a token, and an address with
//! none left is refused (429 with `Retry-After`) until one has refilled.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Buckets kept before full ones are forgotten.
const MAX_TRACKED: usize = 10_000;

pub struct FailureLimiter {
    burst: f64,
    per_ms: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl FailureLimiter {
    /// `burst` failures at once, then `per_minute` more each minute.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_ms: f64::from(per_minute.max(1)) / 60_000.0,
            buckets: Mutex::default(),
        }
    }

    fn refill(&self, b: &mut Bucket, now_ms: i64) {
        let elapsed = (now_ms - b.at_ms).max(0) as f64;
        b.tokens = (b.tokens + elapsed * self.per_ms).min(self.burst);
        b.at_ms = now_ms;
    }

    /// `Err(seconds to wait)` when `ip` has no failures left.
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = buckets.get_mut(&ip) else {
            return Ok(());
        };
        self.refill(b, now_ms);
        if b.tokens >= 1.0 {
            Ok(())
        } else {
            let wait_ms = (1.0 - b.tokens) / self.per_ms;
            Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
        }
    }

    /// Counts a failed authentication from `ip`.
    pub fn fail(&self, ip: IpAddr, now_ms: i64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            let burst = self.burst;
            let per_ms = self.per_ms;
            buckets.retain(|_, b| b.tokens + (now_ms - b.at_ms).max(0) as f64 * per_ms < burst);
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        });
        self.refill(b, now_ms);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_burst_and_recovers() {
        let l = FailureLimiter::new(3, 60); // one more per second
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(ip, 0).is_ok());
            l.fail(ip, 0);
        }
        assert_eq!(l.check(ip, 0), Err(1));
        assert!(l.check(other, 0).is_ok(), "addresses are limited apart");
        assert_eq!(l.check(ip, 500), Err(1));
        assert!(l.check(ip, 1000).is_ok());
        l.fail(ip, 1000);
        assert!(l.check(ip, 1000).is_err());
        assert!(l.check(ip, 10_000).is_ok());
    }
}
