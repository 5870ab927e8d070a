//! The warm path's cost to the server (`--only-warm-path`, and part of the
//! full run): for a warm Python no-op, under `hey` at concurrency 32,
//!
//! - the server's own CPU time per call (user + system of the ignis
//!   process over the run, from `/proc/PID/stat`, divided by the calls it
//!   answered; the sandboxes and `hey` are other processes);
//! - the HTTP trigger (`/fn/noop`) beside the invoke API, same function
//!   code, same load: throughput and p99;
//! - the server's per-stage timings of a call (the `ignis_call_stage_*`
//!   counters of `/metrics`, which the server keeps when started with
//!   `--stage-timings`): where the server's share of a call's latency goes.
//!
//! Rounds alternate the two paths (A B B A ...) so that the machine's drift
//! falls on both; each figure is the median over the rounds.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::reliability::{hey, HeyRun, Target, TRIGGER};
use crate::{deploy_with, median, process_cpu_ms, start_server, RUNTIMES};

const CONCURRENCY: usize = 32;

/// One path under load, medians over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct PathFigures {
    pub path: &'static str,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's CPU time (user + system) per answered call.
    pub server_cpu_us_per_call: f64,
    pub rounds: Vec<Round>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub calls: u64,
    pub server_cpu_ms: f64,
}

/// The mean time of one stage of a warm call, from the server's counters.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: String,
    pub calls: f64,
    pub mean_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WarmPath {
    pub concurrency: usize,
    pub seconds_per_round: f64,
    pub invoke: PathFigures,
    pub trigger: PathFigures,
    /// trigger / invoke throughput. Target ≥ 0.9.
    pub trigger_over_invoke_rps: f64,
    /// trigger / invoke p99. Target ≤ 1.5.
    pub trigger_over_invoke_p99: f64,
    /// The invoke API at an offered 1000 req/s over 8 connections.
    pub steady: PathFigures,
    /// The server's CPU per call there, net of what the idle server
    /// spends in the same time. Target ≤ 40.
    pub server_cpu_us_per_call_steady: f64,
    /// CPU ms per second of the server without calls (median of rounds).
    pub server_idle_cpu_ms_per_s: f64,
    /// `GET` of the function at 1000 req/s: HTTP and authentication with
    /// no sandbox.
    pub read: PathFigures,
    /// Its CPU per call, net of idle: the HTTP floor under the invoke's.
    pub http_floor_cpu_us_per_call: f64,
    /// Mean per-stage times of the invoke API's warm calls (all rounds).
    pub stages: Vec<StageTime>,
}

fn round_of(run: &HeyRun, cpu_ms: f64) -> anyhow::Result<Round> {
    let calls = run.statuses.get(&200).copied().unwrap_or(0);
    if calls == 0 || run.errors > 0 || calls != run.statuses.values().sum::<u64>() {
        anyhow::bail!(
            "the warm path must answer every call with 200: {:?}, {} errors {:?}",
            run.statuses,
            run.errors,
            run.error_kinds
        );
    }
    Ok(Round {
        rps: run.rps,
        p50_ms: run.p50_ms,
        p99_ms: run.p99_ms,
        calls,
        server_cpu_ms: cpu_ms,
    })
}

fn figures(path: &'static str, rounds: Vec<Round>) -> PathFigures {
    let m = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    PathFigures {
        path,
        rps: m(|r| r.rps),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        server_cpu_us_per_call: m(|r| r.server_cpu_ms * 1e3 / r.calls as f64),
        rounds,
    }
}

/// The `ignis_call_stage_seconds_total` / `ignis_call_stage_calls_total`
/// pairs of a Prometheus text page, by stage.
fn stage_counters(text: &str) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for line in text.lines() {
        let (series, which) = if let Some(s) = line.strip_prefix("ignis_call_stage_seconds_total{")
        {
            (s, 0)
        } else if let Some(s) = line.strip_prefix("ignis_call_stage_calls_total{") {
            (s, 1)
        } else {
            continue;
        };
        let Some((labels, value)) = series.split_once("} ") else {
            continue;
        };
        let Some(stage) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("stage=\""))
            .map(|s| s.trim_end_matches('"').to_string())
        else {
            continue;
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        let e = out.entry(stage).or_default();
        if which == 0 {
            e.0 = v;
        } else {
            e.1 = v;
        }
    }
    out
}

