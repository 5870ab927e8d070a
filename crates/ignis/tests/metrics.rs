//! Metrics end to end, with real Docker: a known sequence of calls must
//! give the same numbers in the summary, the time series, the Prometheus
//! counters and the invocation list; rollups survive a restart; the live
//! stream reaches a real HTTP client; every declared metric is emitted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

fn skip() -> bool {
    std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1")
}

const HANDLER: &str = r#"
import time
def handler(event, context):
    time.sleep(event.get('sleep', 0))
    if event.get('fail'):
        raise ValueError('planned failure')
    return event.get('i')
"#;

/// 100 calls: 87 succeed after known sleeps, 10 raise, 3 time out.
fn run_sequence(s: &Server) -> Vec<(u16, String)> {
    s.deploy(
        &json!({"name": "seq", "runtime": "python3", "handler": "main.handler",
        "timeout_ms": 400, "code": {"files": {"main.py": HANDLER}}}),
    );
    let mut out = Vec::new();
    for i in 0..100 {
        let event = match i {
            i if i % 10 == 3 => json!({"i": i, "fail": true}),
            20 | 50 | 80 => json!({"i": i, "sleep": 2}),
            i => json!({"i": i, "sleep": (i % 7) as f64 * 0.005}),
        };
        let r = s.invoke("seq", &event);
        out.push((r.status, r.header("x-ignis-invocation-id").to_string()));
    }
    out
}

fn scrape(s: &Server) -> prometheus_parse::Scrape {
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .bearer_auth(&s.key)
        .send()
        .unwrap()
        .text()
        .unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("exposition parses")
}

fn counter(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn the_four_apis_agree_and_rollups_survive_a_restart() {
    if skip() {
        return;
    }
    let mut s = Server::start(&["--stem-max", "2", "--no-microvm"]);
    let calls = run_sequence(&s);
    let statuses: Vec<u16> = calls.iter().map(|c| c.0).collect();
    assert_eq!(statuses.iter().filter(|c| **c == 200).count(), 87);
    assert_eq!(statuses.iter().filter(|c| **c == 502).count(), 10);
    assert_eq!(statuses.iter().filter(|c| **c == 504).count(), 3);

    // The invocation list.
    let deadline = Instant::now() + Duration::from_secs(10);
    let records = loop {
        let r = s.get("/api/v1/functions/seq/invocations?limit=1000");
        let recs = r.body["invocations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if recs.len() >= 100 || Instant::now() > deadline {
            break recs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(records.len(), 100);
    let count = |status: &str| records.iter().filter(|r| r["status"] == status).count() as u64;
    assert_eq!(
        (count("success"), count("error"), count("timeout")),
        (87, 10, 3)
    );
    let mut totals: Vec<f64> = records
        .iter()
        .map(|r| r["total_ms"].as_f64().unwrap())
        .collect();
    totals.sort_by(f64::total_cmp);
    let exact = |q: f64| totals[((q * 100.0).ceil() as usize).clamp(1, 100) - 1];

    // The summary.
    let sum = s.get("/api/v1/metrics/summary?window=15m").body;
    let f = &sum["functions"]["seq"];
    assert_eq!(f["requests"], 100);
    assert_eq!(f["success"], 87);
    assert_eq!(f["errors"], 13);
    assert_eq!(f["timeouts"], 3);
    assert_eq!(
        f["errors_by_type"],
        json!({"FunctionError": 10, "Timeout": 3})
    );
    assert_eq!(sum["system"]["requests"], 100);
    for (q, key) in [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")] {
        let got = f[key].as_f64().unwrap();
        let want = exact(q);
        assert!(
            (got - want).abs() <= want * 0.021,
            "{key}: {got} vs exact {want}"
        );
    }
    assert!(f["cold_starts"].as_u64().unwrap() >= 1);
    assert!(f["mean_init_ms"].as_f64().unwrap() > 0.0);

    // The time series.
    let series = s
        .get("/api/v1/functions/seq/metrics?window=15m&step=10s")
        .body;
    let points = series["points"].as_array().unwrap();
    let total = |k: &str| points.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total("requests"), 100);
    assert_eq!(total("timeouts"), 3);
    assert_eq!(total("errors"), 13);

    // The Prometheus counters.
    let scrape = scrape(&s);
    let inv = |status: &str| {
        counter(
            &scrape,
            "ignis_invocations_total",
            &[("function", "seq"), ("status", status)],
        )
    };
    assert_eq!(
        (inv("success"), inv("error"), inv("timeout")),
        (87.0, 10.0, 3.0)
    );
    assert_eq!(
        counter(
            &scrape,
            "ignis_errors_total",
            &[("function", "seq"), ("error_type", "Timeout")]
        ),
        3.0
    );
    let hist_count = counter(
        &scrape,
        "ignis_invocation_duration_seconds_count",
        &[("function", "seq")],
    );
    assert_eq!(hist_count, 100.0);
    // Every declared metric is emitted.
    std::thread::sleep(Duration::from_millis(2500)); // one resource sample
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .bearer_auth(&s.key)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in ignis_metrics::METRIC_NAMES {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "metric {name} never emitted:\n{text}"
        );
    }

    // A restart: the per-minute rollups answer for the past.
    assert!(s.terminate().success());
    s.spawn();
    let series = s
        .get("/api/v1/functions/seq/metrics?window=1h&step=1m")
        .body;
    let points = series["points"].as_array().unwrap();
    let requests: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, 100, "{series}");
    let sum = s.get("/api/v1/metrics/summary?window=1h").body;
    assert_eq!(sum["functions"]["seq"]["requests"], 100);
    assert_eq!(sum["functions"]["seq"]["timeouts"], 3);
    let p50 = sum["functions"]["seq"]["p50_ms"].as_f64().unwrap();
    assert!((p50 - exact(0.5)).abs() <= exact(0.5) * 0.021);
}

