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

async fn harness(config: EngineConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (recorder, _) = Recorder::start(store.clone(), 1000);
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
    Arc::new(h.store.create_function(name, &config, &code).await.unwrap())
}

fn ev(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).unwrap()
}

async fn call(h: &Harness, f: &Arc<Function>, event: &str) -> Outcome {
    h.engine.invoke(f.clone(), ev(event), Trigger::Api).await
}

fn kind(o: &Outcome) -> Option<ErrorKind> {
    o.result.as_ref().err().map(|e| e.kind)
}

#[tokio::test(start_paused = true)]
async fn second_call_is_warm() {
    let h = harness(EngineConfig::default()).await;
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
    let h = harness(EngineConfig::default()).await;
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
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(err.message, "timed out after 100 ms");
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
    let h = harness(EngineConfig::default()).await;
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
    let h = harness(EngineConfig::default()).await;
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
        ..Default::default()
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
        throttled[0].result.as_ref().unwrap_err().retry_after_s,
        Some(1)
    );
}

#[tokio::test(start_paused = true)]
async fn idle_sandboxes_of_another_function_are_evicted_for_room() {
    let h = harness(EngineConfig {
        memory_budget_mb: 128,
        ..Default::default()
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
        ..Default::default()
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
    let h = harness(EngineConfig::default()).await;
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
    assert_eq!(err.kind, ErrorKind::InitError);
    assert!(err.message.contains("HandlerNotFound"), "{}", err.message);
    assert_eq!(h.fake.state.alive.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn boot_failure_is_reported_and_the_next_call_retries() {
    let h = harness(EngineConfig::default()).await;
    let f = deploy(&h, "f", FunctionPatch::default()).await;
    h.fake.state.failing_boots.store(1, Ordering::SeqCst);
    assert_eq!(
        kind(&call(&h, &f, "{}").await),
        Some(ErrorKind::BackendUnavailable)
    );
    assert!(call(&h, &f, "{}").await.result.is_ok());
    assert_eq!(h.engine.memory().0, 128);
}

#[tokio::test(start_paused = true)]
async fn a_new_version_drains_the_old_pool() {
    let h = harness(EngineConfig::default()).await;
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
    let h = harness(EngineConfig::default()).await;
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
    let h = harness(EngineConfig::default()).await;
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
