//! Authentication and authorization against the real binary and a real
//! SQLite file: the first start's admin key, bad credentials, roles and
//! namespaces, console sessions with their cookie and CSRF checks, the
//! failed-login limiter, public and private triggers, masked secrets, the
//! audit log, the CLI's login, the upgrade of a data directory written
//! before namespaces existed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{reply, wait_for, Reply, Server, BIN};
use serde_json::{json, Value};

fn py_fn(name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "runtime": "python3", "handler": "main.handler",
        "code": {"files": {"main.py": "import os\ndef handler(event, context):\n    return {'event': event, 'secret': os.environ.get('TOKEN')}\n"}}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn get_as(s: &Server, key: Option<&str>, path: &str) -> Reply {
    s.request_as(key, reqwest::Method::GET, path, None)
}

#[test]
fn the_first_start_makes_one_private_admin_key() {
    let mut s = Server::start_api_only();
    let file = s.data_path().join("admin.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.key is readable by others");
    assert!(s.key.starts_with("ign_"), "{}", s.key);
    let out = s.stdout_text();
    assert_eq!(
        out.matches(&s.key).count(),
        1,
        "the key is printed once: {out}"
    );
    assert!(out.contains("admin.key"), "{out}");
    let me = s.get("/api/v1/whoami");
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["namespaces"], "*");

    // A second start creates no other key and prints none.
    s.terminate();
    s.stdout_rest.lock().unwrap().clear();
    s.spawn();
    let out = s.stdout_text();
    assert!(!out.contains("ign_"), "a key was printed again: {out}");
    assert!(out.contains("admin.key"), "{out}");
    let keys = s.get("/api/v1/keys");
    assert_eq!(
        keys.body["keys"].as_array().unwrap().len(),
        1,
        "{}",
        keys.text
    );
    // The listing never holds a secret or a digest.
    assert!(!keys.text.contains(&s.key[12..]), "{}", keys.text);
    assert!(!keys.text.contains("digest"), "{}", keys.text);
}

#[test]
fn without_valid_credentials_everything_but_health_is_401_and_says_nothing() {
    // Many failures from one address: a limit that lets them all through.
    let s = Server::start_with_env(
        &["--no-docker", "--no-microvm"],
        &[("IGNIS_AUTH_FAIL_BURST", "1000")],
    );
    let revoked = s.create_key("developer", json!("*"));
    let id = s.get("/api/v1/keys").body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| revoked.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.delete(&format!("/api/v1/keys/{id}")).status, 200);
    let r = s.post(
        "/api/v1/keys",
        &json!({"name": "short-lived", "role": "developer", "expires_in_s": 1}),
    );
    let expired = r.body["key"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let mut checksum = s.key.clone().into_bytes();
    checksum[10] = if checksum[10] == b'a' { b'b' } else { b'a' };
    let checksum = String::from_utf8(checksum).unwrap();
    let unknown = ignis_auth::Secret::generate().unwrap().expose().to_string();
    let mut bodies = Vec::new();
    for (what, key) in [
        ("missing", None),
        ("malformed", Some("hunter2")),
        ("wrong checksum", Some(checksum.as_str())),
        ("unknown", Some(unknown.as_str())),
        ("expired", Some(expired.as_str())),
        ("revoked", Some(revoked.as_str())),
    ] {
        for path in [
            "/api/v1/functions",
            "/api/v1/whoami",
            "/api/v1/keys",
            "/api/v1/pools",
            "/api/v1/metrics/summary",
            "/metrics",
            "/api/v1/namespaces/default/functions/x",
        ] {
            let r = get_as(&s, key, path);
            assert_eq!(r.status, 401, "{what} {path}: {}", r.text);
            assert_eq!(r.header("www-authenticate"), "Bearer realm=\"ignis\"");
            bodies.push(r.text);
        }
    }
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "401 bodies differ: {bodies:?}");
    for path in ["/api/v1/health", "/api/v1/openapi.json"] {
        assert_eq!(get_as(&s, None, path).status, 200, "{path}");
    }
    // A key in the query string is never a credential.
    let r = get_as(&s, None, &format!("/api/v1/metrics/summary?key={}", s.key));
    assert_ne!(r.status, 200, "{}", r.text);
}

