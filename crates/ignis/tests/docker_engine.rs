//! The Docker engine killed under load and started again (the reliability
//! suite, #15). Its own test binary: cargo runs test binaries one at a
//! time, so no other test's containers are in the way when the engine goes.
//!
//! While the engine is down, calls that need a new sandbox fail fast with
//! 503 `BackendUnavailable` (never a hang past their deadline) and every
//! call ends with a typed status; once it is back, ignis recovers by itself:
//! new sandboxes boot, the warm pool and the stem cells are refilled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn engine_up() -> bool {
    Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts the engine the way `scripts/deps.sh` does (systemd's or our
/// own `dockerd`), when it is not running; says why when it cannot.
fn start_engine() -> Result<(), String> {
    let deps = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/deps.sh");
    let out = Command::new("bash")
        .arg(deps)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "could not start the Docker engine again: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whatever happens to the test, the engine is running after it.
struct EngineBack;

impl Drop for EngineBack {
    fn drop(&mut self) {
        if !engine_up() {
            if let Err(e) = start_engine() {
                eprintln!("{e}");
            }
        }
    }
}

fn kill_engine() {
    // SIGKILL, as the OOM killer or a crash would: no clean shutdown.
    let status = Command::new("pkill")
        .args(["-KILL", "-x", "dockerd"])
        .status()
        .unwrap();
    assert!(status.success(), "no dockerd process to kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    let gone = || {
        !engine_up()
            && !Command::new("pgrep")
                .args(["-x", "dockerd"])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    while !gone() {
        assert!(
            Instant::now() < deadline,
            "dockerd still there after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn py(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({"name": name, "runtime": "python3", "handler": "main.handler",
        "timeout_ms": 3000,
        "code": {"files": {"main.py": "def handler(event, context):\n    return {'n': event.get('n')}\n"}}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// What one call of the load saw.
#[derive(Debug, Clone)]
struct Seen {
    status: u16,
    kind: String,
    elapsed: Duration,
}

#[test]
fn the_docker_engine_killed_and_restarted_under_load() {
    if std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        return;
    }
    assert!(engine_up(), "no Docker engine: run scripts/deps.sh");
    let _back = EngineBack;
    let mut s = Server::start(&["--stem-max", "2", "--no-microvm"]);
    let instance = s.instance();
    s.deploy(&py("steady", json!({"min_warm": 1, "max_concurrency": 2})));
    wait_for("a warm sandbox and stem cells", 60, || {
        let p = s.get("/api/v1/pools").body;
        p["functions"][0]["sandboxes"]["idle"].as_u64() >= Some(1)
            && p["stem_cells"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["ready"].as_u64() >= Some(1)))
    });

    // A bounded load: two callers, one call at a time each.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (url, key, stop, seen) = (s.url.clone(), s.key.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{url}/api/v1/functions/steady/invoke"))
                        .bearer_auth(&key)
                        .json(&json!({"n": n}))
                        .send()
                        .expect("the server answers every call");
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().unwrap_or_default();
                    let kind = body["error"]["type"].as_str().unwrap_or("").to_string();
                    if status == 200 {
                        assert_eq!(body["n"], n, "an answer for another call");
                    }
                    seen.lock().unwrap().push(Seen {
                        status,
                        kind,
                        elapsed: t.elapsed(),
                    });
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    kill_engine();
    // A function that needs a new sandbox while the engine is down (its
    // memory size matches no stem cell, which would serve it without the
    // engine): a fast, typed refusal, within the call's own deadline.
    s.deploy(&py("fresh", json!({"memory_mb": 192})));
    for _ in 0..3 {
        let t = Instant::now();
        let r = s.invoke("fresh", &json!({"n": 1}));
        let took = t.elapsed();
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.error_type(), "BackendUnavailable", "{}", r.text);
        assert!(
            took < Duration::from_millis(3000),
            "a call waited {took:?} for an engine that is down (its deadline is 3 s)"
        );
    }
    let health = s.get("/api/v1/health").body;
    assert_eq!(health["backends"][0]["available"], false, "{health}");
    std::thread::sleep(Duration::from_secs(2));

    start_engine().unwrap();
    let back = Instant::now();
    // ignis notices by itself: new sandboxes boot again, pools refill.
    wait_for("a call that boots a sandbox", 90, || {
        s.invoke("fresh", &json!({"n": 2})).status == 200
    });
    let recovered = back.elapsed();
    wait_for("the warm pool and the stem cells refilled", 90, || {
        let p = s.get("/api/v1/pools").body;
        let steady = p["functions"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["function"] == "steady"))
            .cloned()
            .unwrap_or_default();
        steady["sandboxes"]["idle"].as_u64() >= Some(1)
            && p["stem_cells"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["ready"].as_u64() >= Some(1)))
    });
    assert_eq!(
        s.get("/api/v1/health").body["backends"][0]["available"],
        true
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().unwrap();
    }

    // Every call of the load ended with a typed status, none hung.
    let seen = seen.lock().unwrap().clone();
    let ok = seen.iter().filter(|c| c.status == 200).count();
    eprintln!(
        "{} calls under the fault: {ok} succeeded; first boot {recovered:?} after the engine was back",
        seen.len()
    );
    for (i, c) in seen.iter().enumerate() {
        if c.status != 200 {
            eprintln!("call {i}: {} {} after {:?}", c.status, c.kind, c.elapsed);
        }
    }
    for c in &seen {
        assert!(
            c.status == 200
                || (c.status == 503 && c.kind == "BackendUnavailable")
                || (c.status == 502 && c.kind == "SandboxCrashed"),
            "a call under the fault ended with {} {}",
            c.status,
            c.kind
        );
        assert!(
            c.elapsed < Duration::from_millis(3000 + 2000),
            "a call took {:?} (deadline 3 s)",
            c.elapsed
        );
    }
    assert!(
        seen.last().is_some_and(|c| c.status == 200),
        "the load did not recover"
    );

    // The containers the engine's restart stopped are removed, also those
    // whose removal failed while it was down (they were left behind once),
    // and a clean stop leaves none.
    wait_for("no stopped container of this server left", 30, || {
        containers_of_instance(&instance, &["status=exited"]).is_empty()
    });
    assert!(s.terminate().success());
    assert_eq!(
        containers_of_instance(&instance, &[]),
        Vec::<String>::new(),
        "containers left after the stop"
    );
}