/// One server under test and its two targets.
struct Side {
    server: crate::Server,
    invoke: Target,
    trigger: Target,
    /// `GET` of the function's configuration: the same HTTP stack and
    /// authentication with a handler that only reads the in-memory
    /// registry, no sandbox. Its CPU per call is the HTTP floor.
    read: Target,
}

async fn side(http: &reqwest::Client, ignis: &Path, tag: &str) -> anyhow::Result<Side> {
    // A binary from before `--stage-timings` (a baseline) runs without it.
    let help = std::process::Command::new(ignis)
        .args(["serve", "--help"])
        .output()?;
    let timed = String::from_utf8_lossy(&help.stdout).contains("--stage-timings");
    let flags: &[&str] = if timed {
        &["--no-microvm", "--stage-timings"]
    } else {
        &["--no-microvm"]
    };
    let server = start_server(ignis, tag, flags)?;
    let url = server.url.clone();
    let settings = json!({"max_concurrency": 4, "min_warm": 2});
    let rt = &RUNTIMES[0];
    deploy_with(http, &url, rt, settings.clone()).await?;
    let mut trigger_settings = settings;
    trigger_settings["route"] = json!("/noop");
    deploy_with(http, &url, &TRIGGER, trigger_settings).await?;
    Ok(Side {
        invoke: Target {
            name: "python invoke",
            url: format!("{url}/api/v1/functions/{}/invoke", rt.function),
            method: "POST",
        },
        trigger: Target {
            name: "python trigger",
            url: format!("{url}/fn/noop"),
            method: "POST",
        },
        read: Target {
            name: "read the function",
            url: format!("{url}/api/v1/functions/{}", rt.function),
            method: "GET",
        },
        server,
    })
}

/// Offered rate of the unsaturated runs: the server's CPU per call when the
/// machine is not saturated (at saturation every process on the two cores
/// preempts the others, and each call costs more).
const STEADY_RPS: f64 = 1000.0;

fn measured(pid: u32, t: &Target, seconds: f64, rate: Option<f64>) -> anyhow::Result<Round> {
    let before = process_cpu_ms(pid);
    let run = hey(
        t,
        if rate.is_some() { 8 } else { CONCURRENCY },
        rate,
        seconds,
    )?;
    round_of(&run, process_cpu_ms(pid) - before)
}

/// Measures `ignis` and, when given, `baseline` (an earlier build) in
/// interleaved rounds on two servers side by side: the second figure is
/// the baseline's.
pub async fn run(
    http: &reqwest::Client,
    ignis: &Path,
    baseline: Option<&Path>,
    seconds: f64,
    rounds: usize,
) -> anyhow::Result<(WarmPath, Option<WarmPath>)> {
    let mut sides = vec![side(http, ignis, "warm-path").await?];
    if let Some(b) = baseline {
        sides.push(side(http, b, "warm-path-baseline").await?);
    }
    for s in &sides {
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            for t in [&s.invoke, &s.trigger] {
                measured(s.server.pid(), t, seconds.min(2.0), None)?;
            }
            Ok(())
        })?;
    }
    // The stage counters over the invoke API's rounds only.
    let metrics = format!("{}/metrics", sides[0].server.url);
    let before = stage_counters(&http.get(&metrics).send().await?.text().await?);
    // [side][path] rounds, in A B B A order of both sides and paths.
    let mut idle: Vec<Vec<f64>> = sides.iter().map(|_| Vec::new()).collect();
    let mut got: Vec<[Vec<Round>; 4]> = sides
        .iter()
        .map(|_| [Vec::new(), Vec::new(), Vec::new(), Vec::new()])
        .collect();
    for i in 0..rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for &k in &order {
            let s = &sides[k];
            let paths = if i % 2 == 0 {
                [0, 1, 2, 3]
            } else {
                [3, 2, 1, 0]
            };
            for path in paths {
                let (t, rate) = match path {
                    0 => (&s.invoke, None),
                    1 => (&s.trigger, None),
                    2 => (&s.invoke, Some(STEADY_RPS)),
                    _ => (&s.read, Some(STEADY_RPS)),
                };
                let r = tokio::task::block_in_place(|| measured(s.server.pid(), t, seconds, rate))?;
                got[k][path].push(r);
            }
            // The same time without calls: what the server spends anyway
            // (maintainer, samplers, keep-alive of its warm sandboxes).
            let pid = s.server.pid();
            let before = process_cpu_ms(pid);
            tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
            idle[k].push(process_cpu_ms(pid) - before);
        }
    }
    let after = stage_counters(&http.get(&metrics).send().await?.text().await?);
    let stages: Vec<StageTime> = after
        .iter()
        .filter_map(|(stage, (secs, calls))| {
            let (s0, c0) = before.get(stage).copied().unwrap_or_default();
            let calls = calls - c0;
            (calls > 0.0).then(|| StageTime {
                stage: stage.clone(),
                calls,
                mean_us: (secs - s0) * 1e6 / calls,
            })
        })
        .collect();
    let mut out = got.into_iter().zip(idle).map(|([a, b, c, d], idle)| {
        let invoke = figures("invoke API", a);
        let trigger = figures("HTTP trigger", b);
        let idle_ms = median(idle);
        let net = |rounds: &[Round]| {
            median(
                rounds
                    .iter()
                    .map(|r| (r.server_cpu_ms - idle_ms).max(0.0) * 1e3 / r.calls as f64)
                    .collect(),
            )
        };
        let (net_invoke, net_read) = (net(&c), net(&d));
        let steady = figures("invoke API at 1000 req/s", c);
        let read = figures("GET the function at 1000 req/s (HTTP floor)", d);
        WarmPath {
            server_idle_cpu_ms_per_s: idle_ms / seconds,
            server_cpu_us_per_call_steady: net_invoke,
            http_floor_cpu_us_per_call: net_read,
            read,
            steady,
            concurrency: CONCURRENCY,
            seconds_per_round: seconds,
            trigger_over_invoke_rps: trigger.rps / invoke.rps,
            trigger_over_invoke_p99: trigger.p99_ms / invoke.p99_ms,
            invoke,
            trigger,
            stages: Vec::new(),
        }
    });
    let mut this = out.next().context("no figures")?;
    this.stages = stages;
    Ok((this, out.next()))
}