#[test]
fn roles_and_namespaces_bound_what_a_key_reaches() {
    let s = Server::start_api_only();
    for ns in ["team-a", "team-b"] {
        assert_eq!(
            s.post("/api/v1/namespaces", &json!({"name": ns})).status,
            201
        );
    }
    for ns in ["team-a", "team-b"] {
        let r = s.post(
            &format!("/api/v1/namespaces/{ns}/functions"),
            &py_fn("f", json!({"env": {"TOKEN": "tok-123"}})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["namespace"], ns);
    }
    // Same name in the default namespace: a different function.
    s.deploy(&py_fn("f", json!({})));
    let dev_a = s.create_key("developer", json!(["team-a"]));
    let viewer = s.create_key("viewer", json!("*"));
    let invoker = s.create_key("invoker", json!("*"));

    // A key for team-a reads its function...
    let r = get_as(&s, Some(&dev_a), "/api/v1/namespaces/team-a/functions/f");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["env"]["TOKEN"], "tok-123", "developers see values");
    // ... and cannot tell whether team-b has one: the same 403 either way.
    let exists = get_as(&s, Some(&dev_a), "/api/v1/namespaces/team-b/functions/f");
    let missing = get_as(&s, Some(&dev_a), "/api/v1/namespaces/team-b/functions/nope");
    assert_eq!(exists.status, 403, "{}", exists.text);
    assert_eq!(
        (exists.status, &exists.text),
        (missing.status, &missing.text)
    );
    let r = s.request_as(
        Some(&dev_a),
        reqwest::Method::POST,
        "/api/v1/namespaces/team-b/functions/f/invoke",
        Some("{}"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(get_as(&s, Some(&dev_a), "/api/v1/functions/f").status, 403);
    // Across namespaces, only its own.
    let r = get_as(&s, Some(&dev_a), "/api/v1/functions?all_namespaces=true");
    assert_eq!(r.status, 200, "{}", r.text);
    let seen: Vec<&str> = r.body["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["team-a"]);
    let r = get_as(&s, Some(&dev_a), "/api/v1/namespaces");
    assert_eq!(
        r.body["namespaces"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    // Namespace-bound keys cannot manage the server.
    assert_eq!(get_as(&s, Some(&dev_a), "/metrics").status, 403);

    // A viewer reads, masked; cannot write.
    let r = get_as(&s, Some(&viewer), "/api/v1/namespaces/team-a/functions/f");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["env"]["TOKEN"], "********", "{}", r.text);
    assert!(!r.text.contains("tok-123"));
    let r = get_as(&s, Some(&viewer), "/api/v1/functions?all_namespaces=true");
    assert!(!r.text.contains("tok-123"), "{}", r.text);
    let r = s.request_as(
        Some(&viewer),
        reqwest::Method::DELETE,
        "/api/v1/namespaces/team-a/functions/f",
        None,
    );
    assert_eq!(r.status, 403);
    // An invoker reads nothing.
    assert_eq!(get_as(&s, Some(&invoker), "/api/v1/functions").status, 403);
    assert_eq!(get_as(&s, Some(&invoker), "/api/v1/keys").status, 403);
    assert_eq!(
        get_as(&s, Some(&invoker), "/api/v1/whoami").body["role"],
        "invoker"
    );

    // A namespace with functions cannot go; default never.
    assert_eq!(s.delete("/api/v1/namespaces/team-b").status, 409);
    assert_eq!(
        s.delete("/api/v1/namespaces/team-b/functions/f").status,
        204
    );
    assert_eq!(s.delete("/api/v1/namespaces/team-b").status, 204);
    assert_eq!(s.delete("/api/v1/namespaces/default").status, 409);
    let r = s.post(
        "/api/v1/namespaces/nowhere/functions",
        &py_fn("g", json!({})),
    );
    assert_eq!(r.status, 404, "{}", r.text);

    // Admin keys apply to every namespace; the last one cannot be revoked.
    let r = s.post(
        "/api/v1/keys",
        &json!({"name": "x", "role": "admin", "namespaces": ["team-a"]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let admin_id = s.get("/api/v1/whoami").body["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.delete(&format!("/api/v1/keys/{admin_id}")).status, 409);

    // Every management action is in the audit log, with its outcome.
    let audit = s.get("/api/v1/audit?limit=100");
    assert_eq!(audit.status, 200);
    let entries = audit.body["entries"].as_array().unwrap();
    let has = |action: &str, outcome: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    for (action, outcome) in [
        ("namespace.create", "ok"),
        ("function.create", "ok"),
        ("function.create", "NotFound"),
        ("function.delete", "ok"),
        ("namespace.delete", "Conflict"),
        ("key.create", "ok"),
        ("key.create", "InvalidRequest"),
        ("key.revoke", "Conflict"),
    ] {
        assert!(
            has(action, outcome),
            "no {action} {outcome} in {audit:?}",
            audit = audit.text
        );
    }
    assert!(entries.iter().all(|e| e["key_id"].is_string()));
    assert_eq!(get_as(&s, Some(&viewer), "/api/v1/audit").status, 403);
}

/// The console's session: login, cookie attributes, CSRF, the live stream,
/// logout.
#[test]
fn console_sessions_and_csrf() {
    let s = Server::start_api_only();
    let http = reqwest::blocking::Client::new();
    let login = |tls: bool| {
        let mut req = http
            .post(format!("{}/api/v1/session", s.url))
            .json(&json!({"key": s.key}));
        if tls {
            req = req.header("x-forwarded-proto", "https");
        }
        reply(req.send().unwrap())
    };
    let r = login(false);
    assert_eq!(r.status, 201, "{}", r.text);
    let set_cookie = r.header("set-cookie").to_string();
    for attr in [
        "ignis_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set_cookie.contains(attr), "{attr} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let csrf = r.body["csrf"].as_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let tls = login(true);
    let tls_cookie = tls.header("set-cookie");
    assert!(
        tls_cookie.starts_with("__Host-ignis_session="),
        "{tls_cookie}"
    );
    assert!(tls_cookie.contains("; Secure"), "{tls_cookie}");

    let with_cookie = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", s.url))
            .header("cookie", &cookie)
    };
    let r = reply(
        with_cookie(reqwest::Method::GET, "/api/v1/session")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["via"], "session");
    assert_eq!(r.body["csrf"], csrf.as_str());
    // Unsafe requests need the token and this origin.
    let body = py_fn("from-console", json!({}));
    let create = |csrf_header: Option<&str>, origin: Option<&str>| {
        let mut req = with_cookie(reqwest::Method::POST, "/api/v1/functions").json(&body);
        if let Some(t) = csrf_header {
            req = req.header("x-ignis-csrf", t);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        reply(req.send().unwrap())
    };
    assert_eq!(create(None, None).status, 403);
    assert_eq!(create(Some("wrong"), None).status, 403);
    assert_eq!(create(Some(&csrf), Some("http://evil.example")).status, 403);
    let r = create(Some(&csrf), Some(&s.url));
    assert_eq!(r.status, 201, "{}", r.text);
    // The live stream takes the cookie (EventSource cannot send headers).
    let resp = with_cookie(reqwest::Method::GET, "/api/v1/metrics/stream")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(resp);
    // Logout ends it.
    let r = reply(
        with_cookie(reqwest::Method::DELETE, "/api/v1/session")
            .header("x-ignis-csrf", &csrf)
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    let r = reply(
        with_cookie(reqwest::Method::GET, "/api/v1/whoami")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 401);
    let audit = s.get("/api/v1/audit").text;
    assert!(
        audit.contains("session.login") && audit.contains("session.logout"),
        "{audit}"
    );
}

#[test]
fn failed_authentications_are_rate_limited_and_recover() {
    // 3 failures at once, then one more per 100 ms.
    let s = Server::start_with_env(
        &["--no-docker", "--no-microvm"],
        &[
            ("IGNIS_AUTH_FAIL_BURST", "3"),
            ("IGNIS_AUTH_FAIL_PER_MINUTE", "600"),
        ],
    );
    let bad = ignis_auth::Secret::generate().unwrap();
    for _ in 0..3 {
        assert_eq!(get_as(&s, Some(bad.expose()), "/api/v1/whoami").status, 401);
    }
    let r = get_as(&s, Some(bad.expose()), "/api/v1/whoami");
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_type(), "Throttled");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    let r = s.post_raw("/api/v1/session", &json!({"key": bad.expose()}).to_string());
    assert_eq!(r.status, 429, "logins share the limit: {}", r.text);
    // It recovers.
    wait_for("the limiter to let a request through", 5, || {
        get_as(&s, Some(&s.key), "/api/v1/whoami").status == 200
    });
}

#[test]
fn metrics_need_a_key_unless_public() {
    let s = Server::start_api_only();
    assert_eq!(get_as(&s, None, "/metrics").status, 401);
    assert_eq!(get_as(&s, Some(&s.key), "/metrics").status, 200);
    let open = Server::start(&["--no-docker", "--no-microvm", "--metrics-public"]);
    assert_eq!(get_as(&open, None, "/metrics").status, 200);
    assert_eq!(get_as(&open, None, "/api/v1/metrics/summary").status, 401);
}

#[test]
fn auth_off_only_on_loopback_and_said_loudly() {
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--no-auth",
            "--no-docker",
            "--no-microvm",
            "--listen",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    let s = Server::start(&["--no-docker", "--no-microvm", "--no-auth"]);
    assert!(s.stdout_text().contains("AUTHENTICATION IS OFF"));
    assert!(!s.data_path().join("admin.key").exists());
    let r = get_as(&s, None, "/api/v1/functions");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(get_as(&s, None, "/api/v1/health").body["auth"], false);
}

#[test]
fn the_cli_logs_in_and_manages_keys() {
    let s = Server::start_api_only();
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], key: Option<&str>| {
        let mut c = std::process::Command::new(BIN);
        c.args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("IGNIS_API_KEY")
            .env_remove("IGNIS_SERVER");
        if let Some(k) = key {
            c.env("IGNIS_API_KEY", k);
        }
        c.output().unwrap()
    };
    // Without a login: 401 from the server, said plainly.
    let out = cli(&["--server", &s.url, "fn", "ls"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
    let out = cli(&["login", "--server", &s.url], Some(&s.key));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = home.path().join("ignis").join("config.toml");
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Later commands need neither --server nor a key.
    let out = cli(&["whoami"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("role admin"));
    let out = cli(
        &["keys", "create", "--name", "ci", "--role", "invoker"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(new_key.starts_with("ign_"), "{new_key}");
    let out = cli(&["--json", "keys", "ls"], None);
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ci = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(ci["role"], "invoker");
    let out = cli(&["keys", "revoke", ci["id"].as_str().unwrap()], None);
    assert!(out.status.success());
    assert_eq!(get_as(&s, Some(&new_key), "/api/v1/whoami").status, 401);
    // IGNIS_API_KEY overrides the stored key.
    let out = cli(&["whoami"], Some(&new_key));
    assert!(!out.status.success());
}

#[test]
fn a_lost_admin_key_is_reset_offline() {
    let mut s = Server::start_api_only();
    let old = s.key.clone();
    s.terminate();
    let out = std::process::Command::new(BIN)
        .args(["admin", "reset-key", "--revoke-others", "--data-dir"])
        .arg(s.data_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_ne!(new, old);
    s.spawn();
    assert_eq!(s.key, new, "admin.key holds the new key");
    assert_eq!(get_as(&s, Some(&new), "/api/v1/whoami").status, 200);
    assert_eq!(get_as(&s, Some(&old), "/api/v1/whoami").status, 401);
}

/// A data directory written before namespaces and keys existed starts; its
/// functions, versions, routes, env and records are all in `default`.
#[test]
fn a_data_directory_of_the_previous_version_upgrades() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0-data"),
        &data,
    );
    let mut s = Server::start_api_only();
    s.terminate();
    s.data_dir = data;
    s.spawn();
    assert!(s.key.starts_with("ign_"), "no first admin key on upgrade");
    let list = s.get("/api/v1/functions");
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&str> = list.body["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["legacy-js", "legacy-py"]);
    let py = s.get("/api/v1/namespaces/default/functions/legacy-py");
    assert_eq!(py.body["namespace"], "default");
    assert_eq!(py.body["route"], "/legacy");
    assert_eq!(py.body["env"]["SECRET_TOKEN"], "s3cr3t");
    assert_eq!(
        py.body["http_auth"], "key",
        "routes become private by default"
    );
    assert_eq!(s.get("/api/v1/functions/legacy-js").body["version"], 2);
    let code = s.get("/api/v1/functions/legacy-py/code");
    assert_eq!(code.status, 200);
    let recs = s.get("/api/v1/functions/legacy-py/invocations");
    assert_eq!(
        recs.body["invocations"].as_array().unwrap().len(),
        3,
        "{}",
        recs.text
    );
    // Versions continue; the route is still taken.
    let r = s.put("/api/v1/functions/legacy-js", &json!({"memory_mb": 512}));
    assert_eq!(r.body["version"], 3, "{}", r.text);
    let r = s.post(
        "/api/v1/functions",
        &py_fn("other", json!({"route": "/legacy"})),
    );
    assert_eq!(r.status, 409);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Public and private HTTP triggers, the invoke API never public, and no
/// ignis credential reaches user code or the log (real Docker).
#[test]
fn triggers_public_and_private_and_no_secret_leaks() {
    if std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        return;
    }
    let s = Server::start_with_env(
        &["--stem-max", "1", "--no-microvm"],
        &[("RUST_LOG", "debug,hyper=info,bollard=info,h2=info")],
    );
    let handler = "import os\ndef handler(event, context):\n    return {'statusCode': 200, 'body': repr({'headers': event.get('headers'), 'cookies': event.get('cookies'), 'token': os.environ['TOKEN']})}\n";
    for (name, route, auth) in [("open", "/open", "none"), ("closed", "/closed", "key")] {
        s.deploy(
            &json!({"name": name, "runtime": "python3", "handler": "main.handler",
            "route": route, "http_auth": auth, "env": {"TOKEN": "env-secret-42"},
            "code": {"files": {"main.py": handler}}}),
        );
    }
    let invoker = s.create_key("invoker", json!("*"));
    let viewer = s.create_key("viewer", json!("*"));
    let http = reqwest::blocking::Client::new();
    let call = |path: &str, key: Option<&str>| {
        let mut req = http
            .get(format!("{}/fn{path}", s.url))
            .header("cookie", "theme=dark; ignis_session=not-a-session-value");
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        reply(req.send().unwrap())
    };
    // Public: anyone, and its own Authorization header passes through.
    let r = call("/open", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.contains("theme=dark") && !r.text.contains("not-a-session-value"),
        "{}",
        r.text
    );
    // Private: a key that may invoke.
    assert_eq!(call("/closed", None).status, 401);
    assert_eq!(
        call("/nowhere", None).status,
        401,
        "unknown and private look alike"
    );
    let r = call("/closed", Some(&invoker));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains(&invoker),
        "the caller's key reached the function: {}",
        r.text
    );
    assert!(
        !r.text.to_lowercase().contains("authorization"),
        "{}",
        r.text
    );
    let denied = call("/closed", Some(&viewer));
    let unknown = call("/nowhere", Some(&viewer));
    assert_eq!(denied.status, 404);
    assert_eq!(
        (denied.status, denied.error_type()),
        (unknown.status, unknown.error_type())
    );
    // The invoke API is never public, even for a public route's function.
    let r = s.request_as(
        None,
        reqwest::Method::POST,
        "/api/v1/functions/open/invoke",
        Some("{}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(s.invoke("open", &json!({})).status, 200);
    // Records hold no secret.
    let recs = s.get("/api/v1/functions/closed/invocations").text;
    assert!(
        !recs.contains(&invoker) && !recs.contains("env-secret-42"),
        "{recs}"
    );
    // Nothing secret in the server's log, at debug level.
    let log = s.log_text();
    assert!(log.len() > 1000, "the log is suspiciously short");
    for secret in [
        s.key.as_str(),
        &invoker,
        &viewer,
        "env-secret-42",
        "not-a-session-value",
    ] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}
