//! The OpenAPI document says what the server does (what schemathesis,
//! `scripts/schemathesis.sh`, checks by fuzzing): parameters where they
//! are sent, the statuses every operation can answer, one flat schema per
//! body, patterns that accept exactly what the validators accept; and the
//! behaviours the fuzzer found wrong, through `router()`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use utoipa::OpenApi;

use common::{send, world};

fn doc() -> Value {
    serde_json::to_value(ignis_api::ApiDoc::openapi()).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn parameters_are_where_they_are_sent() {
    for (method, path, op) in operations(&doc()) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let placeholder = format!("{{{name}}}");
            match p["in"].as_str().unwrap() {
                "path" => assert!(
                    path.contains(&placeholder),
                    "{method} {path}: `{name}` is not in the path"
                ),
                "query" => assert!(
                    !path.contains(&placeholder) && p["required"] != json!(true),
                    "{method} {path}: query parameter `{name}`"
                ),
                other => panic!("{method} {path}: `{name}` in {other}"),
            }
        }
    }
}

#[test]
fn every_operation_documents_what_precedes_its_handler() {
    for (method, path, op) in operations(&doc()) {
        let has = |s: &str| op["responses"].get(s).is_some();
        let inputs = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
            || op.get("requestBody").is_some();
        if inputs {
            assert!(has("400"), "{method} {path}: no 400");
        }
        if op.get("requestBody").is_some() {
            assert!(has("413"), "{method} {path}: no 413");
        }
        let authenticated = op["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r != &json!({})));
        if authenticated {
            assert!(has("401") && has("429"), "{method} {path}: no 401/429");
        }
    }
}

#[test]
fn function_bodies_are_one_object() {
    let doc = doc();
    let create = &doc["components"]["schemas"]["CreateFunctionRequest"];
    assert!(create.get("allOf").is_none(), "{create}");
    assert_eq!(create["additionalProperties"], json!(false));
    assert_eq!(
        create["required"],
        json!(["name", "code", "runtime", "handler"])
    );
    for field in ["name", "code", "runtime", "handler", "memory_mb", "route"] {
        assert!(create["properties"].get(field).is_some(), "{field}");
    }
    assert_eq!(create["properties"]["memory_mb"]["minimum"], json!(64));
    let update = &doc["components"]["schemas"]["UpdateFunctionRequest"];
    assert!(update.get("allOf").is_none());
    assert!(update["properties"].get("name").is_none());
    assert!(update["properties"].get("code").is_some());
}

/// A pattern of the document accepts exactly what its validator does.
fn agree(pattern: &str, accepts: impl Fn(&str) -> bool, samples: &[&str]) {
    let re = regex::Regex::new(pattern).unwrap();
    for s in samples {
        assert_eq!(re.is_match(s), accepts(s), "{pattern} on {s:?}");
    }
}

#[test]
fn patterns_agree_with_the_validators() {
    agree(
        ignis_core::NAME_PATTERN,
        |s| ignis_core::validate_name(s).is_ok(),
        &[
            "a",
            "0",
            "a-b_c",
            "",
            "A",
            "-a",
            "_a",
            "a.b",
            &"a".repeat(64),
            &"a".repeat(65),
            "é",
        ],
    );
    agree(
        ignis_core::ALIAS_PATTERN,
        |s| s.len() <= 128 && ignis_core::validate_alias_name(s).is_ok(),
        &[
            "live",
            "v1",
            "1",
            "007",
            "-",
            "_",
            "",
            "a b",
            &"A".repeat(128),
            "é",
        ],
    );
    agree(
        ignis_core::function::HANDLER_PATTERN,
        |s| s.len() <= 256 && ignis_core::function::validate_handler(s).is_ok(),
        &[
            "main.handler",
            "src/app.run",
            "a.b.c",
            "a/.b.f",
            "a/../b.f",
            "./a.f",
            "/a.f",
            "a.",
            ".f",
            "a.1f",
            "a.$f",
            "a/..x.f",
            "a//b.f",
            "a b.f",
            "...f",
            "..a.f",
        ],
    );
    let window =
        |s: &str| ignis_api::handlers::metrics::parse_duration(s).is_some_and(|w| w <= 7 * 86_400);
    agree(
        ignis_api::handlers::metrics::DURATION_PATTERN,
        window,
        &[
            "1", "30s", "5m", "1h", "7d", "8d", "168h", "169h", "10080m", "10081m", "604800",
            "604801", "0", "0s", "05m", " 5m", "+5m", "5x", "", "m", "1.5h",
        ],
    );
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    let resp = app.clone().oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

#[tokio::test]
async fn an_integral_float_is_an_integer() {
    let w = world().await;
    let (status, body) = send(
        &w.app,
        Method::POST,
        "/api/v1/keys",
        Some(&w.admin()),
        json!({"name": "ci", "role": "viewer", "expires_in_s": 60.0}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = send(
        &w.app,
        Method::POST,
        "/api/v1/keys",
        Some(&w.admin()),
        json!({"name": "ci", "role": "viewer", "expires_in_s": 60.5}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_revoked_key_has_no_aws_credentials_to_list() {
    let w = world().await;
    let admin = w.admin();
    let (_, body) = send(
        &w.app,
        Method::POST,
        "/api/v1/keys",
        Some(&admin),
        json!({"name": "gone", "role": "viewer"}),
    )
    .await;
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/keys/{id}/aws-credentials");
    let (status, _) = send(&w.app, Method::GET, &path, Some(&admin), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &w.app,
        Method::DELETE,
        &format!("/api/v1/keys/{id}"),
        Some(&admin),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&w.app, Method::GET, &path, Some(&admin), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &w.app,
        Method::GET,
        "/api/v1/keys/key-0000000000000000/aws-credentials",
        Some(&admin),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_method_no_trigger_takes_says_which_it_does() {
    let w = world().await;
    let req = Request::builder()
        .method(Method::TRACE)
        .uri("/fn/anything")
        .body(Body::empty())
        .unwrap();
    let (status, headers) = call(&w.app, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = headers.get(header::ALLOW).unwrap().to_str().unwrap();
    for m in ["GET", "POST", "PUT", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    assert!(!allow.contains("TRACE"), "{allow}");
}

/// A key authenticates its request alone: a stale or forged session
/// cookie beside it neither helps nor hurts (the document lists `key`
/// first on every operation, the session second).
#[tokio::test]
async fn a_key_decides_whatever_cookie_comes_with_it() {
    let w = world().await;
    let with = |method: Method, path: &str, key: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("cookie", "ignis_session=garbage")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _) = call(&w.app, with(Method::GET, "/api/v1/session", &w.admin())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&w.app, with(Method::GET, "/api/v1/session", "ign_garbage")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&w.app, with(Method::DELETE, "/api/v1/session", &w.admin())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let doc = doc();
    for method in ["get", "delete"] {
        assert_eq!(
            doc["paths"]["/api/v1/session"][method]["security"],
            json!([{"key": []}, {"session": []}])
        );
    }
}
