//! Engine logic against the fake backend and a real SQLite store, under
//! tokio's paused clock (sleeps and timeouts advance virtual time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ignis_core::{ErrorKind, Function, FunctionPatch, Runtime, StartKind, Trigger};
use ignis_engine::{Engine, EngineConfig, Outcome, Recorder};
use ignis_sandbox::fake::FakeBackend;
use ignis_store::{SqliteStore, Store};
use serde_json::value::RawValue;

struct Harness {
    engine: Engine,
    fake: FakeBackend,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// Stem cells off: the tests that count boots see only what calls boot.
fn no_stems() -> EngineConfig {
    EngineConfig {
        stem_initial: 0,
        stem_max: 0,
        ..EngineConfig::default()
    }
}

async fn harness(config: EngineConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (recorder, _) =
        Recorder::start(store.clone(), Arc::new(ignis_metrics::Metrics::new()), 1000);
    let fake = FakeBackend::new();
    let engine = Engine::new(
        config,
        vec![Arc::new(fake.clone())],
        store.clone(),
        recorder,
    );
    Harness {
        engine,
        fake,
        store,
        _dir: dir,
    }
}

async fn deploy(h: &Harness, name: &str, patch: FunctionPatch) -> Arc<Function> {
    let patch = FunctionPatch {
        runtime: Some(Runtime::Python3),
        handler: patch.handler.clone().or(Some("main.handler".into())),
        ..patch
    };
    let config = patch.into_new_config().unwrap();
    let files: BTreeMap<_, _> = [("main.py".to_string(), "x".to_string())].into();
    let code = ignis_package::from_files(&files, 1 << 20).unwrap();
    Arc::new(
        h.store
            .create_function(&ignis_core::FunctionId::default_ns(name), &config, &code)
            .await
            .unwrap(),
    )
}

fn ev(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).unwrap()
}

async fn call(h: &Harness, f: &Arc<Function>, event: &str) -> Outcome {
    h.engine.invoke(f.clone(), ev(event), Trigger::Api).await
}

fn kind(o: &Outcome) -> Option<ErrorKind> {
    o.result.as_ref().err().map(|e| e.kind())
}

#[tokio::test(start_paused = true)]
async fn second_call_is_warm() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    let a = call(&h, &f, r#"{"n":1}"#).await;
    assert_eq!(a.result.as_ref().unwrap().get(), r#"{"n":1}"#);
    assert_eq!(a.start, Some(StartKind::Cold));
    assert!(a.init_ms.is_some());
    let b = call(&h, &f, r#"{"n":2}"#).await;
    assert_eq!(b.start, Some(StartKind::Warm));
    assert_eq!(b.init_ms, None);
    assert_eq!(h.fake.state.boots.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_kills_and_replaces_the_sandbox() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            timeout_ms: Some(100),
            ..Default::default()
        },
    )
    .await;
    let a = call(&h, &f, r#"{"sleep_ms": 10000}"#).await;
    let err = a.result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.to_string(), "timed out after 100 ms");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        h.fake.state.alive.load(Ordering::SeqCst),
        0,
        "timed-out sandbox not removed"
    );
    let b = call(&h, &f, "{}").await;
    assert!(b.result.is_ok(), "{:?}", b.result);
    assert_eq!(b.start, Some(StartKind::Cold));
}

