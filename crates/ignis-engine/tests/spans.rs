//! One tracing span per invocation, carried into the tasks a call is
//! handed to: the log lines of a call's boot, run and record all name the
//! call (function, version, invocation id, backend, start kind, outcome).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ignis_core::{FunctionPatch, Runtime, Trigger};
use ignis_engine::{Engine, EngineConfig, Recorder};
use ignis_sandbox::fake::FakeBackend;
use ignis_store::{SqliteStore, Store};
use serde_json::value::RawValue;

/// Log output, in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn every_line_of_a_call_names_it() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("ignis_engine=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime is single-threaded: spawned tasks run on this
    // thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (recorder, _) =
        Recorder::start(store.clone(), Arc::new(ignis_metrics::Metrics::new()), 1000);
    let fake = FakeBackend::new();
    let engine = Engine::new(
        EngineConfig {
            stem_initial: 0,
            stem_max: 0,
            ..EngineConfig::default()
        },
        vec![Arc::new(fake.clone())],
        store.clone(),
        recorder,
    );
    let config = FunctionPatch {
        runtime: Some(Runtime::Python3),
        handler: Some("main.handler".into()),
        ..FunctionPatch::default()
    }
    .into_new_config()
    .unwrap();
    let files: BTreeMap<_, _> = [("main.py".to_string(), "x".to_string())].into();
    let code = ignis_package::from_files(&files, 1 << 20).unwrap();
    let f = Arc::new(
        store
            .create_function(
                &ignis_core::FunctionId::default_ns("spanned"),
                &config,
                &code,
            )
            .await
            .unwrap(),
    );
    let event = || RawValue::from_string("{}".into()).unwrap();

    // A failing boot: the warning comes from the cold-start task, in the span.
    fake.state.failing_boots.store(1, Ordering::SeqCst);
    let failed = engine.invoke(f.clone(), event(), Trigger::Api).await;
    assert!(failed.result.is_err());
    let lines = logs.lines();
    let warning = lines
        .iter()
        .find(|l| l.contains("cold start failed"))
        .unwrap_or_else(|| panic!("no warning: {lines:#?}"));
    assert!(
        warning.contains(&format!("id={}", failed.id)) && warning.contains("invocation{"),
        "the cold-start task's line does not name its call: {warning}"
    );
    // Past the back-off of the failed boot.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    // A cold call: booted, initialized and run in tasks of its own.
    let ok = engine.invoke(f.clone(), event(), Trigger::Api).await;
    assert!(ok.result.is_ok());
    let lines = logs.lines();
    let recorded: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ignis_engine::run") && l.contains(&ok.id))
        .collect();
    assert!(!recorded.is_empty(), "no line of the run task: {lines:#?}");
    for line in recorded {
        for field in [
            "invocation{",
            "function=spanned",
            "version=1",
            &format!("id={}", ok.id),
            "backend=docker",
            "start=\"cold\"",
        ] {
            assert!(line.contains(field), "{field} missing in {line}");
        }
    }
}
