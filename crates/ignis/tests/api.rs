//! The management API, black-box: the real binary, a real SQLite file, no
//! Docker needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{zip_b64, Server};
use serde_json::{json, Value};

const PY: &str = "def handler(event, context):\n    return {'hello': event.get('name', 'world')}\n";
const JS: &str = "exports.handler = async (event) => ({ hello: event.name || 'world' });\n";

fn py(name: &str) -> Value {
    json!({"name": name, "runtime": "python3", "handler": "main.handler",
           "code": {"files": {"main.py": PY}}})
}

#[test]
fn crud_round_trip_for_both_code_forms() {
    let s = Server::start_api_only();
    // Python, inline files.
    let f = s.deploy(&json!({
        "name": "hello-py", "runtime": "python3", "handler": "main.handler",
        "route": "/hello", "env": {"GREETING": "hi"},
        "code": {"files": {"main.py": PY}}
    }));
    assert_eq!(f["version"], 1);
    assert_eq!(f["timeout_ms"], 3000);
    assert_eq!(f["memory_mb"], 128);
    assert_eq!(f["backend"], "docker");
    assert_eq!(f["route"], "/hello");
    assert_eq!(f["env"]["GREETING"], "hi");
    // Node.js, zip upload.
    let g = s.deploy(&json!({
        "name": "hello-js", "runtime": "nodejs", "handler": "index.handler",
        "timeout_ms": 1000, "memory_mb": 256, "cpus": 1.0,
        "code": {"zip_base64": zip_b64(&[("index.js", JS)])}
    }));
    assert_eq!(g["runtime"], "nodejs");
    assert_eq!(g["memory_mb"], 256);

    let list = s.get("/api/v1/functions");
    assert_eq!(list.status, 200);
    let names: Vec<_> = list.body["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello-js", "hello-py"]);

    let one = s.get("/api/v1/functions/hello-py");
    assert_eq!(one.status, 200);
    assert_eq!(one.body, f);

    // The stored archive is a zip holding the code, addressed by its sha256.
    let code = s
        .http
        .get(format!("{}/api/v1/functions/hello-js/code", s.url))
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    assert_eq!(code.status(), 200);
    assert_eq!(code.headers()["content-type"], "application/zip");
    let bytes = code.bytes().unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut src = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("index.js").unwrap(), &mut src).unwrap();
    assert_eq!(src, JS);

    let upd = s.put("/api/v1/functions/hello-py", &json!({"timeout_ms": 5000}));
    assert_eq!(upd.status, 200, "{}", upd.text);
    assert_eq!(upd.body["version"], 2);
    assert_eq!(upd.body["timeout_ms"], 5000);
    assert_eq!(upd.body["route"], "/hello");

    assert_eq!(s.delete("/api/v1/functions/hello-py").status, 204);
    assert_eq!(s.get("/api/v1/functions/hello-py").status, 404);
    assert_eq!(s.delete("/api/v1/functions/hello-py").status, 404);
    assert_eq!(s.delete("/api/v1/functions/hello-js").status, 204);
    // Their code is garbage-collected.
    let code_dir = s.data_path().join("code");
    let files: usize = walk_count(&code_dir);
    assert_eq!(files, 0, "code left behind in {}", code_dir.display());
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.file_type().unwrap().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn versions_bump_only_on_change() {
    let s = Server::start_api_only();
    s.deploy(&py("f"));
    let r = s.put("/api/v1/functions/f", &json!({"memory_mb": 256}));
    assert_eq!(r.body["version"], 2);
    // The same values again: nothing changed, no new version.
    let r = s.put("/api/v1/functions/f", &json!({"memory_mb": 256}));
    assert_eq!(r.body["version"], 2);
    let r = s.put(
        "/api/v1/functions/f",
        &json!({"code": {"files": {"main.py": "def handler(e, c):\n    return 2\n"}}}),
    );
    assert_eq!(r.body["version"], 3);
    let before = r.body["updated_at"].clone();
    let r = s.put("/api/v1/functions/f", &json!({"route": "/f"}));
    assert_eq!(r.body["version"], 4);
    assert_ne!(r.body["updated_at"], before);
    let r = s.put("/api/v1/functions/f", &json!({"route": null}));
    assert_eq!(r.body["version"], 5);
    assert_eq!(r.body["route"], Value::Null);
    // Deleting and re-creating never reuses a version number.
    s.delete("/api/v1/functions/f");
    assert_eq!(s.deploy(&py("f"))["version"], 6);
}