#[tokio::test(start_paused = true)]
async fn crash_and_oom_are_typed_and_the_function_recovers() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    assert_eq!(
        kind(&call(&h, &f, r#"{"crash": true}"#).await),
        Some(ErrorKind::SandboxCrashed)
    );
    assert_eq!(
        kind(&call(&h, &f, r#"{"oom": true}"#).await),
        Some(ErrorKind::OutOfMemory)
    );
    assert_eq!(
        kind(&call(&h, &f, r#"{"raise": "boom"}"#).await),
        Some(ErrorKind::FunctionError)
    );
    assert!(call(&h, &f, "{}").await.result.is_ok());
}

#[tokio::test(start_paused = true)]
async fn timeout_inside_a_batch_fails_one_call_and_requeues_the_rest() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            timeout_ms: Some(1000),
            max_concurrency: Some(1),
            batch_max_size: Some(8),
            ..Default::default()
        },
    )
    .await;
    // The first call holds the only sandbox while four more queue up; they
    // then go out as one batch whose second call times out.
    let first = tokio::spawn({
        let (e, f) = (h.engine.clone(), f.clone());
        async move { e.invoke(f, ev(r#"{"sleep_ms": 50}"#), Trigger::Api).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let events = [
        r#"{"i":0}"#,
        r#"{"i":1,"sleep_ms":60000}"#,
        r#"{"i":2}"#,
        r#"{"i":3}"#,
    ];
    let mut calls = Vec::new();
    for e in events {
        let (engine, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            engine.invoke(f, ev(e), Trigger::Api).await
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(first.await.unwrap().result.is_ok());
    let outcomes: Vec<Outcome> = futures_join(calls).await;
    assert!(outcomes[0].result.is_ok());
    assert_eq!(outcomes[0].batch_size, 4);
    assert_eq!(kind(&outcomes[1]), Some(ErrorKind::Timeout));
    // Re-queued after the timeout, then served by a replacement sandbox.
    assert!(outcomes[2].result.is_ok(), "{:?}", outcomes[2].result);
    assert!(outcomes[3].result.is_ok());
    assert_eq!(outcomes[2].start, Some(StartKind::Cold));
    assert_eq!(h.fake.state.boots.load(Ordering::SeqCst), 2);
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn capacity_bound_throttles_instead_of_overcommitting() {
    let h = harness(EngineConfig {
        memory_budget_mb: 256,
        ..no_stems()
    })
    .await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            memory_mb: Some(128),
            queue_timeout_ms: Some(200),
            timeout_ms: Some(5000),
            ..Default::default()
        },
    )
    .await;
    let mut calls = Vec::new();
    for _ in 0..5 {
        let (engine, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            engine
                .invoke(f, ev(r#"{"sleep_ms": 1000}"#), Trigger::Api)
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.engine.memory().0, 256);
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 2);
    let outcomes = futures_join(calls).await;
    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let throttled: Vec<_> = outcomes
        .iter()
        .filter(|o| kind(o) == Some(ErrorKind::Throttled))
        .collect();
    assert_eq!(ok, 2);
    assert_eq!(throttled.len(), 3);
    assert_eq!(
        throttled[0].result.as_ref().unwrap_err().retry_after_s(),
        Some(1)
    );
}

#[tokio::test(start_paused = true)]
async fn idle_sandboxes_of_another_function_are_evicted_for_room() {
    let h = harness(EngineConfig {
        memory_budget_mb: 128,
        ..no_stems()
    })
    .await;
    let a = deploy(&h, "a", FunctionPatch::default()).await;
    let b = deploy(&h, "b", FunctionPatch::default()).await;
    assert!(call(&h, &a, "{}").await.result.is_ok());
    // `a` keeps an idle sandbox that fills the budget; `b` still runs.
    let o = call(&h, &b, "{}").await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(h.engine.memory().0, 128);
}

#[tokio::test(start_paused = true)]
async fn full_queue_throttles_at_once() {
    let h = harness(EngineConfig {
        queue_capacity: 2,
        ..no_stems()
    })
    .await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            max_concurrency: Some(1),
            ..Default::default()
        },
    )
    .await;
    let mut calls = Vec::new();
    for _ in 0..3 {
        let (engine, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            engine
                .invoke(f, ev(r#"{"sleep_ms": 100}"#), Trigger::Api)
                .await
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // One running, two queued: the fourth is refused without waiting.
    let o = call(&h, &f, "{}").await;
    assert_eq!(kind(&o), Some(ErrorKind::Throttled));
    assert!(o.total_ms < 1.0);
    for o in futures_join(calls).await {
        assert!(o.result.is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn init_error_fails_the_queued_calls_once() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            handler: Some("missing.handler".into()),
            ..Default::default()
        },
    )
    .await;
    let o = call(&h, &f, "{}").await;
    let err = o.result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InitError);
    assert!(
        err.to_string().contains("HandlerNotFound"),
        "{}",
        err.to_string()
    );
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn boot_failure_is_reported_and_the_next_call_retries() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    h.fake.state.failing_boots.store(1, Ordering::SeqCst);
    assert_eq!(
        kind(&call(&h, &f, "{}").await),
        Some(ErrorKind::BackendUnavailable)
    );
    // Backed off: the next call fails fast, saying when to retry.
    let during = call(&h, &f, "{}").await;
    let err = during.result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BackendUnavailable);
    assert!(err.to_string().contains("failing"), "{}", err.to_string());
    assert_eq!(err.retry_after_s(), Some(1));
    assert_eq!(h.fake.state.boots.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(call(&h, &f, "{}").await.result.is_ok());
    assert_eq!(h.engine.memory().0, 128);
}

#[tokio::test(start_paused = true)]
async fn a_failing_backend_is_not_retried_in_a_hot_loop() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    h.fake.state.failing_boots.store(1000, Ordering::SeqCst);
    // 10 s of calls every 10 ms: with exponential back-off (0.1 s doubling
    // to 30 s) only a handful of boots are attempted.
    for _ in 0..1000 {
        let o = call(&h, &f, "{}").await;
        assert_eq!(kind(&o), Some(ErrorKind::BackendUnavailable));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let boots = h.fake.state.boots.load(Ordering::SeqCst);
    assert!((5..=10).contains(&boots), "{boots} boot attempts");
}

#[tokio::test(start_paused = true)]
async fn a_new_version_drains_the_old_pool() {
    let h = harness(no_stems()).await;
    let v1 = deploy(&h, "f", FunctionPatch::default()).await;
    assert!(call(&h, &v1, "{}").await.result.is_ok());
    let mut v2 = (*v1).clone();
    v2.version += 1;
    let v2 = Arc::new(v2);
    h.engine.function_updated(v2.clone());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
    let o = call(&h, &v2, "{}").await;
    assert_eq!(o.start, Some(StartKind::Cold));
    assert_eq!(o.version, v2.version);
}

#[tokio::test(start_paused = true)]
async fn idle_sandboxes_are_reaped_after_keep_alive() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            keep_alive_s: Some(5),
            ..Default::default()
        },
    )
    .await;
    assert!(call(&h, &f, "{}").await.result.is_ok());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
    assert_eq!(h.engine.memory().0, 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_calls_in_flight_then_removes_sandboxes() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    let running = tokio::spawn({
        let (e, f) = (h.engine.clone(), f.clone());
        async move { e.invoke(f, ev(r#"{"sleep_ms": 500}"#), Trigger::Api).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    h.engine.shutdown(Duration::from_secs(5)).await;
    assert!(running.await.unwrap().result.is_ok());
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
    assert_eq!(
        kind(&call(&h, &f, "{}").await),
        Some(ErrorKind::ShuttingDown)
    );
}

/// A call that ends during the drain retires its sandbox, and a stem cell
/// still booting at the signal is retired when its boot ends: shutdown
/// returns only once both are removed, however long removal takes. (It
/// returned early once, and the process exited with containers left.)
#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_removals_and_for_boots_in_progress() {
    let h = harness(with_stems()).await;
    h.fake.state.destroy_delay_ms.store(300, Ordering::SeqCst);
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    h.engine.prepare(std::slice::from_ref(&f));
    ticks(1).await;
    assert_eq!(h.engine.pools().stem_cells[0].ready, 1);
    // The call takes the stem cell; its replacement boots slowly.
    h.fake.state.boot_delay_ms.store(2000, Ordering::SeqCst);
    let running = tokio::spawn({
        let (e, f) = (h.engine.clone(), f.clone());
        async move { e.invoke(f, ev(r#"{"sleep_ms": 500}"#), Trigger::Api).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        h.fake.state.boots.load(Ordering::SeqCst),
        2,
        "the refill boot started"
    );
    h.engine.shutdown(Duration::from_secs(5)).await;
    assert!(running.await.unwrap().result.is_ok());
    assert_eq!(h.fake.state.alive_ids(), Vec::<String>::new());
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
    assert_eq!(
        h.fake.state.destroyed.load(Ordering::SeqCst),
        2,
        "both sandboxes booted were removed"
    );
}

/// Stem cells on: one per key at first, up to four.
fn with_stems() -> EngineConfig {
    EngineConfig {
        stem_initial: 1,
        stem_max: 4,
        ..EngineConfig::default()
    }
}

/// Lets the maintainer run a few ticks.
async fn ticks(n: u64) {
    tokio::time::sleep(Duration::from_millis(1000 * n + 10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_functions_first_call_is_served_by_a_stem_cell() {
    let h = harness(with_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    h.engine.prepare(std::slice::from_ref(&f));
    ticks(1).await;
    let pools = h.engine.pools();
    assert_eq!(pools.stem_cells.len(), 1);
    assert_eq!(pools.stem_cells[0].ready, 1);
    let o = call(&h, &f, "{}").await;
    assert!(o.result.is_ok());
    assert_eq!(o.start, Some(StartKind::Stem));
    assert!(o.init_ms.is_some());
    // The pool is refilled in the background.
    ticks(1).await;
    assert_eq!(h.engine.pools().stem_cells[0].ready, 1);
    assert_eq!(h.engine.pools().stem_cells[0].hits, 1);
    // And the function's second call is warm.
    assert_eq!(call(&h, &f, "{}").await.start, Some(StartKind::Warm));
}

#[tokio::test(start_paused = true)]
async fn stem_pools_grow_with_demand_and_shrink_when_unused() {
    let h = harness(with_stems()).await;
    let mut fs = Vec::new();
    for i in 0..4 {
        fs.push(deploy(&h, &format!("f{i}"), FunctionPatch::default()).await);
    }
    h.engine.prepare(&fs);
    ticks(1).await;
    // Four new functions at once: one stem cell, three misses.
    let mut calls = Vec::new();
    for f in &fs {
        let (e, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            e.invoke(f, ev(r#"{"sleep_ms": 100}"#), Trigger::Api).await
        }));
    }
    let outcomes = futures_join(calls).await;
    let stems = outcomes
        .iter()
        .filter(|o| o.start == Some(StartKind::Stem))
        .count();
    assert_eq!(stems, 1);
    let pool = &h.engine.pools().stem_cells[0];
    assert_eq!(pool.misses, 3);
    assert_eq!(pool.target, 4, "grew toward stem_max");
    ticks(2).await;
    assert_eq!(h.engine.pools().stem_cells[0].ready, 4);
    // Unused for minutes: back down to the initial size.
    ticks(300).await;
    let pool = &h.engine.pools().stem_cells[0];
    assert_eq!(pool.target, 1);
    assert_eq!(pool.ready, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hot_function_cannot_take_the_last_stem_cell() {
    let h = harness(with_stems()).await;
    let hot = deploy(&h, "hot", FunctionPatch::default()).await;
    let cold = deploy(&h, "cold", FunctionPatch::default()).await;
    h.engine.prepare(&[hot.clone(), cold.clone()]);
    ticks(1).await;
    // `hot` is busy on its first sandbox (from the stem cell)...
    let first = tokio::spawn({
        let (e, f) = (h.engine.clone(), hot.clone());
        async move { e.invoke(f, ev(r#"{"sleep_ms": 2500}"#), Trigger::Api).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    ticks(1).await; // the pool refills to one
    assert_eq!(h.engine.pools().stem_cells[0].ready, 1);
    // ...so its second call boots a sandbox instead of taking the last cell,
    let second = call(&h, &hot, "{}").await;
    assert_eq!(second.start, Some(StartKind::Cold));
    // which `cold`'s first call then gets.
    let o = call(&h, &cold, "{}").await;
    assert_eq!(o.start, Some(StartKind::Stem));
    assert!(first.await.unwrap().result.is_ok());
}

#[tokio::test(start_paused = true)]
async fn batch_max_wait_gathers_calls_into_one_batch() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            batch_max_size: Some(4),
            batch_max_wait_ms: Some(50),
            max_concurrency: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert!(call(&h, &f, "{}").await.result.is_ok()); // a warm sandbox now exists
    let mut calls = Vec::new();
    for i in 0..3 {
        let (e, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            e.invoke(f, ev(&format!(r#"{{"i":{i}}}"#)), Trigger::Api)
                .await
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for o in futures_join(calls).await {
        assert!(o.result.is_ok());
        assert_eq!(o.batch_size, 3);
        assert_eq!(o.start, Some(StartKind::Warm));
    }
    // A full batch goes at once, without waiting.
    let mut calls = Vec::new();
    for _ in 0..4 {
        let (e, f) = (h.engine.clone(), f.clone());
        calls.push(tokio::spawn(async move {
            e.invoke(f, ev("{}"), Trigger::Api).await
        }));
    }
    for o in futures_join(calls).await {
        assert_eq!(o.batch_size, 4);
        assert!(o.queue_ms < 1.0, "waited {} ms", o.queue_ms);
    }
}

#[tokio::test(start_paused = true)]
async fn min_warm_is_kept_and_a_killed_sandbox_is_replaced() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            min_warm: Some(2),
            keep_alive_s: Some(1),
            ..Default::default()
        },
    )
    .await;
    h.engine.prepare(std::slice::from_ref(&f));
    ticks(1).await;
    let pool = h.engine.pools().functions[0].clone();
    assert_eq!(pool.sandboxes["idle"], 2, "{pool:?}");
    assert_eq!(pool.desired, 2);
    // Long past the keep-alive, min_warm still holds.
    ticks(10).await;
    assert_eq!(h.engine.pools().functions[0].sandboxes["idle"], 2);
    // Killed from outside: dropped from the pool and replaced.
    let victim = h.fake.state.alive_ids()[0].clone();
    h.fake.crash(&victim);
    ticks(1).await;
    let ids = h.fake.state.alive_ids();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&victim));
    assert_eq!(h.engine.pools().functions[0].sandboxes["idle"], 2);
    assert_eq!(call(&h, &f, "{}").await.start, Some(StartKind::Warm));
}

#[tokio::test(start_paused = true)]
async fn prewarm_boots_sandboxes_within_limits() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            max_concurrency: Some(3),
            keep_alive_s: Some(600),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        h.engine.prewarm(f.clone(), 5),
        3,
        "bounded by max_concurrency"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(h.engine.pools().functions[0].sandboxes["idle"], 3);
    assert_eq!(call(&h, &f, "{}").await.start, Some(StartKind::Warm));
}

#[tokio::test(start_paused = true)]
async fn the_autoscaler_prewarms_for_sustained_load_and_scales_to_zero() {
    let h = harness(no_stems()).await;
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            keep_alive_s: Some(30),
            ..Default::default()
        },
    )
    .await;
    // Three callers, each calling again as soon as answered, for 20 s.
    let mut loops = Vec::new();
    for _ in 0..3 {
        let (e, f) = (h.engine.clone(), f.clone());
        loops.push(tokio::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(20);
            while tokio::time::Instant::now() < end {
                let o = e
                    .invoke(f.clone(), ev(r#"{"sleep_ms": 200}"#), Trigger::Api)
                    .await;
                assert!(o.result.is_ok());
            }
        }));
    }
    ticks(10).await;
    let pool = h.engine.pools().functions[0].clone();
    assert_eq!(pool.desired, 3, "{pool:?}");
    for l in loops {
        l.await.unwrap();
    }
    // Load gone: after the stable window and the keep-alive, nothing is left.
    ticks(120).await;
    let pool = h.engine.pools().functions[0].clone();
    assert_eq!(pool.desired, 0);
    assert_eq!(pool.sandboxes["idle"], 0);
    assert_eq!(h.engine.memory().0, 0);
}

/// Death notifications that overflow (the listener lagged) are not lost:
/// the engine asks the backend which sandboxes still run.
#[tokio::test(start_paused = true)]
async fn a_lagging_death_listener_resynchronizes_from_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (recorder, _) =
        Recorder::start(store.clone(), Arc::new(ignis_metrics::Metrics::new()), 1000);
    let fake = FakeBackend::new();
    // Room for one notification: three deaths at once overflow it.
    fake.state.death_capacity.store(1, Ordering::SeqCst);
    let engine = Engine::new(
        no_stems(),
        vec![Arc::new(fake.clone())],
        store.clone(),
        recorder,
    );
    let h = Harness {
        engine,
        fake,
        store,
        _dir: dir,
    };
    let f = deploy(
        &h,
        "f",
        FunctionPatch {
            min_warm: Some(3),
            max_concurrency: Some(3),
            ..Default::default()
        },
    )
    .await;
    h.engine.prepare(std::slice::from_ref(&f));
    ticks(1).await;
    assert_eq!(h.engine.pools().functions[0].sandboxes["idle"], 3);
    let victims = h.fake.state.alive_ids();
    for v in &victims {
        h.fake.crash(v);
    }
    ticks(2).await;
    // All three were dropped and replaced; none of the idle ones is dead.
    let alive = h.fake.state.alive_ids();
    assert_eq!(alive.len(), 3, "{alive:?}");
    assert!(
        victims.iter().all(|v| !alive.contains(v)),
        "{victims:?} {alive:?}"
    );
    assert_eq!(h.engine.pools().functions[0].sandboxes["idle"], 3);
    for _ in 0..3 {
        let o = call(&h, &f, "{}").await;
        assert_eq!(kind(&o), None, "{:?}", o.result);
    }
}

/// A bootstrap that dies of out-of-memory at start is the function's
/// problem (502 OutOfMemory), not the platform being down (503), and it
/// does not back the backend off.
#[tokio::test(start_paused = true)]
async fn out_of_memory_at_start_is_reported_as_such() {
    let h = harness(no_stems()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    *h.fake.state.boot_exit.lock().unwrap() = Some(ignis_sandbox::ExitReason::OutOfMemory);
    let o = call(&h, &f, "{}").await;
    assert_eq!(kind(&o), Some(ErrorKind::OutOfMemory), "{:?}", o.result);
    // No back-off: the next call boots at once and works.
    let o = call(&h, &f, "{}").await;
    assert_eq!(kind(&o), None, "{:?}", o.result);
    assert_eq!(o.start, Some(StartKind::Cold));
}
