//! In-memory aggregation: per function and system-wide, one bucket per
//! second over the last 15 minutes. Windows, time series and per-minute
//! rollups are merges of buckets.

use std::collections::{BTreeMap, HashMap, VecDeque};

pub use ignis_core::Scope;
use ignis_core::{InvocationRecord, InvocationStatus, StartKind};
use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;

/// Seconds kept in memory.
pub const RETENTION_S: i64 = 15 * 60;

/// Counts and latencies of the calls that ended in one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub requests: u64,
    pub success: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub throttled: u64,
    pub cold_starts: u64,
    pub stem_starts: u64,
    pub init_ms_sum: f64,
    pub init_count: u64,
    pub errors_by_type: BTreeMap<String, u64>,
    /// Total duration (arrival to answer) of every call, ms.
    pub latency: Histogram,
    /// CPU time of the calls that measured it, ms, and how many did.
    pub cpu_ms_sum: f64,
    pub cpu_count: u64,
    /// Peak sandbox memory of the calls that measured it, bytes.
    pub memory_bytes_sum: f64,
    pub memory_count: u64,
}

impl Bucket {
    pub fn observe(&mut self, r: &InvocationRecord) {
        self.requests += 1;
        match r.status {
            InvocationStatus::Success => self.success += 1,
            InvocationStatus::Error => self.errors += 1,
            InvocationStatus::Timeout => self.timeouts += 1,
            InvocationStatus::Throttled => self.throttled += 1,
        }
        if let Some(kind) = r.error_type {
            *self
                .errors_by_type
                .entry(kind.as_str().to_string())
                .or_default() += 1;
        }
        match r.start {
            Some(StartKind::Cold) => self.cold_starts += 1,
            Some(StartKind::Stem) => self.stem_starts += 1,
            _ => {}
        }
        if let Some(init) = r.init_ms {
            self.init_ms_sum += init;
            self.init_count += 1;
        }
        self.latency.record(r.total_ms);
        if let Some(cpu) = r.cpu_ms {
            self.cpu_ms_sum += cpu;
            self.cpu_count += 1;
        }
        if let Some(mem) = r.peak_memory_bytes {
            self.memory_bytes_sum += mem as f64;
            self.memory_count += 1;
        }
    }

    pub fn merge(&mut self, o: &Bucket) {
        self.requests += o.requests;
        self.success += o.success;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.throttled += o.throttled;
        self.cold_starts += o.cold_starts;
        self.stem_starts += o.stem_starts;
        self.init_ms_sum += o.init_ms_sum;
        self.init_count += o.init_count;
        for (k, v) in &o.errors_by_type {
            *self.errors_by_type.entry(k.clone()).or_default() += v;
        }
        self.latency.merge(&o.latency);
        self.cpu_ms_sum += o.cpu_ms_sum;
        self.cpu_count += o.cpu_count;
        self.memory_bytes_sum += o.memory_bytes_sum;
        self.memory_count += o.memory_count;
    }

    /// Calls that did not succeed (errors, timeouts, throttles).
    pub fn failed(&self) -> u64 {
        self.errors + self.timeouts + self.throttled
    }