#[test]
fn the_stream_delivers_snapshots_to_an_http_client() {
    if skip() {
        return;
    }
    let s = Server::start(&["--stem-max", "1", "--no-microvm"]);
    s.deploy(
        &json!({"name": "live", "runtime": "python3", "handler": "main.handler",
        "code": {"files": {"main.py": HANDLER}}}),
    );
    assert_eq!(s.invoke("live", &json!({"i": 1})).status, 200);
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/metrics/stream", s.url))
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(resp).lines();
    let mut snapshots: Vec<Value> = Vec::new();
    let started = Instant::now();
    while snapshots.len() < 3 {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            snapshots.push(serde_json::from_str(data.trim()).unwrap());
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    let last = snapshots.last().unwrap();
    assert!(last["at_ms"].as_i64() > snapshots[0]["at_ms"].as_i64());
    assert_eq!(last["functions"]["live"]["last_minute"]["requests"], 1);
    assert!(
        last["resources"]["host"]["memory_total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    // `ignis top --once` renders one.
    let out = s.cli(&["top", "--once"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FUNCTION") && text.contains("live"), "{text}");
}

#[test]
fn metrics_queries_are_validated() {
    let s = Server::start_api_only();
    s.deploy(
        &json!({"name": "v", "runtime": "python3", "handler": "main.handler",
        "code": {"files": {"main.py": HANDLER}}}),
    );
    for q in ["window=5x", "window=0s", "window=30d", "bogus=1"] {
        let r = s.get(&format!("/api/v1/metrics/summary?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert_eq!(r.error_type(), "InvalidRequest");
    }
    for q in [
        "window=1h&step=10s",
        "window=1m&step=5m",
        "window=15m&step=abc",
        "window=7d&step=1m",
    ] {
        let r = s.get(&format!("/api/v1/functions/v/metrics?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text);
    }
    assert_eq!(s.get("/api/v1/functions/nope/metrics").status, 404);
    let ok = s.get("/api/v1/functions/v/metrics?window=5m&step=30s");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["points"].as_array().unwrap().len(), 10);
}

/// `--stage-timings`: after warm calls through the invoke API and a trigger,
/// every stage is counted once per call, its time is positive, and the
/// stages of a call together fit in the time its caller waited; without the
/// flag the families are absent.
#[test]
fn stage_timings_count_every_stage_of_every_call() {
    if skip() {
        return;
    }
    let s = Server::start(&["--no-microvm", "--stage-timings"]);
    s.deploy(&json!({"name": "st", "runtime": "python3", "handler": "main.handler",
        "route": "/st", "code": {"files": {"main.py": "def handler(e, c):\n    return {'statusCode': 200, 'body': 'ok'}\n"}}}));
    assert_eq!(s.invoke("st", &json!({})).status, 200, "warm-up");
    let before = scrape(&s);
    let n = 20;
    let started = Instant::now();
    for i in 0..n {
        let r = if i % 2 == 0 {
            s.invoke("st", &json!({}))
        } else {
            let r = s
                .http
                .post(format!("{}/fn/st", s.url))
                .bearer_auth(&s.key)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            continue;
        };
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let waited = started.elapsed().as_secs_f64();
    // The writer counts records after the answer (the `record` stage ends
    // after the caller has its answer), at the latest when its gathering
    // pause ends: scrape until the last call is in.
    let mut scrapes = 0;
    let after = loop {
        scrapes += 1;
        let after = scrape(&s);
        let recorded = counter(
            &after,
            "ignis_call_stage_calls_total",
            &[("stage", "record")],
        ) - counter(
            &before,
            "ignis_call_stage_calls_total",
            &[("stage", "record")],
        );
        if recorded >= n as f64 || started.elapsed() > Duration::from_secs(30) {
            break after;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut total = 0.0;
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
        let calls = counter(&after, "ignis_call_stage_calls_total", &[("stage", stage)])
            - counter(&before, "ignis_call_stage_calls_total", &[("stage", stage)]);
        let secs = counter(
            &after,
            "ignis_call_stage_seconds_total",
            &[("stage", stage)],
        ) - counter(
            &before,
            "ignis_call_stage_seconds_total",
            &[("stage", stage)],
        );
        // The middleware times every route: each later scrape's own
        // request was authorized before it read the counters.
        let expected = if stage == "authorize" { n + scrapes } else { n };
        assert_eq!(calls, expected as f64, "stage {stage}: one count per call");
        assert!(secs > 0.0, "stage {stage}: no time");
        if stage != "record" {
            total += secs;
        }
    }
    assert!(
        total < waited,
        "the stages of the calls ({total:.4} s) are part of what their callers waited ({waited:.4} s)"
    );
    drop(s);
    let plain = Server::start(&["--no-microvm"]);
    assert!(
        !scrape(&plain)
            .samples
            .iter()
            .any(|s| s.metric.starts_with("ignis_call_stage")),
        "off by default"
    );
}