/// The report's section (with the baseline's figures beside, when measured).
pub fn markdown(w: &WarmPath, baseline: Option<&WarmPath>) -> String {
    let mut md = format!(
        "## Warm path (python no-op, `hey` at concurrency {}, median of {} rounds of {:.0} s)\n\n\
         | build | path | requests/s | p50 | p99 | server CPU µs/call |\n|---|---|---:|---:|---:|---:|\n",
        w.concurrency,
        w.invoke.rounds.len(),
        w.seconds_per_round
    );
    let sides: Vec<(&str, &WarmPath)> = match baseline {
        Some(b) => vec![("before (baseline)", b), ("after", w)],
        None => vec![("this", w)],
    };
    for (name, s) in &sides {
        for p in [&s.invoke, &s.trigger, &s.steady, &s.read] {
            md += &format!(
                "| {name} | {} | {:.0} | {:.3} | {:.3} | {:.1} |\n",
                p.path, p.rps, p.p50_ms, p.p99_ms, p.server_cpu_us_per_call
            );
        }
    }
    md += "\n| build | trigger / invoke rps (≥ 0.9) | trigger / invoke p99 (≤ 1.5) | server CPU µs/call at 1000 req/s, net of idle (≤ 40) | of which the HTTP floor (GET) | at saturation (gross) | idle server CPU ms/s |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (name, s) in &sides {
        md += &format!(
            "| {name} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            s.trigger_over_invoke_rps,
            s.trigger_over_invoke_p99,
            s.server_cpu_us_per_call_steady,
            s.http_floor_cpu_us_per_call,
            s.invoke.server_cpu_us_per_call,
            s.server_idle_cpu_ms_per_s
        );
    }
    if let Some(b) = baseline {
        md += &format!(
            "\nAfter / before: server CPU per call {:.2}x at 1000 req/s, {:.2}x (invoke), {:.2}x (trigger) at saturation; throughput {:.2}x (invoke), {:.2}x (trigger).\n",
            w.server_cpu_us_per_call_steady / b.server_cpu_us_per_call_steady,
            w.invoke.server_cpu_us_per_call / b.invoke.server_cpu_us_per_call,
            w.trigger.server_cpu_us_per_call / b.trigger.server_cpu_us_per_call,
            w.invoke.rps / b.invoke.rps,
            w.trigger.rps / b.trigger.rps,
        );
    }
    if !w.stages.is_empty() {
        md += "\n| stage of an invoke-API call (server's clock, `--stage-timings`) | mean µs |\n|---|---:|\n";
        for stage in [
            "authorize",
            "handler",
            "queue",
            "write",
            "sandbox",
            "answer",
            "respond",
            "record",
        ] {
            if let Some(s) = w.stages.iter().find(|s| s.stage == stage) {
                md += &format!("| {} | {:.1} |\n", s.stage, s.mean_us);
            }
        }
    }
    md
}
