//! Load, soak, overload and noisy neighbour (issue #15), driven by a real
//! load generator: `hey` (Debian's package), whose per-worker rate limit
//! gives an offered rate, and whose summary gives the status codes, the
//! client-side errors (refused, reset, timed out) and the percentiles.
//!
//! - **capacity**: the highest offered rate served with zero errors, every
//!   answer a 200 and p99 under 50 ms (doubling, then bisecting);
//! - **soak** at 70% of it in one-minute segments, after a warm-up at the
//!   same rate that lasts until the server's in-memory metrics window (15
//!   minutes of per-second buckets, `ignis_metrics::aggregate::RETENTION_S`)
//!   is full, since until then its memory grows by design: no failed call,
//!   p99 of the last minute within 1.5x of the first, the server's RSS
//!   within 10% of the first minute's and its open descriptors not above
//!   it by more than 10% (fewer is sandboxes scaled in, not a leak), and
//!   the SQLite file flat once the record bound is passed;
//! - **overload** at 2x capacity, with many more connections than the
//!   function's queue holds: only 200 and 429, no error, no hang; then
//!   one-second probes at the capacity rate until the server is back;
//! - **noisy neighbour**: a CPU-bound function saturated far past its
//!   concurrency while a light function is called at a modest rate.
//!
//! `--short` (CI) runs each for seconds and enforces the properties that do
//! not depend on timing (no failed call, nothing but 200/429, the server
//! answers again after the overload, the light function unharmed); the full
//! run enforces every threshold too. Either way the report lists every
//! check with its figure, and the run fails if one fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::json;

use crate::{bench_key, deploy_with, start_server, Runtime, Server, RUNTIMES};

/// p99 above this is not "served" when looking for the capacity.
const CAPACITY_P99_MS: f64 = 50.0;
/// The per-function queue of the server under test: far fewer than the
/// overload's connections, so that the overload meets the throttle.
const QUEUE_CAPACITY: &str = "128";
/// The record bound of the server under test, small enough that a soak
/// passes it twice over, so that the file's bound is observed rather than
/// assumed (full run, short run).
const MAX_INVOCATIONS: (u64, u64) = (100_000, 5_000);

/// What one `hey` run saw.
#[derive(Debug, Clone, Serialize)]
pub struct HeyRun {
    pub offered_rps: Option<f64>,
    pub concurrency: usize,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub slowest_ms: f64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (refused, reset, timed out).
    pub errors: u64,
    /// The errors' messages, as `hey` groups them.
    pub error_kinds: Vec<String>,
}

impl HeyRun {
    fn answers(&self) -> u64 {
        self.statuses.values().sum()
    }
    fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
    /// Every request answered with 200.
    fn clean(&self) -> bool {
        self.errors == 0 && self.status(200) == self.answers() && self.answers() > 0
    }
    fn other_than(&self, ok: &[u16]) -> u64 {
        self.statuses
            .iter()
            .filter(|(c, _)| !ok.contains(c))
            .map(|(_, n)| n)
            .sum()
    }
}

/// One target of the load: a URL that answers a POST of `{}`.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    /// `POST` (with the body `{}`) or `GET`.
    pub(crate) method: &'static str,
}

