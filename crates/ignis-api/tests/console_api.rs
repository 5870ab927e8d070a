//! What the web console relies on, in process: its asset routes (the
//! fallback to the page, cache headers, the page of a binary built without
//! the console) and the API it added (files, versions, saved test events,
//! one invocation, the error feed, the system series, backends side by
//! side).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{send, world, world_with};
use http_body_util::BodyExt;
use ignis_api::{console::Source, ApiConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn get_raw(app: &axum::Router, path: &str) -> axum::response::Response {
    app.clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(r: axum::response::Response) -> String {
    String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

#[tokio::test]
async fn console_assets_fall_back_to_the_page_and_cache_right() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("index.html"), "<!doctype html><p>console").unwrap();
    std::fs::write(dist.path().join("assets/main-1a2b3c.js"), "console.log(1)").unwrap();
    let w = world_with(ApiConfig {
        console: Source::Dir(dist.path().to_path_buf()),
        ..ApiConfig::default()
    })
    .await;
    for path in [
        "/",
        "/functions/default/f/monitor",
        "/keys?x=1",
        "/index.html",
    ] {
        let r = get_raw(&w.app, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(text(r).await.contains("console"), "{path}");
    }
    let r = get_raw(&w.app, "/assets/main-1a2b3c.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    // A stale page asking for a chunk that is gone fails loudly.
    assert_eq!(
        get_raw(&w.app, "/assets/main-old.js").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_raw(&w.app, "/assets/../index.html").await.status(),
        StatusCode::NOT_FOUND
    );
    // The API's paths keep their JSON errors.
    for path in ["/api/v1/nope", "/api"] {
        let r = get_raw(&w.app, path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(text(r).await.contains("\"NotFound\""), "{path}");
    }
    let (status, body) = send(&w.app, Method::POST, "/some/page", None, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_binary_without_the_console_says_how_to_build_it() {
    let empty = tempfile::tempdir().unwrap();
    let w = world_with(ApiConfig {
        console: Source::Dir(empty.path().to_path_buf()),
        ..ApiConfig::default()
    })
    .await;
    let r = get_raw(&w.app, "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = text(r).await;
    assert!(body.contains("npm ci &amp;&amp; npm run build"), "{body}");
    assert!(!Source::Dir(empty.path().to_path_buf()).built());
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn files_versions_and_saved_test_events() {
    let w = world().await;
    let admin = w.admin();
    let f = "/api/v1/namespaces/default/functions/f";
    let (s, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/files"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let files = parse(&b);
    assert_eq!(files["version"], 1);
    assert!(files["files"]["main.py"]
        .as_str()
        .unwrap()
        .contains("def handler"));
    let (s, b) = send(
        &w.app,
        Method::PUT,
        f,
        Some(&admin),
        json!({"memory_mb": 256, "env": {"TOKEN": "secret-value"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/versions"),
        Some(&admin),
        json!(null),
    )
    .await;
    let v = parse(&b);
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2, "newest first");
    assert_eq!(versions[0]["config"]["memory_mb"], 256);
    assert_eq!(versions[1]["config"]["memory_mb"], 128);
    assert_eq!(versions[0]["config"]["env"]["TOKEN"], "secret-value");
    // Viewers see the history with env values masked.
    let viewer = w.keys.iter().find(|k| k.0 == "viewer").unwrap().3.clone();
    let (_, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/versions"),
        Some(&viewer),
        json!(null),
    )
    .await;
    assert!(!b.contains("secret-value"), "{b}");
    // Test events: save, list, replace, refuse bad ones, delete.
    let events = format!("{f}/test-events");
    let (s, b) = send(
        &w.app,
        Method::PUT,
        &format!("{events}/basic"),
        Some(&admin),
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = send(
        &w.app,
        Method::PUT,
        &format!("{events}/basic"),
        Some(&admin),
        json!([1, 2]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = send(&w.app, Method::GET, &events, Some(&viewer), json!(null)).await;
    let list = parse(&b);
    assert_eq!(list["events"].as_array().unwrap().len(), 1);
    assert_eq!(list["events"][0]["event"], json!([1, 2]));
    let (s, _) = send(
        &w.app,
        Method::PUT,
        &format!("{events}/basic"),
        Some(&viewer),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "viewers cannot save");
    let (s, _) = send(
        &w.app,
        Method::PUT,
        &format!("{events}/bad%2Fname"),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let resp = w
        .app
        .clone()
        .oneshot(
            Request::put(format!("{events}/notjson"))
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (s, _) = send(
        &w.app,
        Method::DELETE,
        &format!("{events}/basic"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = send(
        &w.app,
        Method::DELETE,
        &format!("{events}/basic"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = send(
        &w.app,
        Method::GET,
        "/api/v1/namespaces/default/functions/nope/test-events",
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invocations_errors_series_and_backends() {
    let w = world().await;
    let admin = w.admin();
    let f = "/api/v1/namespaces/default/functions/f";
    // The fake backend echoes, or raises on {"raise": ...}.
    let (s, _) = send(
        &w.app,
        Method::POST,
        &format!("{f}/invoke"),
        Some(&admin),
        json!({"ok": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(
        &w.app,
        Method::POST,
        &format!("{f}/invoke"),
        Some(&admin),
        json!({"raise": "bad day"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    // Records are written off the request path.
    let mut failed = Value::Null;
    for _ in 0..100 {
        let (_, b) = send(
            &w.app,
            Method::GET,
            &format!("{f}/invocations?status=error"),
            Some(&admin),
            json!(null),
        )
        .await;
        let v = parse(&b);
        if let Some(r) = v["invocations"].as_array().and_then(|a| a.first()) {
            failed = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(failed["status"], "error", "{failed}");
    assert_eq!(failed["error_stack"], "at fake");
    let id = failed["id"].as_str().unwrap();
    let (s, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/invocations/{id}"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(parse(&b)["error_message"], "Error: bad day");
    let (s, _) = send(
        &w.app,
        Method::GET,
        &format!("{f}/invocations/inv-nope"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/invocations?status=success"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(parse(&b)["invocations"].as_array().unwrap().len(), 1);

    // The error feed: this call, visible to keys of its namespace only.
    let (_, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/errors?limit=5",
        Some(&admin),
        json!(null),
    )
    .await;
    let feed = parse(&b);
    assert_eq!(feed["errors"][0]["id"], id, "{b}");
    assert_eq!(feed["errors"][0]["error_type"], "FunctionError");
    let team = w
        .keys
        .iter()
        .find(|k| k.0 == "developer@team")
        .unwrap()
        .3
        .clone();
    let (_, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/errors",
        Some(&team),
        json!(null),
    )
    .await;
    assert_eq!(parse(&b)["errors"].as_array().unwrap().len(), 0, "{b}");

    // The system series counts both calls.
    let (s, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/series?window=5m&step=1m",
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let total: u64 = parse(&b)["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2);
    // Backends side by side: the fake stands in for Docker.
    let (s, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/backends?window=5m",
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = parse(&b);
    let docker = &v["backends"][0];
    assert_eq!(docker["backend"], "docker");
    assert_eq!(docker["stats"]["requests"], 2);
    assert_eq!(docker["functions"], 2, "default/f and team/f: {b}");
    let (_, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/backends",
        Some(&team),
        json!(null),
    )
    .await;
    let v2 = parse(&b);
    assert_eq!(
        v2["backends"][0]["functions"], 1,
        "a team key sees its own: {b}"
    );
    assert_eq!(v2["backends"][0]["stats"]["requests"], 0, "{b}");
    assert!(v["usd_per_vcpu_hour"].as_f64().unwrap() > 0.0);
}

/// The key of a label in the world (`developer@team`, ...).
fn key_of(w: &common::World, label: &str) -> String {
    w.keys.iter().find(|k| k.0 == label).unwrap().3.clone()
}

/// GETs `path` until `done` accepts its body (metrics and records are
/// counted off the request path).
async fn eventually(
    w: &common::World,
    key: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (s, b) = send(&w.app, Method::GET, path, Some(key), json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        last = parse(&b);
        if done(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} never got there: {last}");
}

#[tokio::test]
async fn sandboxes_one_by_one_and_the_last_call() {
    let w = world().await;
    let admin = w.admin();
    let f = "/api/v1/namespaces/default/functions/f";
    let (_, b) = send(
        &w.app,
        Method::GET,
        &format!("{f}/sandboxes"),
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(parse(&b)["sandboxes"], json!([]), "{b}");
    let (_, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/summary",
        Some(&admin),
        json!(null),
    )
    .await;
    assert_eq!(
        parse(&b)["functions"]["f"]["last_call_at_ms"],
        Value::Null,
        "{b}"
    );

    let before = ignis_core::now_ms();
    for _ in 0..3 {
        let (s, _) = send(
            &w.app,
            Method::POST,
            &format!("{f}/invoke"),
            Some(&admin),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let listed = eventually(&w, &admin, &format!("{f}/sandboxes"), |v| {
        v["sandboxes"][0]["state"] == "idle"
    })
    .await;
    let sandboxes = listed["sandboxes"].as_array().unwrap();
    assert_eq!(sandboxes.len(), 1, "{listed}");
    let sb = &sandboxes[0];
    assert!(sb["id"].as_str().unwrap().starts_with("sb-"), "{sb}");
    assert_eq!(sb["calls"], 3, "{sb}");
    assert_eq!(sb["version"], 1);
    assert_eq!(sb["backend"], "docker");
    assert_eq!(sb["memory_mb"], 128);
    assert!(sb["age_ms"].as_u64().unwrap() >= sb["in_state_ms"].as_u64().unwrap());
    // The id is the one the records carry.
    let records = eventually(&w, &admin, &format!("{f}/invocations"), |v| {
        v["invocations"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    assert_eq!(records["invocations"][0]["sandbox_id"], sb["id"]);

    let summary = eventually(&w, &admin, "/api/v1/metrics/summary", |v| {
        v["functions"]["f"]["last_call_at_ms"].is_i64()
    })
    .await;
    let at = summary["functions"]["f"]["last_call_at_ms"]
        .as_i64()
        .unwrap();
    assert!(at >= before && at <= ignis_core::now_ms(), "{at}");
    assert_eq!(summary["system"]["last_call_at_ms"], at);
    // Another namespace's function was never called.
    assert_eq!(
        summary["functions"]["team/f"]["last_call_at_ms"],
        Value::Null
    );
    // A viewer limited to another namespace cannot list them.
    let (s, _) = send(
        &w.app,
        Method::GET,
        "/api/v1/namespaces/default/functions/f/sandboxes",
        Some(&key_of(&w, "developer@team")),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_key_of_some_namespaces_sees_totals_of_those_only() {
    let w = world().await;
    let admin = w.admin();
    for _ in 0..4 {
        let (s, _) = send(
            &w.app,
            Method::POST,
            "/api/v1/functions/f/invoke",
            Some(&admin),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = send(
        &w.app,
        Method::POST,
        "/api/v1/namespaces/team/functions/f/invoke",
        Some(&admin),
        json!({"raise": "team error"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    let all = eventually(&w, &admin, "/api/v1/metrics/summary", |v| {
        v["system"]["requests"] == 5
    })
    .await;
    assert_eq!(all["system"]["errors"], 1);

    let team = key_of(&w, "developer@team");
    let (_, b) = send(
        &w.app,
        Method::GET,
        "/api/v1/metrics/summary",
        Some(&team),
        json!(null),
    )
    .await;
    let mine = parse(&b);
    let names: Vec<&String> = mine["functions"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["team/f"], "{mine}");
    assert_eq!(mine["system"]["requests"], 1, "{mine}");
    assert_eq!(mine["system"]["errors"], 1, "{mine}");
    assert_eq!(mine["system"]["error_rate"], 1.0, "{mine}");

    // The live stream: the same rule. Its last minute ends with the last
    // complete second: wait for the calls' second to be complete.
    let mut first = Value::Null;
    for _ in 0..300 {
        first = first_snapshot(&w.app, &admin).await;
        if first["system"]["last_minute"]["requests"] == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(first["system"]["last_minute"]["requests"], 5, "{first}");
    let mine = first_snapshot(&w.app, &team).await;
    let names: Vec<&String> = mine["functions"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["team/f"], "{mine}");
    assert_eq!(mine["system"]["last_minute"]["requests"], 1, "{mine}");
    assert_eq!(mine["system"]["last_minute"]["errors"], 1, "{mine}");
    assert_eq!(mine["resources"]["sandboxes"], json!({}), "{mine}");
    assert!(first["resources"]["sandboxes"].as_object().is_some());
}

/// The first event of `GET /api/v1/metrics/stream`, parsed.
async fn first_snapshot(app: &axum::Router, key: &str) -> Value {
    let req = Request::get("/api/v1/metrics/stream")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = futures::StreamExt::next(&mut body).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    serde_json::from_str(&data).unwrap()
}
