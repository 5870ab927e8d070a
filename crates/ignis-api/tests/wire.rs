//! The wire types: the OpenAPI document describes the types that parse the
//! requests, and what the CLI sends is what the server parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use ignis_core::{
    BackendKind, CodeInput, CreateFunctionRequest, FunctionConfig, FunctionPatch, HttpAuth,
    Runtime, UpdateFunctionRequest,
};
use serde_json::{json, Value};
use utoipa::OpenApi;

/// Every configuration field set.
fn full_patch() -> FunctionPatch {
    FunctionPatch {
        runtime: Some(Runtime::Nodejs),
        handler: Some("src/app.run".into()),
        route: Some(Some("/x".into())),
        http_auth: Some(HttpAuth::None),
        backend: Some(BackendKind::Microvm),
        timeout_ms: Some(1234),
        memory_mb: Some(256),
        cpus: Some(1.5),
        env: Some(BTreeMap::from([("K".into(), "V".into())])),
        min_warm: Some(2),
        max_concurrency: Some(3),
        batch_max_size: Some(4),
        batch_max_wait_ms: Some(5),
        batch_concurrent: Some(true),
        queue_timeout_ms: Some(6000),
        keep_alive_s: Some(7),
        description: Some("what it does".into()),
        role: Some(Some("arn:aws:iam::123456789012:role/r".into())),
        async_max_retries: Some(1),
        async_max_age_s: Some(120),
        http_qualifier: Some(Some("prod".into())),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The properties of a schema, following `$ref` and `allOf`.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut out: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

fn request_schema(doc: &Value, path: &str, method: &str) -> Value {
    doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone()
}

#[test]
fn a_patch_can_set_every_configuration_field() {
    let config = serde_json::to_value(full_patch().into_new_config().unwrap()).unwrap();
    let patch = serde_json::to_value(full_patch()).unwrap();
    assert_eq!(keys(&patch), keys(&config));
    // And FunctionConfig has no field the patch cannot reach.
    let _: FunctionConfig = serde_json::from_value(patch).unwrap();
}

#[test]
fn the_openapi_create_and_update_bodies_are_the_parsed_types() {
    let doc = serde_json::to_value(ignis_api::ApiDoc::openapi()).unwrap();
    let config = keys(&serde_json::to_value(full_patch()).unwrap());

    for path in [
        "/api/v1/functions",
        "/api/v1/namespaces/{namespace}/functions",
    ] {
        let create = properties(&doc, &request_schema(&doc, path, "post"));
        let mut expected = config.clone();
        expected.extend(["name".to_string(), "code".to_string()]);
        assert_eq!(create, expected, "POST {path}");
    }
    for path in [
        "/api/v1/functions/{name}",
        "/api/v1/namespaces/{namespace}/functions/{name}",
    ] {
        let update = properties(&doc, &request_schema(&doc, path, "put"));
        let mut expected = config.clone();
        expected.insert("code".to_string());
        assert_eq!(update, expected, "PUT {path}");
    }
}

#[test]
fn what_is_sent_is_what_is_parsed() {
    let create = CreateFunctionRequest {
        name: "f".into(),
        code: CodeInput {
            files: Some(BTreeMap::from([("main.js".into(), "x".into())])),
            zip_base64: None,
        },
        config: full_patch(),
    };
    let wire = serde_json::to_value(&create).unwrap();
    assert_eq!(wire["batch_concurrent"], true);
    assert_eq!(
        serde_json::from_value::<CreateFunctionRequest>(wire).unwrap(),
        create
    );

    // Removing the route is `null` on the wire, and stays a removal.
    let update = UpdateFunctionRequest {
        code: None,
        config: FunctionPatch {
            route: Some(None),
            ..FunctionPatch::default()
        },
    };
    let wire = serde_json::to_value(&update).unwrap();
    assert_eq!(wire, json!({"route": null}));
    assert_eq!(
        serde_json::from_value::<UpdateFunctionRequest>(wire).unwrap(),
        update
    );
}

#[test]
fn the_parsers_refuse_what_the_document_does_not_allow() {
    let err = |v: Value| {
        serde_json::from_value::<CreateFunctionRequest>(v)
            .unwrap_err()
            .to_string()
    };
    let code = json!({"files": {"main.py": "x"}});
    assert!(err(json!({"code": code})).contains("`name` is required"));
    assert!(err(json!({"name": 3, "code": code})).contains("`name` must be a string"));
    assert!(err(json!({"name": "f"})).contains("`code` is required"));
    assert!(err(json!({"name": "f", "code": code, "memory": 5})).contains("unknown field `memory`"));
    assert!(err(json!({"name": "f", "code": {"tar": "x"}})).contains("unknown field `tar`"));
    let update = serde_json::from_value::<UpdateFunctionRequest>(json!({"name": "g"}))
        .unwrap_err()
        .to_string();
    assert!(update.contains("cannot be changed"), "{update}");
}
