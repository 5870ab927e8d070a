//! Asynchronous invocations end to end: accepted means stored, every event
//! reaches a terminal state with the right number of attempts (also across
//! a `kill -9` of the server), the queue's caps answer 429, and events
//! past their maximum age become dead letters that can be retried.
//! Weighted aliases are checked here too: the 90/10 split over 1000 calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{json, Value};

/// Fails the first attempt of events with `fail_first` (the sandbox
/// remembers them: max_concurrency 1 keeps one warm sandbox), every
/// attempt of events with `always_fail`; sleeps `sleep` seconds.
const FLAKY: &str = r#"
import time
seen = set()
def handler(event, context):
    print("event", event["n"])
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("always_fail"):
        raise RuntimeError("always fails")
    if event.get("fail_first") and event["n"] not in seen:
        seen.add(event["n"])
        raise RuntimeError("fails once")
    return {"n": event["n"]}
"#;

fn deploy_flaky(s: &Server, name: &str, extra: Value) {
    let mut body = json!({"name": name, "runtime": "python3", "handler": "main.handler",
        "max_concurrency": 1, "code": {"files": {"main.py": FLAKY}}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    s.deploy(&body);
}

fn submit(s: &Server, name: &str, event: &Value) -> String {
    let r = s.post(
        &format!("/api/v1/functions/{name}/invoke?async=true"),
        event,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "queued");
    r.body["invocation_id"].as_str().unwrap().to_string()
}

fn event(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/api/v1/invocations/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn terminal(e: &Value) -> bool {
    matches!(e["status"].as_str(), Some("succeeded" | "dead"))
}

/// Records of `name` per event number (the handler prints it).
fn records_per_event(s: &Server, name: &str) -> HashMap<u64, usize> {
    let recs = s
        .get(&format!("/api/v1/functions/{name}/invocations?limit=1000"))
        .body;
    let mut n = HashMap::new();
    for r in recs["invocations"].as_array().unwrap() {
        if let Some(v) = r["stdout"]
            .as_str()
            .and_then(|o| o.strip_prefix("event "))
            .and_then(|o| o.trim().parse::<u64>().ok())
        {
            *n.entry(v).or_default() += 1;
        }
    }
    n
}

#[test]
fn two_hundred_events_end_succeeded_or_dead_with_the_right_attempts() {
    let s = Server::start(&["--async-retry-base-ms", "50"]);
    deploy_flaky(&s, "flaky", json!({"async_max_retries": 2}));
    let mut ids = Vec::new();
    for n in 0..200u64 {
        let e = json!({"n": n, "fail_first": n % 5 == 0, "always_fail": n % 50 == 7});
        ids.push((n, submit(&s, "flaky", &e)));
    }
    wait_for("every event to end", 240, || {
        ids.iter().all(|(_, id)| terminal(&event(&s, id)))
    });
    for (n, id) in &ids {
        let e = event(&s, id);
        let (status, attempts) = if n % 50 == 7 {
            ("dead", 3)
        } else if n % 5 == 0 {
            ("succeeded", 2)
        } else {
            ("succeeded", 1)
        };
        assert_eq!(e["status"], status, "event {n}: {e}");
        assert_eq!(e["attempts"], attempts, "event {n}: {e}");
        if status == "dead" {
            assert_eq!(e["dead_reason"], "retries exhausted", "{e}");
            assert_eq!(e["error_type"], "FunctionError", "{e}");
        } else {
            assert_eq!(e["result"]["n"], *n, "{e}");
            assert!(e["last_invocation_id"].as_str().is_some(), "{e}");
        }
    }
    let dead = s.get("/api/v1/functions/flaky/dead-letters").body;
    let dead_ids: Vec<&str> = dead["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(dead_ids.len(), 4, "{dead}");

    // Redrive one: it runs again (and fails again: a dead letter again,
    // with its attempts counted afresh); delete another.
    let r = s.post(
        &format!("/api/v1/functions/flaky/dead-letters/{}/retry", dead_ids[0]),
        &json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    wait_for("the redriven event to end", 30, || {
        let e = event(&s, dead_ids[0]);
        terminal(&e) && e["attempts"] == 3
    });
    let r = s.delete(&format!(
        "/api/v1/functions/flaky/dead-letters/{}",
        dead_ids[1]
    ));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        s.get(&format!("/api/v1/invocations/{}", dead_ids[1]))
            .status,
        404
    );
    // A succeeded event is no dead letter to delete.
    let ok = &ids[1].1;
    let r = s.delete(&format!("/api/v1/functions/flaky/dead-letters/{ok}"));
    assert_eq!(r.status, 404, "{}", r.text);

    // The queue's figures reach the metrics.
    let m = s.get("/metrics").text;
    for name in [
        "ignis_async_accepted_total",
        "ignis_async_retries_total",
        "ignis_async_dead_letters",
        "ignis_async_queue_depth",
        "ignis_async_oldest_age_seconds",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
}

#[test]
fn accepted_events_survive_kill_9_and_each_runs_to_an_end() {
    let mut s = Server::start(&["--async-workers", "2"]);
    deploy_flaky(&s, "slow", json!({"max_concurrency": 2}));
    let ids: Vec<(u64, String)> = (0..20u64)
        .map(|n| (n, submit(&s, "slow", &json!({"n": n, "sleep": 0.5}))))
        .collect();
    // Kill while some run and most wait.
    wait_for("an event to run", 60, || {
        ids.iter()
            .any(|(_, id)| event(&s, id)["status"] == "running")
    });
    s.kill9();
    let db = s.data_path().join("ignis.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM async_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 20, "every accepted event is stored");
    }
    s.spawn();
    wait_for("every event to end after the restart", 120, || {
        ids.iter().all(|(_, id)| terminal(&event(&s, id)))
    });
    for (n, id) in &ids {
        let e = event(&s, id);
        assert_eq!(e["status"], "succeeded", "event {n}: {e}");
        assert_eq!(e["result"]["n"], *n, "{e}");
    }
    // At least once: an attempt in flight at the kill may have run before
    // and runs again; no event ran more than twice, and at most the
    // workers' worth ran twice.
    wait_for("the records", 10, || {
        records_per_event(&s, "slow").len() == 20
    });
    let per = records_per_event(&s, "slow");
    let twice = per.values().filter(|c| **c == 2).count();
    assert!(per.values().all(|c| (1..=2).contains(c)), "{per:?}");
    assert!(twice <= 2, "{twice} events ran twice: {per:?}");
}

#[test]
fn a_full_queue_answers_429_and_old_events_become_dead_letters() {
    let s = Server::start(&["--async-queue-per-function", "3", "--async-workers", "1"]);
    deploy_flaky(
        &s,
        "capped",
        json!({"async_max_age_s": 60, "timeout_ms": 70000, "max_concurrency": 2}),
    );
    // The first event holds the only worker for 62 s; the other two wait
    // past their maximum age of 60 s.
    let first = submit(&s, "capped", &json!({"n": 0, "sleep": 62}));
    let waiting: Vec<String> = (1..3u64)
        .map(|n| submit(&s, "capped", &json!({"n": n})))
        .collect();
    let full = s.post(
        "/api/v1/functions/capped/invoke?async=true",
        &json!({"n": 99}),
    );
    assert_eq!(full.status, 429, "{}", full.text);
    assert_eq!(full.error_type(), "Throttled");
    assert!(!full.header("retry-after").is_empty());
    let by_header = s
        .http
        .post(format!("{}/api/v1/functions/capped/invoke", s.url))
        .bearer_auth(&s.key)
        .header("X-Ignis-Invocation-Type", "Event")
        .body("{\"n\": 98}")
        .send()
        .unwrap();
    assert_eq!(
        by_header.status().as_u16(),
        429,
        "the header form is queued too"
    );
    let sync = s.invoke("capped", &json!({"n": 97}));
    assert_eq!(
        sync.status, 200,
        "sync calls are not capped by the queue: {}",
        sync.text
    );

    wait_for("the waiting events to expire", 120, || {
        waiting.iter().all(|id| terminal(&event(&s, id)))
    });
    for id in &waiting {
        let e = event(&s, id);
        assert_eq!(e["status"], "dead", "{e}");
        assert_eq!(e["dead_reason"], "max age", "{e}");
        assert_eq!(e["attempts"], 0, "it never ran: {e}");
    }
    wait_for("the long event to succeed", 60, || {
        event(&s, &first)["status"] == "succeeded"
    });
}

#[test]
fn a_weighted_alias_splits_calls_and_rolls_back_at_once() {
    let s = Server::start(&[]);
    let code =
        |v: u32| json!({"files": {"main.py": format!("def handler(e, c):\n    return {v}\n")}});
    s.deploy(
        &json!({"name": "canary", "runtime": "python3", "handler": "main.handler",
        "max_concurrency": 4, "code": code(1)}),
    );
    let v1 = s.post(
        "/api/v1/functions/canary/versions",
        &json!({"description": "one"}),
    );
    assert_eq!(v1.status, 201, "{}", v1.text);
    let v1 = v1.body["version"].as_u64().unwrap();
    assert_eq!(
        s.put("/api/v1/functions/canary", &json!({"code": code(2)}))
            .status,
        200
    );
    let v2 = s.post("/api/v1/functions/canary/versions", &json!({})).body["version"]
        .as_u64()
        .unwrap();
    let a = s.post(
        "/api/v1/functions/canary/aliases",
        &json!({"name": "prod", "version": v1, "weights": {v2.to_string(): 0.1}}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let call = |q: &str| {
        let r = s.post(
            &format!("/api/v1/functions/canary/invoke?qualifier={q}"),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let out = r.body.as_u64().unwrap();
        if q != "$LATEST" {
            assert_eq!(
                r.header("x-ignis-function-version"),
                if out == 1 { v1 } else { v2 }.to_string(),
                "the answer names the executed version"
            );
        }
        out
    };
    let canary = (0..1000).filter(|_| call("prod") == 2).count();
    // Binomial(1000, 0.1): mean 100, sd 9.5; five sd either side.
    assert!(
        (53..=147).contains(&canary),
        "{canary} of 1000 calls ran the canary"
    );

    // An unpublished change to $LATEST never reaches prod.
    assert_eq!(
        s.put("/api/v1/functions/canary", &json!({"code": code(3)}))
            .status,
        200
    );
    assert_eq!(call("$LATEST"), 3);
    assert!((0..100).all(|_| call("prod") != 3));

    // Rollback: one call, effective for the next call.
    let r = s.put(
        "/api/v1/functions/canary/aliases/prod",
        &json!({"version": v1, "weights": {}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!((0..100).all(|_| call("prod") == 1));
    assert_eq!(call(&v2.to_string()), 2);
}