#[test]
fn identical_code_is_stored_once() {
    let s = Server::start_api_only();
    let a = s.deploy(&py("a"));
    // The same code as a zip with a different file order and timestamps.
    let b = s.deploy(
        &json!({"name": "b", "runtime": "python3", "handler": "main.handler",
        "code": {"zip_base64": zip_b64(&[("main.py", PY)])}}),
    );
    assert_eq!(a["code_sha256"], b["code_sha256"]);
    assert_eq!(walk_count(&s.data_path().join("code")), 1);
    // Deleting one keeps the code the other uses.
    s.delete("/api/v1/functions/a");
    assert_eq!(walk_count(&s.data_path().join("code")), 1);
}

#[test]
fn data_survives_kill_9_and_restart() {
    let mut s = Server::start_api_only();
    s.deploy(&py("durable"));
    s.put("/api/v1/functions/durable", &json!({"timeout_ms": 1234}));
    let before = s.get("/api/v1/functions/durable").body;
    s.kill9();
    s.spawn();
    let after = s.get("/api/v1/functions/durable");
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before);
    assert_eq!(after.body["timeout_ms"], 1234);
    // Its code too.
    let code = s
        .http
        .get(format!("{}/api/v1/functions/durable/code", s.url))
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    assert_eq!(code.status(), 200);
}

/// Asserts a request fails with `status` and error `kind`.
fn rejects(r: common::Reply, status: u16, kind: &str) {
    assert_eq!(r.status, status, "body: {}", r.text);
    assert_eq!(r.error_type(), kind, "body: {}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {}",
        r.text
    );
}

fn with(field: &str, value: Value) -> Value {
    let mut b = py("f");
    b[field] = value;
    b
}

#[test]
fn rejects_unknown_fields() {
    let s = Server::start_api_only();
    rejects(
        s.post("/api/v1/functions", &with("timeout", json!(5))),
        400,
        "InvalidRequest",
    );
    let mut b = py("f");
    b["code"]["tarball"] = json!("x");
    rejects(s.post("/api/v1/functions", &b), 400, "InvalidRequest");
}

#[test]
fn rejects_bad_names() {
    let s = Server::start_api_only();
    for name in [
        json!("Bad"),
        json!("-x"),
        json!(""),
        json!("a".repeat(65)),
        json!("a/b"),
        json!(5),
    ] {
        rejects(
            s.post("/api/v1/functions", &with("name", name)),
            400,
            "InvalidRequest",
        );
    }
}

#[test]
fn rejects_bad_runtimes_and_backends() {
    let s = Server::start_api_only();
    rejects(
        s.post("/api/v1/functions", &with("runtime", json!("ruby"))),
        400,
        "InvalidRequest",
    );
    rejects(
        s.post("/api/v1/functions", &with("backend", json!("vmware"))),
        400,
        "InvalidRequest",
    );
}

#[test]
fn rejects_out_of_range_limits() {
    let s = Server::start_api_only();
    for (field, value) in [
        ("timeout_ms", json!(99)),
        ("timeout_ms", json!(900_001)),
        ("memory_mb", json!(63)),
        ("memory_mb", json!(4097)),
        ("cpus", json!(0)),
        ("cpus", json!(-1)),
        ("max_concurrency", json!(0)),
        ("batch_max_size", json!(65)),
        ("timeout_ms", json!("3000")),
    ] {
        rejects(
            s.post("/api/v1/functions", &with(field, value)),
            400,
            "InvalidRequest",
        );
    }
    let big_env: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("K{i}"), json!("v".repeat(50))))
        .collect();
    rejects(
        s.post("/api/v1/functions", &with("env", Value::Object(big_env))),
        400,
        "InvalidRequest",
    );
}

#[test]
fn rejects_a_handler_missing_from_the_archive() {
    let s = Server::start_api_only();
    let r = s.post("/api/v1/functions", &with("handler", json!("app.handler")));
    rejects(r, 400, "InvalidRequest");
    // A Node handler needs a .js/.mjs/.cjs file.
    let b = json!({"name": "n", "runtime": "nodejs", "handler": "main.handler",
                   "code": {"files": {"main.py": PY}}});
    rejects(s.post("/api/v1/functions", &b), 400, "InvalidRequest");
    // Changing the handler of an existing function is checked against its stored code.
    s.deploy(&py("f"));
    rejects(
        s.put("/api/v1/functions/f", &json!({"handler": "nope.handler"})),
        400,
        "InvalidRequest",
    );
}