/// Runs `hey` against `target` for `seconds` with `concurrency` workers,
/// at `rate` requests per second in all (None: as fast as it answers).
pub(crate) fn hey(
    target: &Target,
    concurrency: usize,
    rate: Option<f64>,
    seconds: f64,
) -> anyhow::Result<HeyRun> {
    let mut cmd = Command::new("hey");
    cmd.arg("-z")
        .arg(format!("{}ms", (seconds * 1e3) as u64))
        .arg("-c")
        .arg(concurrency.to_string())
        .args(["-m", target.method, "-t", "20"]);
    if target.method == "POST" {
        cmd.args(["-T", "application/json", "-d", "{}"]);
    }
    cmd.arg("-H")
        .arg(format!("Authorization: Bearer {}", bench_key().expose()));
    if let Some(rate) = rate {
        cmd.arg("-q")
            .arg(format!("{:.3}", rate / concurrency as f64));
    }
    let out = cmd
        .arg(&target.url)
        .output()
        .context("running hey (Debian's package `hey`; bench/run.sh installs it)")?;
    if !out.status.success() {
        bail!("hey failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut run = parse_hey(&String::from_utf8_lossy(&out.stdout))?;
    run.offered_rps = rate;
    run.concurrency = concurrency;
    Ok(run)
}

/// Reads `hey`'s summary: totals, latency distribution, status codes and
/// error distribution.
fn parse_hey(text: &str) -> anyhow::Result<HeyRun> {
    let mut run = HeyRun {
        offered_rps: None,
        concurrency: 0,
        seconds: 0.0,
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        slowest_ms: f64::NAN,
        statuses: BTreeMap::new(),
        errors: 0,
        error_kinds: Vec::new(),
    };
    let secs = |s: &str| -> f64 {
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let mut section = "";
    for line in text.lines() {
        let l = line.trim();
        if l.ends_with(':') && !l.contains('\t') {
            section = l;
            continue;
        }
        if let Some(v) = l.strip_prefix("Total:") {
            run.seconds = secs(v);
        } else if let Some(v) = l.strip_prefix("Slowest:") {
            run.slowest_ms = secs(v) * 1e3;
        } else if let Some(v) = l.strip_prefix("Requests/sec:") {
            run.rps = secs(v);
        } else if section == "Latency distribution:" {
            // "99% in 0.0102 secs"
            if let Some((p, v)) = l.split_once("% in ") {
                match p {
                    "50" => run.p50_ms = secs(v) * 1e3,
                    "99" => run.p99_ms = secs(v) * 1e3,
                    _ => {}
                }
            }
        } else if let Some(rest) = l.strip_prefix('[') {
            // "[200]\t12491 responses" or "[3]\tPost "...": dial tcp ..."
            let Some((n, tail)) = rest.split_once(']') else {
                continue;
            };
            let n: u64 = n.trim().parse().unwrap_or(0);
            let tail = tail.trim();
            match section {
                "Status code distribution:" => {
                    let code: u16 = rest[..rest.find(']').unwrap_or(0)].trim().parse()?;
                    let count: u64 = tail.split_whitespace().next().unwrap_or("0").parse()?;
                    *run.statuses.entry(code).or_default() += count;
                }
                "Error distribution:" => {
                    run.errors += n;
                    run.error_kinds.push(tail.chars().take(200).collect());
                }
                _ => {}
            }
        }
    }
    if run.seconds.is_nan() || run.seconds == 0.0 {
        bail!("hey printed no summary:\n{text}");
    }
    Ok(run)
}

/// Workers for an offered rate: enough that each has 20 ms per request.
fn workers_for(rate: f64) -> usize {
    ((rate / 50.0).ceil() as usize).clamp(16, 512)
}

fn served(r: &HeyRun) -> bool {
    r.clean() && r.p99_ms <= CAPACITY_P99_MS && r.offered_rps.is_none_or(|o| r.rps >= 0.95 * o)
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub target: String,
    pub rps: f64,
    pub p99_ms: f64,
    pub steps: Vec<HeyRun>,
}

/// Doubles the offered rate until it is not served, then bisects.
fn capacity(target: &Target, step_s: f64, bisections: usize) -> anyhow::Result<Capacity> {
    let mut steps = Vec::new();
    let mut rate = 250.0;
    let mut best: Option<(f64, f64)> = None;
    let mut fail = None;
    while rate <= 64_000.0 {
        let r = hey(target, workers_for(rate), Some(rate), step_s)?;
        let ok = served(&r);
        eprintln!(
            "  {} at {rate:.0}/s: {:.0}/s p99 {:.1} ms {:?} errors {} -> {}",
            target.name,
            r.rps,
            r.p99_ms,
            r.statuses,
            r.errors,
            if ok { "served" } else { "not served" }
        );
        steps.push(r.clone());
        if !ok {
            fail = Some(rate);
            break;
        }
        best = Some((rate, r.p99_ms));
        rate *= 2.0;
    }
    let (mut lo, mut hi) = (best.map_or(0.0, |b| b.0), fail.unwrap_or(rate));
    for _ in 0..bisections {
        if lo == 0.0 {
            break;
        }
        let mid = (lo + hi) / 2.0;
        let r = hey(target, workers_for(mid), Some(mid), step_s)?;
        let ok = served(&r);
        eprintln!(
            "  {} at {mid:.0}/s: {:.0}/s p99 {:.1} ms errors {} -> {}",
            target.name,
            r.rps,
            r.p99_ms,
            r.errors,
            if ok { "served" } else { "not served" }
        );
        steps.push(r.clone());
        if ok {
            lo = mid;
            best = Some((mid, r.p99_ms));
        } else {
            hi = mid;
        }
    }
    let Some((rps, p99_ms)) = best else {
        bail!(
            "{} served not even 250 calls/s with p99 under {CAPACITY_P99_MS} ms",
            target.name
        )
    };
    Ok(Capacity {
        target: target.name.into(),
        rps,
        p99_ms,
        steps,
    })
}

/// The server's resident memory (KiB) and open descriptors.
fn process_figures(pid: u32) -> anyhow::Result<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok((rss, fds))
}

/// The database's size on disk: the file and its write-ahead log.
fn db_bytes(dir: &Path) -> u64 {
    ["ignis.db", "ignis.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[derive(Debug, Serialize)]
pub struct SoakSegment {
    pub run: HeyRun,
    pub rss_kib: u64,
    pub fds: usize,
    pub db_bytes: u64,
    pub calls_so_far: u64,
}

#[derive(Debug, Serialize)]
pub struct Soak {
    pub rate: f64,
    pub segment_s: f64,
    pub segments: Vec<SoakSegment>,
    pub failed_calls: u64,
    pub p99_first_ms: f64,
    pub p99_last_ms: f64,
    /// Seconds of load at the soak's rate before its first segment.
    pub warm_up_s: f64,
    pub rss_drift: f64,
    pub fd_drift: f64,
    /// The file at the end over the file when the record bound was first
    /// passed twice over (None when the soak never got there).
    pub db_growth_after_bound: Option<f64>,
}

fn soak(
    target: &Target,
    server: &Server,
    rate: f64,
    (segment_s, segments): (f64, usize),
    max_invocations: u64,
    warm_up: bool,
) -> anyhow::Result<Soak> {
    // Warm-up: until the in-memory metrics window is full.
    let window = Duration::from_secs(ignis_metrics::aggregate::RETENTION_S as u64 + 30);
    let warm_up = if warm_up {
        window.saturating_sub(server.started.elapsed())
    } else {
        Duration::ZERO
    };
    let mut calls = 0;
    if !warm_up.is_zero() {
        eprintln!(
            "  warm-up at the soak's rate for {:.0} s (the metrics window fills)",
            warm_up.as_secs_f64()
        );
        let w = hey(target, workers_for(rate), Some(rate), warm_up.as_secs_f64())?;
        calls += w.answers() + w.errors;
    }
    let mut out = Vec::new();
    for i in 0..segments {
        let run = hey(target, workers_for(rate), Some(rate), segment_s)?;
        calls += run.answers() + run.errors;
        // The load's connections are closed by then, so that the count
        // is the server's own descriptors.
        std::thread::sleep(Duration::from_millis(300));
        let (rss_kib, fds) = process_figures(server.pid())?;
        let seg = SoakSegment {
            db_bytes: db_bytes(server.dir()),
            run,
            rss_kib,
            fds,
            calls_so_far: calls,
        };
        eprintln!(
            "  soak {}/{segments}: {:.0}/s p99 {:.1} ms {:?} errors {}; rss {} KiB, {} fds, db {} KB",
            i + 1,
            seg.run.rps,
            seg.run.p99_ms,
            seg.run.statuses,
            seg.run.errors,
            seg.rss_kib,
            seg.fds,
            seg.db_bytes / 1000
        );
        out.push(seg);
    }
    let failed_calls = out
        .iter()
        .map(|s| s.run.errors + s.run.other_than(&[200]))
        .sum();
    let (first, last) = (&out[0], &out[out.len() - 1]);
    let drift = |a: f64, b: f64| b / a - 1.0;
    let bound = out.iter().find(|s| s.calls_so_far >= 2 * max_invocations);
    Ok(Soak {
        rate,
        segment_s,
        failed_calls,
        p99_first_ms: first.run.p99_ms,
        p99_last_ms: last.run.p99_ms,
        warm_up_s: warm_up.as_secs_f64(),
        rss_drift: drift(first.rss_kib as f64, last.rss_kib as f64),
        fd_drift: drift(first.fds as f64, last.fds as f64),
        db_growth_after_bound: bound.map(|b| last.db_bytes as f64 / b.db_bytes as f64),
        segments: out,
    })
}

#[derive(Debug, Serialize)]
pub struct Overload {
    /// One-second probes at the capacity rate before the overload: what
    /// "full throughput" is when measured the same way (a 1 s `hey` run
    /// spends part of its second opening connections).
    pub baseline: Vec<HeyRun>,
    pub baseline_rps: f64,
    pub run: HeyRun,
    /// The same probes right after the overload.
    pub probes: Vec<HeyRun>,
    /// Seconds from the end of the overload to the start of the first
    /// probe back to full throughput (every answer a 200, p99 under 50 ms,
    /// at least 90% of the baseline's rate); None if none was.
    pub recovered_after_s: Option<f64>,
    /// Probes back to full throughput, of all probes.
    pub probes_served: usize,
}

fn overload(target: &Target, capacity: f64, seconds: f64) -> anyhow::Result<Overload> {
    let mut baseline = Vec::new();
    for _ in 0..3 {
        baseline.push(hey(target, workers_for(capacity), Some(capacity), 1.0)?);
    }
    let mut rates: Vec<f64> = baseline.iter().map(|p| p.rps).collect();
    rates.sort_by(f64::total_cmp);
    let baseline_rps = rates[1];
    let full = |p: &HeyRun| p.clean() && p.p99_ms <= CAPACITY_P99_MS && p.rps >= 0.9 * baseline_rps;
    eprintln!("  probes before: {rates:?} req/s");
    let run = hey(target, 512, Some(2.0 * capacity), seconds)?;
    eprintln!(
        "  overload at {:.0}/s: {:.0}/s answered {:?} errors {} p99 {:.1} ms slowest {:.0} ms",
        2.0 * capacity,
        run.rps,
        run.statuses,
        run.errors,
        run.p99_ms,
        run.slowest_ms
    );
    let end = Instant::now();
    let mut probes: Vec<(f64, HeyRun)> = Vec::new();
    for _ in 0..10 {
        let at = end.elapsed().as_secs_f64();
        let p = hey(target, workers_for(capacity), Some(capacity), 1.0)?;
        eprintln!(
            "  probe at +{at:.1} s: {:.0}/s p99 {:.1} ms {:?} errors {}",
            p.rps, p.p99_ms, p.statuses, p.errors
        );
        probes.push((at, p));
    }
    let recovered_after_s = probes.iter().find(|(_, p)| full(p)).map(|(at, _)| *at);
    Ok(Overload {
        baseline,
        baseline_rps,
        probes_served: probes.iter().filter(|(_, p)| full(p)).count(),
        run,
        probes: probes.into_iter().map(|(_, p)| p).collect(),
        recovered_after_s,
    })
}

/// The answers by status and the unanswered requests of several runs.
fn totals(runs: &[HeyRun]) -> (BTreeMap<u16, u64>, u64) {
    let mut statuses = BTreeMap::new();
    for r in runs {
        for (code, n) in &r.statuses {
            *statuses.entry(*code).or_default() += n;
        }
    }
    (statuses, runs.iter().map(|r| r.errors).sum())
}

#[derive(Debug, Serialize)]
pub struct Noisy {
    pub light_rate: f64,
    /// Rounds of the light load alone, then beside the saturated function.
    pub light_alone: Vec<HeyRun>,
    pub light_beside: Vec<HeyRun>,
    pub heavy: Vec<HeyRun>,
    /// Medians over the rounds of the windows' p99.
    pub alone_p99_ms: f64,
    pub beside_p99_ms: f64,
    pub p99_ratio: f64,
}

/// The light function alone and beside the saturated one, in alternating
/// rounds: this machine's own latency hiccups (a shared host) move one
/// window's p99 by 2–4x from one minute to the next, so a single window
/// of each compares two moments rather than two loads. The median over
/// interleaved rounds compares the loads.
fn noisy(light: &Target, heavy: &Target, rounds: usize, seconds: f64) -> anyhow::Result<Noisy> {
    let light_rate = 100.0;
    let (mut light_alone, mut light_beside, mut heavies) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let alone = hey(light, 4, Some(light_rate), seconds)?;
        let heavy_thread = {
            let heavy = heavy.clone();
            // Starts the saturation slightly before the light load and ends
            // it after, so the whole light window is beside it.
            std::thread::spawn(move || hey(&heavy, 64, None, seconds + 2.0))
        };
        std::thread::sleep(Duration::from_secs(1));
        let beside = hey(light, 4, Some(light_rate), seconds)?;
        let saturated = heavy_thread
            .join()
            .map_err(|_| anyhow::anyhow!("the heavy load's thread panicked"))??;
        eprintln!(
            "  light p99 alone {:.1} ms, beside the heavy one {:.1} ms (heavy {:.0} req/s)",
            alone.p99_ms, beside.p99_ms, saturated.rps
        );
        light_alone.push(alone);
        light_beside.push(beside);
        heavies.push(saturated);
    }
    let median = |runs: &[HeyRun]| crate::median(runs.iter().map(|r| r.p99_ms).collect());
    let (alone_p99_ms, beside_p99_ms) = (median(&light_alone), median(&light_beside));
    Ok(Noisy {
        light_rate,
        p99_ratio: beside_p99_ms / alone_p99_ms,
        alone_p99_ms,
        beside_p99_ms,
        light_alone,
        light_beside,
        heavy: heavies,
    })
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub what: String,
    pub figure: String,
    /// Enforced in this run (the timing thresholds only in the full run).
    pub enforced: bool,
    pub held: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub short: bool,
    pub ignis: String,
    pub capacities: Vec<Capacity>,
    pub soak: Soak,
    pub overload: Overload,
    pub noisy: Noisy,
    pub checks: Vec<Check>,
}

const HEAVY: Runtime = Runtime {
    backend: "docker",
    name: "python",
    function: "burn-py",
    runtime: "python3",
    handler: "main.handler",
    file: "main.py",
    source: "import time\n\ndef handler(event, context):\n    end = time.monotonic() + 0.05\n    while time.monotonic() < end:\n        pass\n    return {}\n",
    naive: &[],
};

/// The no-op behind an HTTP trigger (answers a proxy response); the
/// warm-path bench uses it too.
pub(crate) const TRIGGER: Runtime = Runtime {
    backend: "docker",
    name: "python",
    function: "noop-trigger",
    runtime: "python3",
    handler: "main.handler",
    file: "main.py",
    source: "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"{}\"}\n",
    naive: &[],
};

/// The same behind an HTTP trigger, in Node.js.
const NODE_TRIGGER: Runtime = Runtime {
    backend: "docker",
    name: "node",
    function: "noop-trigger-js",
    runtime: "nodejs",
    handler: "index.handler",
    file: "index.js",
    source: "exports.handler = async () => ({ statusCode: 200, body: \"{}\" });\n",
    naive: &[],
};

pub async fn run(
    http: &reqwest::Client,
    ignis: &Path,
    out: &Path,
    short: bool,
) -> anyhow::Result<bool> {
    let max_invocations = if short {
        MAX_INVOCATIONS.1
    } else {
        MAX_INVOCATIONS.0
    };
    let server = start_server(
        ignis,
        "reliability",
        &[
            "--queue-capacity",
            QUEUE_CAPACITY,
            "--max-invocations",
            &max_invocations.to_string(),
        ],
    )?;
    let url = server.url.clone();
    let light = json!({"max_concurrency": 8, "min_warm": 2});
    for rt in &RUNTIMES {
        deploy_with(http, &url, rt, light.clone()).await?;
    }
    for (rt, route) in [(&TRIGGER, "/noop"), (&NODE_TRIGGER, "/noop-js")] {
        deploy_with(
            http,
            &url,
            rt,
            json!({"max_concurrency": 8, "min_warm": 2, "route": route}),
        )
        .await?;
    }
    deploy_with(
        http,
        &url,
        &HEAVY,
        json!({"max_concurrency": 2, "cpus": 0.5}),
    )
    .await?;
    let invoke = |rt: &Runtime| format!("{url}/api/v1/functions/{}/invoke", rt.function);
    let py = Target {
        name: "python invoke",
        url: invoke(&RUNTIMES[0]),
        method: "POST",
    };
    let js = Target {
        name: "node invoke",
        url: invoke(&RUNTIMES[1]),
        method: "POST",
    };
    let trigger = Target {
        name: "python trigger",
        url: format!("{url}/fn/noop"),
        method: "POST",
    };
    let js_trigger = Target {
        name: "node trigger",
        url: format!("{url}/fn/noop-js"),
        method: "POST",
    };
    let heavy = Target {
        name: "burn-py",
        url: invoke(&HEAVY),
        method: "POST",
    };
    // Warm-up: every pool grown and every path taken once.
    for t in [&py, &js, &trigger, &js_trigger] {
        let w = tokio::task::block_in_place(|| hey(t, 16, None, if short { 1.0 } else { 3.0 }))?;
        if w.answers() == 0 {
            bail!(
                "{}: no answer during the warm-up: {:?}",
                t.name,
                w.error_kinds
            );
        }
    }
    let (step_s, bisections) = if short { (1.5, 1) } else { (5.0, 3) };
    eprintln!("== capacity");
    let mut capacities = Vec::new();
    let targets: Vec<&Target> = if short {
        vec![&py]
    } else {
        vec![&py, &js, &trigger, &js_trigger]
    };
    for t in targets {
        capacities.push(tokio::task::block_in_place(|| {
            capacity(t, step_s, bisections)
        })?);
    }
    let cap = capacities[0].rps;
    eprintln!("== soak at 70% of {cap:.0}/s");
    let (segment_s, segments) = if short { (5.0, 4) } else { (60.0, 10) };
    let soak = tokio::task::block_in_place(|| {
        soak(
            &py,
            &server,
            0.7 * cap,
            (segment_s, segments),
            max_invocations,
            !short,
        )
    })?;
    eprintln!("== overload at 2x");
    let overload =
        tokio::task::block_in_place(|| overload(&py, cap, if short { 5.0 } else { 15.0 }))?;
    eprintln!("== noisy neighbour");
    let noisy = tokio::task::block_in_place(|| {
        noisy(
            &py,
            &heavy,
            if short { 2 } else { 5 },
            if short { 3.0 } else { 12.0 },
        )
    })?;

    let full = !short;
    let mut checks = Vec::new();
    let mut check = |what: &str, figure: String, enforced: bool, held: bool| {
        checks.push(Check {
            what: what.into(),
            figure,
            enforced,
            held,
        })
    };
    check(
        "soak: no failed call",
        format!(
            "{} failed of {}",
            soak.failed_calls,
            soak.segments.last().map_or(0, |s| s.calls_so_far)
        ),
        true,
        soak.failed_calls == 0,
    );
    check(
        "soak: p99 of the last segment within 1.5x of the first",
        format!(
            "{:.1} ms then {:.1} ms",
            soak.p99_first_ms, soak.p99_last_ms
        ),
        full,
        soak.p99_last_ms <= 1.5 * soak.p99_first_ms,
    );
    check(
        "soak: server RSS within 10% of the first segment's (after the warm-up)",
        format!("{:+.1}%", soak.rss_drift * 100.0),
        full,
        soak.rss_drift.abs() <= 0.10,
    );
    check(
        "soak: open descriptors at most 10% above the first segment's",
        format!("{:+.1}%", soak.fd_drift * 100.0),
        full,
        soak.fd_drift <= 0.10,
    );
    check(
        "soak: database file flat once the record bound is passed",
        soak.db_growth_after_bound
            .map_or("bound not reached".into(), |g| {
                format!("{:+.1}%", (g - 1.0) * 100.0)
            }),
        full,
        soak.db_growth_after_bound.is_some_and(|g| g <= 1.10),
    );
    let bad = overload.run.other_than(&[200, 429]);
    check(
        "overload: only 200 and 429, no unanswered request",
        format!(
            "{} ok, {} throttled, {} other, {} unanswered, slowest {:.0} ms",
            overload.run.status(200),
            overload.run.status(429),
            bad,
            overload.run.errors,
            overload.run.slowest_ms
        ),
        true,
        bad == 0 && overload.run.errors == 0,
    );
    check(
        "overload: the server serves again after it (within 5 s in the full run)",
        overload
            .recovered_after_s
            .map_or("not within 10 s".into(), |s| {
                format!(
                    "{s:.1} s ({} of {} probes at full throughput, {:.0} req/s before)",
                    overload.probes_served,
                    overload.probes.len(),
                    overload.baseline_rps
                )
            }),
        true,
        overload
            .recovered_after_s
            .is_some_and(|s| short || s <= 5.0),
    );
    let (light_statuses, light_errors) = totals(&noisy.light_beside);
    check(
        "noisy neighbour: the light function never fails",
        format!("{light_statuses:?}, {light_errors} unanswered"),
        true,
        noisy.light_beside.iter().all(HeyRun::clean),
    );
    let (heavy_statuses, heavy_errors) = totals(&noisy.heavy);
    check(
        "noisy neighbour: the saturated function gets only 200 and 429",
        format!("{heavy_statuses:?}, {heavy_errors} unanswered"),
        true,
        noisy.heavy.iter().all(|h| h.other_than(&[200, 429]) == 0) && heavy_errors == 0,
    );
    check(
        "noisy neighbour: the light function's p99 within 2x of alone",
        format!(
            "median of {} rounds: {:.1} ms alone, {:.1} ms beside ({:.2}x)",
            noisy.light_alone.len(),
            noisy.alone_p99_ms,
            noisy.beside_p99_ms,
            noisy.p99_ratio
        ),
        full,
        noisy.p99_ratio <= 2.0,
    );
    let report = Report {
        short,
        ignis: ignis.display().to_string(),
        capacities,
        soak,
        overload,
        noisy,
        checks,
    };
    let ok = report.checks.iter().all(|c| c.held || !c.enforced);
    write(out, &report)?;
    Ok(ok)
}

fn write(out: &Path, r: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let stem: PathBuf = out.join(if r.short {
        "reliability-short"
    } else {
        "reliability"
    });
    std::fs::write(
        stem.with_extension("json"),
        serde_json::to_string_pretty(r)?,
    )?;
    let mut md = String::new();
    md.push_str(&format!(
        "# Load, soak, overload, noisy neighbour ({} run, {})\n\n",
        if r.short { "short" } else { "full" },
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    md.push_str("Load generator: `hey` (Debian). Capacity = the highest offered rate served with zero errors, every answer 200 and p99 ≤ 50 ms.\n\n");
    md.push_str("| target | capacity (req/s) | p99 at capacity |\n|---|---|---|\n");
    for c in &r.capacities {
        md.push_str(&format!(
            "| {} | {:.0} | {:.1} ms |\n",
            c.target, c.rps, c.p99_ms
        ));
    }
    md.push_str(&format!(
        "\nSoak at {:.0} req/s (70%), {} segments of {:.0} s, after {:.0} s of warm-up at that rate:\n\n| segment | req/s | p99 | failed | RSS | fds | db |\n|---|---|---|---|---|---|---|\n",
        r.soak.rate,
        r.soak.segments.len(),
        r.soak.segment_s,
        r.soak.warm_up_s
    ));
    for (i, s) in r.soak.segments.iter().enumerate() {
        md.push_str(&format!(
            "| {} | {:.0} | {:.1} ms | {} | {:.1} MiB | {} | {:.1} MB |\n",
            i + 1,
            s.run.rps,
            s.run.p99_ms,
            s.run.errors + s.run.other_than(&[200]),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.db_bytes as f64 / 1e6
        ));
    }
    md.push_str("\n| check | figure | enforced | held |\n|---|---|---|---|\n");
    for c in &r.checks {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.what,
            c.figure,
            if c.enforced { "yes" } else { "reported" },
            if c.held { "yes" } else { "**no**" }
        ));
    }
    std::fs::write(stem.with_extension("md"), &md)?;
    println!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_hey_summary() {
        let text = "\nSummary:\n  Total:\t5.0012 secs\n  Slowest:\t0.0345 secs\n  Fastest:\t0.0003 secs\n  Average:\t0.0021 secs\n  Requests/sec:\t2497.4000\n\n\nResponse time histogram:\n  0.000 [1]\t|\n\n\nLatency distribution:\n  10% in 0.0008 secs\n  50% in 0.0015 secs\n  99% in 0.0102 secs\n\nDetails (average, fastest, slowest):\n  DNS+dialup:\t0.0000 secs, 0.0003 secs, 0.0345 secs\n\nStatus code distribution:\n  [200]\t12000 responses\n  [429]\t487 responses\n\nError distribution:\n  [3]\tPost \"http://127.0.0.1:1/x\": dial tcp 127.0.0.1:1: connect: connection refused\n";
        let r = parse_hey(text).unwrap();
        assert_eq!(r.seconds, 5.0012);
        assert_eq!(r.rps, 2497.4);
        assert_eq!(r.p50_ms, 1.5);
        assert!((r.p99_ms - 10.2).abs() < 1e-9);
        assert_eq!(r.status(200), 12000);
        assert_eq!(r.status(429), 487);
        assert_eq!(r.errors, 3);
        assert_eq!(r.other_than(&[200, 429]), 0);
        assert!(!r.clean());
    }

    #[test]
    fn a_summary_without_totals_is_an_error() {
        assert!(parse_hey("hey: something went wrong").is_err());
    }
}