    pub fn stats(&self, seconds: f64) -> WindowStats {
        let executed = self.requests - self.throttled;
        WindowStats {
            requests: self.requests,
            rps: if seconds > 0.0 {
                self.requests as f64 / seconds
            } else {
                0.0
            },
            success: self.success,
            errors: self.failed(),
            error_rate: ratio(self.failed(), self.requests),
            errors_by_type: self.errors_by_type.clone(),
            timeouts: self.timeouts,
            throttled: self.throttled,
            cold_starts: self.cold_starts + self.stem_starts,
            stem_starts: self.stem_starts,
            cold_start_rate: ratio(self.cold_starts + self.stem_starts, executed),
            p50_ms: self.latency.quantile(0.50),
            p90_ms: self.latency.quantile(0.90),
            p99_ms: self.latency.quantile(0.99),
            max_ms: (self.latency.count() > 0).then(|| self.latency.max()),
            mean_ms: self.latency.mean(),
            mean_init_ms: (self.init_count > 0).then(|| self.init_ms_sum / self.init_count as f64),
            // Little's law: time spent in calls over the window's length.
            concurrency: if seconds > 0.0 {
                self.latency.mean().unwrap_or(0.0) * self.latency.count() as f64 / (seconds * 1e3)
            } else {
                0.0
            },
            mean_cpu_ms: (self.cpu_count > 0).then(|| self.cpu_ms_sum / self.cpu_count as f64),
            mean_peak_memory_bytes: (self.memory_count > 0)
                .then(|| self.memory_bytes_sum / self.memory_count as f64),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// What the summary and the time series report for an interval.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowStats {
    pub requests: u64,
    pub rps: f64,
    pub success: u64,
    /// Calls that did not succeed: errors, timeouts and throttles.
    pub errors: u64,
    pub error_rate: f64,
    pub errors_by_type: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub throttled: u64,
    /// Cold starts, stem-cell starts included.
    pub cold_starts: u64,
    pub stem_starts: u64,
    /// Cold starts over calls that ran (throttled calls never ran).
    pub cold_start_rate: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub mean_init_ms: Option<f64>,
    /// Calls in flight on average over the window (total call time / window).
    pub concurrency: f64,
    /// CPU time per call, where the backend measures it (calls of 1 ms or
    /// more), ms.
    pub mean_cpu_ms: Option<f64>,
    /// Peak sandbox memory per call, where measured, bytes.
    pub mean_peak_memory_bytes: Option<f64>,
}

#[derive(Debug, Default)]
struct Series {
    /// (unix second, bucket), oldest first.
    ring: VecDeque<(i64, Bucket)>,
}

impl Series {
    fn bucket(&mut self, second: i64) -> &mut Bucket {
        // Records arrive nearly in order; an older second is searched for.
        let pos = self.ring.iter().rposition(|(s, _)| *s <= second);
        match pos {
            Some(i) if self.ring[i].0 == second => &mut self.ring[i].1,
            Some(i) => {
                self.ring.insert(i + 1, (second, Bucket::default()));
                &mut self.ring[i + 1].1
            }
            None => {
                self.ring.push_front((second, Bucket::default()));
                &mut self.ring[0].1
            }
        }
    }

    fn prune(&mut self, oldest: i64) {
        while self.ring.front().is_some_and(|(s, _)| *s < oldest) {
            self.ring.pop_front();
        }
    }

    fn merged(&self, from: i64, to: i64) -> Bucket {
        let mut b = Bucket::default();
        for (_, x) in self.ring.iter().filter(|(s, _)| *s >= from && *s < to) {
            b.merge(x);
        }
        b
    }
}

/// Most recent failed calls kept for the console's error feed.
pub const RECENT_ERRORS: usize = 200;

/// A failed call (an error or a timeout), for the error feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentError {
    pub namespace: String,
    pub function: String,
    /// The invocation id (its record holds the stack and logs).
    pub id: String,
    /// When the call arrived, Unix ms.
    pub at_ms: i64,
    pub error_type: String,
    pub message: String,
}

/// Per-second buckets for the system and each function.
#[derive(Debug, Default)]
pub struct Aggregator {
    system: Series,
    series: HashMap<String, Series>,
    /// Newest last.
    recent_errors: VecDeque<RecentError>,
    /// When each function (by label) was last called, Unix ms: kept past
    /// the 15 minutes of series, for as long as the server runs.
    last_call_ms: HashMap<String, i64>,
}

impl Aggregator {
    /// The newest failed calls, newest first.
    pub fn recent_errors(&self) -> impl Iterator<Item = &RecentError> {
        self.recent_errors.iter().rev()
    }

