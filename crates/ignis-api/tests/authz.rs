//! Every route × every role, in process through `router()` with the fake
//! backend and a real SQLite store: each role gets exactly what the role
//! table allows, anonymous callers get 401 except on public routes, and no
//! route exists without an authorization decision (the router, the access
//! table and the OpenAPI document list the same routes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{send, world};

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ignis_api::auth::{access_table, Access, Scope};
use ignis_api::{router, ApiConfig, AppState, Registry};
use ignis_auth::{authorize, Action, Auth, AuthConfig, Decision, KeySpec, ManualClock, Resource};
use ignis_core::auth::{Namespaces, Role};
use ignis_engine::{Engine, EngineConfig, Recorder};
use ignis_store::{SqliteStore, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A concrete request for a route template.
fn concrete(path: &str, ns: &str) -> String {
    path.replace("{namespace}", ns)
        .replace("{name}", "f")
        .replace("{id}", "key-does-not-exist")
        .replace("{*path}", if ns == "team" { "t" } else { "d" })
}

fn body_for(method: &Method, path: &str) -> Value {
    match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/warm") => json!({"count": 1}),
        ("POST", "/api/v1/keys") => json!({"name": "made in the matrix", "role": "viewer"}),
        ("POST", "/api/v1/namespaces") => json!({"name": "made-in-the-matrix"}),
        ("POST", p) if p.ends_with("/functions") => json!({"name": "new-one", "runtime": "python3",
            "handler": "main.handler", "code": {"files": {"main.py": "def handler(e, c):\n    return 1\n"}}}),
        ("PUT", _) => json!({"memory_mb": 256}),
        _ => json!({}),
    }
}

/// What the role table says, resolved by hand from the route's access.
fn allowed(role: Role, namespaces: &Namespaces, access: Access, ns: &str) -> bool {
    let p = ignis_auth::Principal {
        key_id: "k".into(),
        key_name: "k".into(),
        role,
        namespaces: namespaces.clone(),
        via: ignis_auth::Via::Key,
    };
    match access {
        Access::Public => true,
        Access::Requires(action, scope) => {
            let resource = match scope {
                Scope::PathNamespace | Scope::PathNamespaceOrAll => Resource::Namespace(ns),
                Scope::Visible => Resource::Visible,
                Scope::System => Resource::System,
            };
            authorize(&p, action, resource) == Decision::Allow
        }
        Access::Metrics => authorize(&p, Action::ReadMetrics, Resource::System) == Decision::Allow,
        Access::Trigger => {
            authorize(&p, Action::Invoke, Resource::Namespace(ns)) == Decision::Allow
        }
    }
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_table_allows_on_every_route() {
    let w = world().await;
    let mut checked = 0;
    for route in access_table() {
        // Delete-like routes last would change the world; each request
        // gets a world of its own when it could change it.
        for ns in ["default", "team"] {
            if !route.path.contains("{namespace}")
                && !route.path.contains("{*path}")
                && ns == "team"
            {
                continue;
            }
            let path = concrete(&route.path, ns);
            let method = route.method.clone();
            // Anonymous.
            let (status, text) = send(
                &w.app,
                method.clone(),
                &path,
                None,
                body_for(&method, &route.path),
            )
            .await;
            match route.access {
                Access::Public => assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "anonymous {method} {path}: {status} {text}"
                ),
                _ => assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "anonymous {method} {path}: {text}"
                ),
            }
            for (label, role, namespaces, _) in &w.keys {
                // A world of its own for a request that changes
                // something: a delete must not change what the next role
                // sees.
                let fresh;
                let (app, key) = if method == Method::GET {
                    (
                        &w.app,
                        w.keys.iter().find(|k| &k.0 == label).unwrap().3.clone(),
                    )
                } else {
                    fresh = world().await;
                    (
                        &fresh.app,
                        fresh.keys.iter().find(|k| &k.0 == label).unwrap().3.clone(),
                    )
                };
                let (status, text) = send(
                    app,
                    method.clone(),
                    &path,
                    Some(&key),
                    body_for(&method, &route.path),
                )
                .await;
                let want = allowed(*role, namespaces, route.access, ns);
                let denied = match route.access {
                    // A trigger the key may not call looks like no route.
                    Access::Trigger => status == StatusCode::NOT_FOUND,
                    _ => status == StatusCode::FORBIDDEN,
                };
                assert!(
                    status != StatusCode::UNAUTHORIZED,
                    "{label} {method} {path}: {text}"
                );
                assert!(
                    status != StatusCode::INTERNAL_SERVER_ERROR,
                    "{label} {method} {path}: {status} {text}"
                );
                assert_eq!(
                    !denied, want,
                    "{label} ({role:?}) {method} {path}: got {status} {text}"
                );
                // The route exists: never the router's own 404 or 405.
                assert!(
                    !text.contains("no such endpoint") && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not routed: {text}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "only {checked} checks");
    drop(w.auth);
}

/// The router's routes, the access table and the OpenAPI document agree:
/// a route added without an authorization decision (or a document entry)
/// fails here.
#[tokio::test]
async fn the_access_table_covers_every_documented_route() {
    let doc = serde_json::to_value(<ignis_api::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                // The trigger is documented once, as POST /fn/{route}.
                let path = path.replace("/fn/{route}", "/fn/{*path}");
                documented.insert((method.to_uppercase(), path));
            }
        }
    }
    let table: BTreeSet<(String, String)> = access_table()
        .into_iter()
        .filter(|r| !r.path.starts_with("/fn/") || r.method == Method::POST)
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let undecided: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(
        undecided.is_empty(),
        "documented routes without an authorization decision: {undecided:?}"
    );
    // The document declares the security schemes, and every operation
    // that is not public requires one.
    assert!(doc["components"]["securitySchemes"]["key"].is_object());
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op["security"].as_array();
            assert!(security.is_some(), "{method} {path} declares no security");
        }
    }
}

/// Sessions expire when idle, by the injectable clock, as the router sees
/// them.
#[tokio::test]
async fn an_idle_session_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::new(ignis_core::now_ms()));
    let auth = Auth::load(store.clone(), clock.clone(), AuthConfig::default())
        .await
        .unwrap();
    let (key, _) = auth
        .create_key(KeySpec {
            name: "k".into(),
            role: Role::Viewer,
            namespaces: Namespaces::All,
            expires_at_ms: None,
        })
        .await
        .unwrap();
    let (recorder, _) = Recorder::start(store.clone(), Arc::new(ignis_metrics::Metrics::new()), 10);
    let engine = Engine::new(EngineConfig::default(), vec![], store.clone(), recorder);
    let state = Arc::new(AppState::new(
        Registry::load(store.clone()).await.unwrap(),
        engine,
        auth,
        ApiConfig::default(),
        "t".into(),
    ));
    let app = router(state);
    let login = app
        .clone()
        .oneshot(
            Request::post("/api/v1/session")
                .body(Body::from(json!({"key": key.expose()}).to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::CREATED);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let whoami = |cookie: String| {
        let app = app.clone();
        async move {
            app.oneshot(
                Request::get("/api/v1/whoami")
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
        }
    };
    assert_eq!(whoami(cookie.clone()).await, StatusCode::OK);
    clock.advance(11 * 3600 * 1000);
    assert_eq!(
        whoami(cookie.clone()).await,
        StatusCode::OK,
        "activity keeps it"
    );
    clock.advance(12 * 3600 * 1000 + 1);
    assert_eq!(
        whoami(cookie).await,
        StatusCode::UNAUTHORIZED,
        "12 idle hours end it"
    );
}
