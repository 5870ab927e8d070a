//! Where the server's share of a warm call goes: the time of each stage of
//! a call on the server's clock, summed over calls (`--stage-timings`; off
//! by default, when a stage costs one relaxed load and nothing else).
//!
//! Exposed on `/metrics` as `ignis_call_stage_seconds_total{stage}` and
//! `ignis_call_stage_calls_total{stage}`: their ratio is a stage's mean.
//! What happens inside hyper (reading and parsing the request, writing the
//! response) is before the first and after the last stage; a profile shows
//! it (docs/performance.md).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// One stage of a call, in the order a call crosses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The authentication middleware: credentials checked, the route's
    /// permission decided.
    Authorize,
    /// The handler up to the engine: the function looked up, the body read,
    /// the event checked.
    Handler,
    /// The engine's queue: enqueued, the dispatch decided, the batch's task
    /// spawned and started.
    Queue,
    /// The `invoke` line encoded and written to the channel.
    Write,
    /// From the write to the result read: the sandbox's round trip,
    /// the bootstrap's time included.
    Sandbox,
    /// From the result read to the handler holding the outcome: the answer
    /// built and the waiting handler woken.
    Answer,
    /// The outcome turned into the HTTP response (status, headers, body).
    Respond,
    /// After the answer: the sandbox released to the pool and the record
    /// sent to the writer.
    Record,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Authorize,
        Stage::Handler,
        Stage::Queue,
        Stage::Write,
        Stage::Sandbox,
        Stage::Answer,
        Stage::Respond,
        Stage::Record,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Authorize => "authorize",
            Stage::Handler => "handler",
            Stage::Queue => "queue",
            Stage::Write => "write",
            Stage::Sandbox => "sandbox",
            Stage::Answer => "answer",
            Stage::Respond => "respond",
            Stage::Record => "record",
        }
    }
}

/// Sums and counts per stage, lock-free.
#[derive(Debug, Default)]
pub struct Stages {
    enabled: AtomicBool,
    nanos: [AtomicU64; 8],
    calls: [AtomicU64; 8],
}

impl Stages {
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Now, when stages are timed (the start of a stage).
    pub fn start(&self) -> Option<Instant> {
        self.enabled().then(Instant::now)
    }

    /// Ends `stage`, begun at `from` (nothing when `from` is `None`), and
    /// returns now: the start of the next stage.
    pub fn end(&self, stage: Stage, from: Option<Instant>) -> Option<Instant> {
        let from = from?;
        let now = Instant::now();
        self.add(stage, now.saturating_duration_since(from));
        Some(now)
    }

    /// Counts one call's `stage` as taking `d`.
    pub fn add(&self, stage: Stage, d: std::time::Duration) {
        let i = stage as usize;
        self.nanos[i].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// (stage, total seconds, calls), for stages that saw a call.
    pub fn totals(&self) -> Vec<(Stage, f64, u64)> {
        Stage::ALL
            .iter()
            .map(|&s| {
                let i = s as usize;
                (
                    s,
                    self.nanos[i].load(Ordering::Relaxed) as f64 / 1e9,
                    self.calls[i].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, _, n)| *n > 0)
            .collect()
    }

    /// The two counter families in the Prometheus text format (nothing when
    /// stages are not timed).
    pub fn encode(&self, out: &mut String) {
        if !self.enabled() {
            return;
        }
        let totals = self.totals();
        let _ = writeln!(
            out,
            "# HELP ignis_call_stage_seconds Time calls spent in each stage on the server (--stage-timings).\n# TYPE ignis_call_stage_seconds counter"
        );
        for (s, secs, _) in &totals {
            let _ = writeln!(
                out,
                "ignis_call_stage_seconds_total{{stage=\"{}\"}} {secs:.9}",
                s.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP ignis_call_stage_calls Calls counted in each stage (--stage-timings).\n# TYPE ignis_call_stage_calls counter"
        );
        for (s, _, n) in &totals {
            let _ = writeln!(
                out,
                "ignis_call_stage_calls_total{{stage=\"{}\"}} {n}",
                s.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn off_by_default_and_nothing_is_counted() {
        let s = Stages::default();
        assert!(s.start().is_none());
        assert!(s.end(Stage::Queue, None).is_none());
        let mut out = String::new();
        s.encode(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn sums_and_counts_per_stage() {
        let s = Stages::default();
        s.enable();
        s.add(Stage::Queue, Duration::from_micros(10));
        s.add(Stage::Queue, Duration::from_micros(30));
        s.add(Stage::Write, Duration::from_micros(5));
        let start = s.start();
        assert!(s.end(Stage::Record, start).is_some());
        let t = s.totals();
        assert_eq!(t[0].0, Stage::Queue);
        assert!((t[0].1 - 40e-6).abs() < 1e-12);
        assert_eq!(t[0].2, 2);
        let mut out = String::new();
        s.encode(&mut out);
        assert!(out.contains("ignis_call_stage_seconds_total{stage=\"queue\"} 0.000040000"));
        assert!(out.contains("ignis_call_stage_calls_total{stage=\"write\"} 1"));
        assert!(out.contains("ignis_call_stage_calls_total{stage=\"record\"} 1"));
    }
}