    /// Counts a finished call in the second it ended.
    pub fn observe(&mut self, r: &InvocationRecord) {
        if matches!(
            r.status,
            InvocationStatus::Error | InvocationStatus::Timeout
        ) {
            if self.recent_errors.len() >= RECENT_ERRORS {
                self.recent_errors.pop_front();
            }
            self.recent_errors.push_back(RecentError {
                namespace: r.namespace.clone(),
                function: r.function.clone(),
                id: r.id.clone(),
                at_ms: r.started_at_ms,
                error_type: r.error_type.map_or("Error", |k| k.as_str()).to_string(),
                message: r.error_message.clone().unwrap_or_default(),
            });
        }
        let second = (r.started_at_ms + r.total_ms as i64).div_euclid(1000);
        self.system.bucket(second).observe(r);
        // No allocation for a function already in memory (the common case).
        let label = r.label();
        match self.last_call_ms.get_mut(&*label) {
            Some(t) => *t = (*t).max(r.started_at_ms),
            None => {
                self.last_call_ms.insert(label.to_string(), r.started_at_ms);
            }
        }
        match self.series.get_mut(&*label) {
            Some(series) => series.bucket(second).observe(r),
            None => self
                .series
                .entry(label.into_owned())
                .or_default()
                .bucket(second)
                .observe(r),
        }
        let oldest = second - RETENTION_S;
        if self.system.ring.front().is_some_and(|(t, _)| *t < oldest) {
            self.system.prune(oldest);
            for s in self.series.values_mut() {
                s.prune(oldest);
            }
            self.series.retain(|_, s| !s.ring.is_empty());
        }
    }

    /// Merged bucket of `scope` over seconds `[from, to)`.
    pub fn window(&self, scope: &Scope, from: i64, to: i64) -> Bucket {
        let series = match scope {
            Scope::System => Some(&self.system),
            Scope::Function(f) => self.series.get(f),
        };
        series.map(|s| s.merged(from, to)).unwrap_or_default()
    }

    /// When the function labelled `label` was last called since the
    /// server started (Unix ms).
    pub fn last_call_ms(&self, label: &str) -> Option<i64> {
        self.last_call_ms.get(label).copied()
    }

    /// Forgets a deleted function's last call.
    pub fn forget(&mut self, label: &str) {
        self.last_call_ms.remove(label);
    }

    /// Functions with calls in memory.
    pub fn functions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.series.keys().cloned().collect();
        v.sort();
        v
    }

    /// Per-minute merges of every complete minute in `[from_minute, to_minute)`.
    pub fn minutes(&self, from_minute: i64, to_minute: i64) -> Vec<(Scope, i64, Bucket)> {
        let mut out = Vec::new();
        let all = std::iter::once((Scope::System, &self.system)).chain(
            self.series
                .iter()
                .map(|(name, s)| (Scope::Function(name.clone()), s)),
        );
        for (scope, s) in all {
            let mut by_minute: BTreeMap<i64, Bucket> = BTreeMap::new();
            for (sec, b) in &s.ring {
                let m = sec.div_euclid(60);
                if m >= from_minute && m < to_minute {
                    by_minute.entry(m).or_default().merge(b);
                }
            }
            out.extend(by_minute.into_iter().map(|(m, b)| (scope.clone(), m, b)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ignis_core::ErrorKind;

    fn rec(function: &str, at_ms: i64, total: f64, err: Option<ErrorKind>) -> InvocationRecord {
        InvocationRecord {
            status: InvocationStatus::from_error(err),
            error_type: err,
            ..InvocationRecord::success(function, "", at_ms, total)
        }
    }

    #[test]
    fn windows_and_minutes() {
        let mut a = Aggregator::default();
        let t0 = 1_700_000_000_000;
        for i in 0..100 {
            let err = match i % 10 {
                0 => Some(ErrorKind::FunctionError),
                1 if i < 30 => Some(ErrorKind::Timeout),
                _ => None,
            };
            a.observe(&rec("f", t0 + i * 1000, (i + 1) as f64, err));
        }
        a.observe(&rec("g", t0, 5.0, None));
        let all = a.window(&Scope::System, t0 / 1000, t0 / 1000 + 200);
        assert_eq!(all.requests, 101);
        let f = a
            .window(&Scope::function("f"), t0 / 1000, t0 / 1000 + 200)
            .stats(100.0);
        assert_eq!(f.requests, 100);
        assert_eq!(f.timeouts, 3);
        assert_eq!(f.errors_by_type["FunctionError"], 10);
        assert_eq!(f.errors, 13);
        let p50 = f.p50_ms.unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        let minutes = a.minutes(0, i64::MAX);
        let f_total: u64 = minutes
            .iter()
            .filter(|(n, _, _)| *n == Scope::function("f"))
            .map(|(_, _, b)| b.requests)
            .sum();
        assert_eq!(f_total, 100);
        assert_eq!(a.functions(), vec!["f", "g"]);
    }
}