#[test]
fn rejects_malformed_zip_and_base64() {
    let s = Server::start_api_only();
    use base64::Engine as _;
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"PK\x03\x04 not really");
    rejects(
        s.post(
            "/api/v1/functions",
            &with("code", json!({"zip_base64": garbage})),
        ),
        400,
        "InvalidRequest",
    );
    rejects(
        s.post(
            "/api/v1/functions",
            &with("code", json!({"zip_base64": "***"})),
        ),
        400,
        "InvalidRequest",
    );
    rejects(
        s.post("/api/v1/functions", &with("code", json!({}))),
        400,
        "InvalidRequest",
    );
}

#[test]
fn rejects_path_traversal_in_archives() {
    let s = Server::start_api_only();
    for path in ["../evil.py", "/etc/evil.py", "a/../../evil.py"] {
        let code = json!({"zip_base64": zip_b64(&[("main.py", PY), (path, "x")])});
        rejects(
            s.post("/api/v1/functions", &with("code", code)),
            400,
            "InvalidRequest",
        );
        let code = json!({"files": {"main.py": PY, path: "x"}});
        rejects(
            s.post("/api/v1/functions", &with("code", code)),
            400,
            "InvalidRequest",
        );
    }
}

#[test]
fn rejects_code_over_the_size_limit() {
    let s = Server::start(&["--no-docker", "--max-code-mb", "1"]);
    // Random-ish content so that deflate cannot shrink it under the limit.
    let mut x: u64 = 12345;
    let blob: String = (0..1_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    let code = json!({"zip_base64": zip_b64(&[("main.py", PY), ("blob.txt", &blob)])});
    rejects(
        s.post("/api/v1/functions", &with("code", code)),
        413,
        "PayloadTooLarge",
    );
    let code = json!({"files": {"main.py": PY, "blob.txt": blob}});
    rejects(
        s.post("/api/v1/functions", &with("code", code)),
        413,
        "PayloadTooLarge",
    );
}

#[test]
fn rejects_bodies_that_are_not_json() {
    let s = Server::start_api_only();
    for body in [
        "",
        "not json",
        "{",
        "[1,2]",
        "null",
        "\"x\"",
        "{\"name\": \"x\",}",
    ] {
        rejects(s.post_raw("/api/v1/functions", body), 400, "InvalidRequest");
    }
    s.deploy(&py("f"));
    rejects(
        s.request(reqwest::Method::PUT, "/api/v1/functions/f", Some("{{")),
        400,
        "InvalidRequest",
    );
    rejects(
        s.put("/api/v1/functions/f", &json!({})),
        400,
        "InvalidRequest",
    );
}

#[test]
fn name_and_route_conflicts_are_409() {
    let s = Server::start_api_only();
    s.deploy(&with("route", json!("/a")));
    rejects(s.post("/api/v1/functions", &py("f")), 409, "Conflict");
    let mut other = py("g");
    other["route"] = json!("/a");
    rejects(s.post("/api/v1/functions", &other), 409, "Conflict");
    s.deploy(&py("h"));
    rejects(
        s.put("/api/v1/functions/h", &json!({"route": "/a"})),
        409,
        "Conflict",
    );
    rejects(
        s.post("/api/v1/functions", &with("route", json!("a/"))),
        400,
        "InvalidRequest",
    );
}

#[test]
fn unknown_things_are_json_404s() {
    let s = Server::start_api_only();
    rejects(s.get("/api/v1/functions/nope"), 404, "NotFound");
    rejects(
        s.put("/api/v1/functions/nope", &json!({"timeout_ms": 1000})),
        404,
        "NotFound",
    );
    rejects(s.get("/api/v1/nothing"), 404, "NotFound");
    rejects(s.invoke("nope", &json!({})), 404, "NotFound");
    rejects(s.get("/fn/nowhere"), 404, "NotFound");
    let r = s.request(reqwest::Method::PATCH, "/api/v1/functions", Some("{}"));
    assert_eq!(r.status, 405);
    assert_eq!(r.error_type(), "InvalidRequest");
}

#[test]
fn health_and_openapi() {
    let s = Server::start_api_only();
    let h = s.get("/api/v1/health");
    assert_eq!(h.status, 200);
    assert_eq!(
        h.body["status"], "degraded",
        "no backend is running: {}",
        h.text
    );
    let doc = s.get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/functions",
        "/api/v1/functions/{name}",
        "/api/v1/functions/{name}/code",
        "/api/v1/functions/{name}/invoke",
        "/api/v1/functions/{name}/invocations",
        "/api/v1/health",
    ] {
        assert!(
            doc.body["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    // The documented Function schema has every field the API returns.
    let f = s.deploy(&py("f"));
    let schema = &doc.body["components"]["schemas"]["Function"];
    let documented: Vec<String> = schema_fields(&doc.body, schema);
    for key in f.as_object().unwrap().keys() {
        assert!(
            documented.contains(key),
            "field `{key}` not in the OpenAPI Function schema"
        );
    }
}

/// Property names of a schema, following `allOf` and `$ref`.
fn schema_fields(doc: &Value, schema: &Value) -> Vec<String> {
    let mut out: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        out.extend(schema_fields(doc, &doc["components"]["schemas"][name]));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(schema_fields(doc, part));
    }
    out
}

#[test]
fn cli_against_the_server() {
    let s = Server::start_api_only();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), PY).unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/util.py"), "X = 1\n").unwrap();
    let d = dir.path().to_str().unwrap();

    let out = s.cli(&[
        "--json",
        "fn",
        "create",
        "clif",
        "--runtime",
        "python3",
        "--handler",
        "main.handler",
        "--dir",
        d,
        "--route",
        "/clif",
        "--timeout-ms",
        "2000",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["timeout_ms"], 2000);
    assert_eq!(f["env"]["B"], "x=y");

    let out = s.cli(&["fn", "ls"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("clif") && table.contains("python3") && table.contains("/clif"),
        "{table}"
    );

    let out = s.cli(&["--json", "fn", "update", "clif", "--memory-mb", "512"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["version"], 2);
    assert_eq!(f["memory_mb"], 512);

    let out = s.cli(&["--json", "fn", "get", "clif"]);
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["memory_mb"], 512);

    // Every configuration field can be set from the CLI (its body is the
    // server's own request type, so none can be forgotten).
    let out = s.cli(&[
        "--json",
        "fn",
        "update",
        "clif",
        "--runtime",
        "python3",
        "--handler",
        "main.handler",
        "--backend",
        "docker",
        "--timeout-ms",
        "2500",
        "--memory-mb",
        "256",
        "--cpus",
        "1",
        "--env",
        "C=3",
        "--min-warm",
        "0",
        "--max-concurrency",
        "5",
        "--batch-max-size",
        "2",
        "--batch-max-wait-ms",
        "3",
        "--batch-concurrent",
        "true",
        "--queue-timeout-ms",
        "4000",
        "--keep-alive-s",
        "60",
        "--http-auth",
        "none",
        "--route",
        "",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (field, value) in [
        ("timeout_ms", json!(2500)),
        ("memory_mb", json!(256)),
        ("cpus", json!(1.0)),
        ("env", json!({"C": "3"})),
        ("max_concurrency", json!(5)),
        ("batch_max_size", json!(2)),
        ("batch_max_wait_ms", json!(3)),
        ("batch_concurrent", json!(true)),
        ("queue_timeout_ms", json!(4000)),
        ("keep_alive_s", json!(60)),
        ("http_auth", json!("none")),
        ("route", Value::Null),
    ] {
        assert_eq!(f[field], value, "{field}: {f}");
    }
    // The table reads the typed fields.
    let out = s.cli(&["fn", "ls"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("none") && table.contains("256 MiB"),
        "{table}"
    );
    // A value the server would refuse is refused by the CLI, in its words.
    let out = s.cli(&["fn", "update", "clif", "--runtime", "ruby"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ruby") && err.contains("python3"), "{err}");

    // Errors are the server's, with a non-zero exit.
    let out = s.cli(&[
        "fn",
        "create",
        "Bad",
        "--runtime",
        "python3",
        "--handler",
        "main.handler",
        "--dir",
        d,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidRequest"));

    let out = s.cli(&["fn", "rm", "clif"]);
    assert!(out.status.success());
    assert_eq!(s.get("/api/v1/functions/clif").status, 404);
}

#[test]
fn config_file_and_env_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ignis.toml");
    std::fs::write(&cfg, "[serve]\nshutdown_grace_s = 1\nbogus = 1\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", cfg.to_str().unwrap(), "serve", "--no-docker"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus"),
        "unknown config keys are errors"
    );
    // IGNIS_SERVER points client commands at a server.
    let out = std::process::Command::new(common::BIN)
        .args(["fn", "ls"])
        .env("IGNIS_SERVER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
}
