//! Typed errors to the edge: what each failure of a call becomes on the
//! wire (status, error type, the `x-ignis-*` headers) and in the invocation
//! record, through `router()` on the fake backend. The record must hold the
//! status the caller got.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use ignis_sandbox::ExitReason;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::World;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn error_type(&self) -> String {
        self.json()["error"]["type"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn request(w: &World, method: Method, path: &str, body: String) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", w.admin()))
        .body(Body::from(body))
        .unwrap();
    let resp = w.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn invoke(w: &World, event: Value) -> Answer {
    request(
        w,
        Method::POST,
        "/api/v1/functions/f/invoke",
        event.to_string(),
    )
    .await
}

/// Calls the HTTP trigger of `f` (route `/d`); the fake handler takes the
/// request body as its script.
async fn trigger(w: &World, script: Value) -> Answer {
    request(w, Method::POST, "/fn/d", script.to_string()).await
}

/// The invocation record of the call that answered `a` (records are written
/// in the background: waits for it).
async fn record_of(w: &World, a: &Answer) -> Value {
    let id = a
        .header("x-ignis-invocation-id")
        .unwrap_or_else(|| panic!("no x-ignis-invocation-id on {} {}", a.status, a.text))
        .to_string();
    for _ in 0..200 {
        let r = request(
            w,
            Method::GET,
            &format!("/api/v1/functions/f/invocations/{id}"),
            String::new(),
        )
        .await;
        if r.status == StatusCode::OK {
            return r.json();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("invocation {id} was never recorded");
}

/// The wire and the record agree: status, error type, headers.
async fn check(w: &World, a: &Answer, status: u16, error: Option<&str>, record_status: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.text);
    match error {
        Some(kind) => assert_eq!(a.error_type(), kind, "{}", a.text),
        None => assert!(a.status.is_success(), "{}", a.text),
    }
    for h in [
        "x-ignis-invocation-id",
        "x-ignis-function-version",
        "x-ignis-duration-ms",
    ] {
        assert!(a.header(h).is_some(), "{h} missing on {status} {}", a.text);
    }
    let record = record_of(w, a).await;
    assert_eq!(record["status"], record_status, "{record}");
    assert_eq!(
        record["error_type"],
        error.map_or(Value::Null, |e| json!(e)),
        "{record}"
    );
}

#[tokio::test]
async fn a_function_error_is_502_and_recorded_as_an_error() {
    let w = common::world().await;
    let a = invoke(&w, json!({"raise": "boom"})).await;
    check(&w, &a, 502, Some("FunctionError"), "error").await;
    assert_eq!(a.json()["error"]["stack"], "at fake");
}

#[tokio::test]
async fn out_of_memory_at_start_is_502_out_of_memory_not_503() {
    let w = common::world().await;
    *w.fake.state.boot_exit.lock().unwrap() = Some(ExitReason::OutOfMemory);
    let a = invoke(&w, json!({})).await;
    check(&w, &a, 502, Some("OutOfMemory"), "error").await;
    // The function recovers at once: the backend is not backed off.
    let a = invoke(&w, json!({})).await;
    check(&w, &a, 200, None, "success").await;
}

#[tokio::test]
async fn out_of_memory_during_a_call_is_502_out_of_memory() {
    let w = common::world().await;
    let a = invoke(&w, json!({"oom": true})).await;
    check(&w, &a, 502, Some("OutOfMemory"), "error").await;
}

#[tokio::test]
async fn a_crash_during_a_call_is_502_sandbox_crashed() {
    let w = common::world().await;
    let a = invoke(&w, json!({"crash": true})).await;
    check(&w, &a, 502, Some("SandboxCrashed"), "error").await;
}

#[tokio::test]
async fn a_failing_backend_is_503_backend_unavailable() {
    let w = common::world().await;
    w.fake.state.failing_boots.store(100, Ordering::SeqCst);
    let a = invoke(&w, json!({})).await;
    check(&w, &a, 503, Some("BackendUnavailable"), "error").await;
}

#[tokio::test]
async fn a_timeout_is_504_and_recorded_as_a_timeout() {
    let w = common::world().await;
    let a = request(
        &w,
        Method::PUT,
        "/api/v1/functions/f",
        json!({"timeout_ms": 100}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = invoke(&w, json!({"sleep_ms": 2000})).await;
    check(&w, &a, 504, Some("Timeout"), "timeout").await;
}

#[tokio::test]
async fn a_trigger_reply_that_is_not_a_response_is_502_invalid_result_in_the_record_too() {
    let w = common::world().await;
    for bad in [
        json!({"statusCode": "two hundred"}),
        json!({"statusCode": 42}),
        json!({"statusCode": 200, "headers": {"bad header": "x"}}),
        json!({"statusCode": 200, "body": "%%%", "isBase64Encoded": true}),
    ] {
        let a = trigger(&w, json!({ "return": bad })).await;
        // Before: 502 without the x-ignis-* headers, and a record saying success.
        check(&w, &a, 502, Some("InvalidResult"), "error").await;
    }
}

#[tokio::test]
async fn a_trigger_reply_is_sent_as_the_response_with_the_ignis_headers() {
    let w = common::world().await;
    let a = trigger(
        &w,
        json!({"return": {"statusCode": 201, "headers": {"x-made-by": "fn"}, "body": "made"}}),
    )
    .await;
    check(&w, &a, 201, None, "success").await;
    assert_eq!(a.text, "made");
    assert_eq!(a.header("x-made-by"), Some("fn"));
    // A function error through a trigger is typed the same way.
    let a = trigger(&w, json!({"raise": "no"})).await;
    check(&w, &a, 502, Some("FunctionError"), "error").await;
}

#[tokio::test]
async fn requests_refused_before_a_call_carry_no_invocation() {
    let w = common::world().await;
    let a = request(
        &w,
        Method::POST,
        "/api/v1/functions/f/invoke",
        "{not json".into(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.error_type(), "InvalidRequest");
    assert!(a.header("x-ignis-invocation-id").is_none());
    let a = request(
        &w,
        Method::POST,
        "/api/v1/functions/nope/invoke",
        "{}".into(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.error_type(), "NotFound");
}
