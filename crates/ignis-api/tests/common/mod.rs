//! An in-process ignis for API tests: a real SQLite store in a temporary
//! directory, the engine on the fake backend, keys of every role.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use ignis_api::{router, ApiConfig, AppState, Registry};
use ignis_auth::{Auth, AuthConfig, KeySpec, ManualClock};
use ignis_core::auth::{Namespaces, Role};
use ignis_core::{FunctionId, FunctionPatch, HttpAuth, Runtime};
use ignis_engine::{Engine, EngineConfig, Recorder};
use ignis_sandbox::fake::FakeBackend;
use ignis_store::{SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

pub struct World {
    pub app: axum::Router,
    /// The backend every sandbox runs on: its knobs provoke failures.
    pub fake: FakeBackend,
    pub auth: Arc<Auth>,
    /// Role name → (key, principal's namespaces).
    pub keys: Vec<(String, Role, Namespaces, String)>,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(ApiConfig::default()).await
}

pub async fn world_with(config: ApiConfig) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.create_namespace("team").await.unwrap();
    let files: BTreeMap<_, _> = [(
        "main.py".to_string(),
        "def handler(e, c):\n    return e\n".to_string(),
    )]
    .into();
    let code = ignis_package::from_files(&files, 1 << 20).unwrap();
    for (ns, route) in [("default", "/d"), ("team", "/t")] {
        let config = FunctionPatch {
            runtime: Some(Runtime::Python3),
            handler: Some("main.handler".into()),
            route: Some(Some(route.into())),
            http_auth: Some(HttpAuth::Key),
            ..Default::default()
        }
        .into_new_config()
        .unwrap();
        store
            .create_function(&FunctionId::new(ns, "f"), &config, &code)
            .await
            .unwrap();
    }
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
    let auth = Auth::load(
        store.clone(),
        Arc::new(ManualClock::new(ignis_core::now_ms())),
        AuthConfig::default(),
    )
    .await
    .unwrap();
    auth.set_signing_secret(ignis_auth::aws::SigningSecret::from_bytes([7; 32]));
    let mut keys = Vec::new();
    for (label, role, namespaces) in [
        ("admin", Role::Admin, Namespaces::All),
        ("developer", Role::Developer, Namespaces::All),
        ("viewer", Role::Viewer, Namespaces::All),
        ("invoker", Role::Invoker, Namespaces::All),
        (
            "developer@team",
            Role::Developer,
            Namespaces::Only(["team".to_string()].into()),
        ),
        (
            "viewer@default",
            Role::Viewer,
            Namespaces::Only(["default".to_string()].into()),
        ),
    ] {
        let (secret, _) = auth
            .create_key(KeySpec {
                name: label.into(),
                role,
                namespaces: namespaces.clone(),
                expires_at_ms: None,
            })
            .await
            .unwrap();
        keys.push((
            label.to_string(),
            role,
            namespaces,
            secret.expose().to_string(),
        ));
    }
    let registry = Registry::load(store.clone()).await.unwrap();
    engine.prepare(&registry.list());
    let state = Arc::new(AppState::new(
        registry,
        engine,
        auth.clone(),
        config,
        "test".into(),
    ));
    World {
        app: router(state),
        fake,
        auth,
        keys,
        dir,
    }
}

pub async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    if path.ends_with("/metrics/stream") && status == StatusCode::OK {
        // An endless stream: the status says enough.
        return (status, String::new());
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

impl World {
    /// The admin key.
    pub fn admin(&self) -> String {
        self.keys[0].3.clone()
    }
}
