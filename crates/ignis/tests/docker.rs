//! Functions running in real Docker containers: behaviour, limits, failures.
//! Needs a running Docker engine and the runtime image (`.ci/run` provides
//! both). Set IGNIS_SKIP_DOCKER_TESTS=1 to skip them on a machine without
//! Docker; they never skip silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{containers_of_instance, wait_for, Reply, Server};
use serde_json::{json, Value};

fn docker_server() -> Option<Server> {
    if std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("IGNIS_SKIP_DOCKER_TESTS=1: skipping a Docker test");
        return None;
    }
    assert!(
        std::path::Path::new("/var/run/docker.sock").exists(),
        "no Docker engine: run scripts/setup.sh (or set IGNIS_SKIP_DOCKER_TESTS=1)"
    );
    // Small stem pools: many test servers share two cores.
    let s = Server::start(&["--stem-max", "2", "--no-microvm"]);
    let h = s.get("/api/v1/health");
    assert_eq!(
        h.body["status"], "ok",
        "docker backend not ready: {}",
        h.text
    );
    Some(s)
}

fn deploy(s: &Server, name: &str, runtime: &str, files: Value, extra: Value) -> Value {
    let handler = match runtime {
        "python3" => "main.handler",
        _ => "index.handler",
    };
    let mut body =
        json!({"name": name, "runtime": runtime, "handler": handler, "code": {"files": files}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    s.deploy(&body)
}

fn py(src: &str) -> Value {
    json!({ "main.py": src })
}

fn js(src: &str) -> Value {
    json!({ "index.js": src })
}

fn assert_error(r: &Reply, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error_type(), kind, "{}", r.text);
}

/// Containers of one sandbox, by its label.
fn containers_of(sandbox: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.ignis.sandbox={sandbox}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The invocation record of `id`, once written.
fn record(s: &Server, function: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(&format!(
            "/api/v1/functions/{function}/invocations?limit=100"
        ));
        if let Some(rec) = r.body["invocations"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == id))
        {
            return rec.clone();
        }
        assert!(Instant::now() < deadline, "no record of {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts the sandbox that served invocation `id` is removed.
fn assert_sandbox_gone(s: &Server, function: &str, id: &str) {
    let rec = record(s, function, id);
    let sandbox = rec["sandbox_id"]
        .as_str()
        .expect("record names its sandbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !containers_of(sandbox).is_empty() {
        assert!(
            Instant::now() < deadline,
            "container of {sandbox} still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const PY_CONTEXT: &str = r#"
import os, helper
def handler(event, context):
    return {
        "event": event,
        "env": os.environ.get("GREETING"),
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "helper": helper.VALUE,
        "uid": os.getuid(),
    }
"#;

const JS_CONTEXT: &str = r#"
const helper = require('./lib/helper');
exports.handler = async (event, context) => ({
    event,
    env: process.env.GREETING,
    function_name: context.functionName,
    function_version: context.functionVersion,
    memory_limit_in_mb: context.memoryLimitInMB,
    aws_request_id: context.awsRequestId,
    remaining: context.getRemainingTimeInMillis(),
    helper: helper.VALUE,
    uid: process.getuid(),
});
"#;

#[test]
fn hello_echo_env_context_and_second_file() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "ctx-py",
        "python3",
        json!({"main.py": PY_CONTEXT, "helper.py": "VALUE = 'from helper'\n"}),
        json!({"env": {"GREETING": "hi"}, "timeout_ms": 5000, "memory_mb": 192}),
    );
    deploy(
        &s,
        "ctx-js",
        "nodejs",
        json!({"index.js": JS_CONTEXT, "lib/helper.js": "exports.VALUE = 'from helper';\n"}),
        json!({"env": {"GREETING": "hi"}, "timeout_ms": 5000, "memory_mb": 192}),
    );
    for name in ["ctx-py", "ctx-js"] {
        let event = json!({"name": "ignis", "nested": {"list": [1, 2.5, null, "é"]}});
        let r = s.invoke(name, &event);
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        let b = &r.body;
        assert_eq!(b["event"], event, "{name}");
        assert_eq!(b["env"], "hi");
        assert_eq!(b["function_name"], name);
        assert_eq!(b["function_version"], "1");
        // A string, as in AWS Lambda's runtimes.
        assert_eq!(b["memory_limit_in_mb"], "192");
        assert_eq!(b["aws_request_id"], r.header("x-ignis-invocation-id"));
        let remaining = b["remaining"].as_i64().unwrap();
        assert!(
            (4000..=5000).contains(&remaining),
            "{name}: remaining {remaining}"
        );
        assert_eq!(b["helper"], "from helper");
        assert_eq!(b["uid"], 65534, "{name}: sandboxes run unprivileged");
        assert_eq!(r.header("x-ignis-cold-start"), "true");
        assert!(r.header("x-ignis-duration-ms").parse::<f64>().unwrap() > 0.0);
        // The second call reuses the sandbox.
        let r2 = s.invoke(name, &json!({}));
        assert_eq!(r2.status, 200);
        assert_eq!(r2.header("x-ignis-start"), "warm");
        assert_eq!(r2.header("x-ignis-cold-start"), "false");
    }
}

#[test]
fn node_handler_styles() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "cb", "nodejs",
        js("exports.handler = (event, context, callback) => { setTimeout(() => callback(null, {cb: event.x}), 5); };\n"),
        json!({}));
    assert_eq!(s.invoke("cb", &json!({"x": 7})).body, json!({"cb": 7}));
    s.deploy(&json!({"name": "esm", "runtime": "nodejs", "handler": "app.handler",
        "code": {"files": {"app.mjs": "export const handler = async (e) => ({esm: true, x: e.x});\n"}}}));
    assert_eq!(
        s.invoke("esm", &json!({"x": 1})).body,
        json!({"esm": true, "x": 1})
    );
    deploy(&s, "cberr", "nodejs",
        js("exports.handler = (event, context, callback) => callback(new Error('via callback'));\n"),
        json!({}));
    let r = s.invoke("cberr", &json!({}));
    assert_error(&r, 502, "FunctionError");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("via callback"));
}

#[test]
fn exceptions_are_function_errors_with_stack() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "raise-py",
        "python3",
        py("def handler(event, context):\n    raise ValueError('boom ' + str(event['n']))\n"),
        json!({}),
    );
    deploy(
        &s,
        "raise-js",
        "nodejs",
        js("exports.handler = async (event) => { throw new TypeError('boom ' + event.n); };\n"),
        json!({}),
    );
    for (name, prefix) in [("raise-py", "ValueError"), ("raise-js", "TypeError")] {
        let r = s.invoke(name, &json!({"n": 42}));
        assert_error(&r, 502, "FunctionError");
        assert_eq!(r.body["error"]["message"], format!("{prefix}: boom 42"));
        let stack = r.body["error"]["stack"].as_str().unwrap();
        assert!(
            stack.contains("main.py") || stack.contains("index.js"),
            "{stack}"
        );
        // The sandbox survives a handler error and is reused.
        let r = s.invoke(name, &json!({"n": 1}));
        assert_eq!(r.header("x-ignis-start"), "warm");
    }
}

#[test]
fn timeouts_kill_the_sandbox_in_every_case() {
    let Some(s) = docker_server() else { return };
    let cases = [
        ("loop-py", "python3", py("def handler(e, c):\n    while True:\n        pass\n")),
        ("sleep-py", "python3", py("import time\ndef handler(e, c):\n    time.sleep(60)\n")),
        ("nosig-py", "python3", py("import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):\n    signal.signal(s, signal.SIG_IGN)\ndef handler(e, c):\n    while True:\n        time.sleep(0.01)\n")),
        ("stream-py", "python3", py("import sys\ndef handler(e, c):\n    while True:\n        print('x' * 1000)\n        sys.stdout.flush()\n")),
        ("loop-js", "nodejs", js("exports.handler = async () => { while (true) {} };\n")),
        ("sleep-js", "nodejs", js("exports.handler = () => new Promise(() => {});\n")),
        ("nosig-js", "nodejs", js("process.on('SIGTERM', () => {}); process.on('SIGINT', () => {});\nexports.handler = async () => { while (true) {} };\n")),
        ("stream-js", "nodejs", js("exports.handler = async () => { while (true) { console.log('x'.repeat(1000)); } };\n")),
    ];
    for (name, runtime, files) in cases {
        deploy(&s, name, runtime, files, json!({"timeout_ms": 500}));
        let started = Instant::now();
        let r = s.invoke(name, &json!({}));
        assert_error(&r, 504, "Timeout");
        assert_eq!(r.body["error"]["message"], "timed out after 500 ms");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} took {:?}",
            started.elapsed()
        );
        assert_sandbox_gone(&s, name, r.header("x-ignis-invocation-id"));
        let rec = record(&s, name, r.header("x-ignis-invocation-id"));
        assert_eq!(rec["status"], "timeout");
    }
    // The next call gets a fresh sandbox and works.
    s.put(
        "/api/v1/functions/sleep-py",
        &json!({"code": {"files": py("def handler(e, c):\n    return 'ok'\n")}}),
    );
    assert_eq!(s.invoke("sleep-py", &json!({})).body, json!("ok"));
}

#[test]
fn client_disconnect_mid_call_still_ends_in_a_timeout() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "slow",
        "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(60)\n"),
        json!({"timeout_ms": 1500}),
    );
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/api/v1/functions/slow/invoke", s.url))
        .bearer_auth(&s.key)
        .body("{}")
        .send();
    assert!(err.is_err(), "the client gave up");
    // The call runs to its deadline anyway, is recorded, and its sandbox removed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rec = loop {
        let r = s.get("/api/v1/functions/slow/invocations");
        if let Some(rec) = r.body["invocations"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
        {
            break rec;
        }
        assert!(Instant::now() < deadline, "no record of the abandoned call");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rec["status"], "timeout");
    assert_sandbox_gone(&s, "slow", rec["id"].as_str().unwrap());
    let pools = s.get("/api/v1/pools");
    assert!(
        pools.body["functions"][0]["sandboxes"]["busy"] == 0,
        "{}",
        pools.text
    );
}

#[test]
fn memory_hog_is_out_of_memory() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "hog-py", "python3",
        py("def handler(e, c):\n    chunks = []\n    while True:\n        chunks.append(bytearray(b'x' * (16 << 20)))\n"),
        json!({"memory_mb": 64, "timeout_ms": 20000}));
    deploy(&s, "hog-js", "nodejs",
        js("exports.handler = async () => { const a = []; while (true) { a.push(Buffer.alloc(16 << 20, 1)); } };\n"),
        json!({"memory_mb": 64, "timeout_ms": 20000}));
    for name in ["hog-py", "hog-js"] {
        let r = s.invoke(name, &json!({}));
        assert_error(&r, 502, "OutOfMemory");
        assert_sandbox_gone(&s, name, r.header("x-ignis-invocation-id"));
    }
}

#[test]
fn crashes_bad_results_and_oversized_responses() {
    let Some(s) = docker_server() else { return };
    let cases: [(&str, &str, Value, u16, &str); 7] = [
        (
            "exit-py",
            "python3",
            py("import os\ndef handler(e, c):\n    os._exit(3)\n"),
            502,
            "SandboxCrashed",
        ),
        (
            "segv-py",
            "python3",
            py("import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n"),
            502,
            "SandboxCrashed",
        ),
        (
            "exit-js",
            "nodejs",
            js("exports.handler = async () => { process.exit(3); };\n"),
            502,
            "SandboxCrashed",
        ),
        (
            "set-py",
            "python3",
            py("def handler(e, c):\n    return {1, 2}\n"),
            502,
            "InvalidResult",
        ),
        (
            "bigint-js",
            "nodejs",
            js("exports.handler = async () => ({n: 10n});\n"),
            502,
            "InvalidResult",
        ),
        (
            "big-py",
            "python3",
            py("def handler(e, c):\n    return 'x' * (7 << 20)\n"),
            502,
            "ResponseTooLarge",
        ),
        (
            "big-js",
            "nodejs",
            js("exports.handler = async () => 'x'.repeat(7 << 20);\n"),
            502,
            "ResponseTooLarge",
        ),
    ];
    for (name, runtime, files, status, kind) in cases {
        deploy(&s, name, runtime, files, json!({"memory_mb": 256}));
        let r = s.invoke(name, &json!({}));
        assert_error(&r, status, kind);
        if kind == "SandboxCrashed" {
            assert_sandbox_gone(&s, name, r.header("x-ignis-invocation-id"));
        }
    }
    // The platform keeps serving.
    deploy(
        &s,
        "ok",
        "python3",
        py("def handler(e, c):\n    return 1\n"),
        json!({}),
    );
    assert_eq!(s.invoke("ok", &json!({})).body, json!(1));
}

#[test]
fn fork_bomb_is_contained() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "bomb", "python3",
        py("import os, time\ndef handler(e, c):\n    n = 0\n    try:\n        while True:\n            if os.fork() == 0:\n                time.sleep(30)\n                os._exit(0)\n            n += 1\n    except OSError as err:\n        return {'forked': n, 'error': str(err)}\n"),
        json!({"timeout_ms": 10000}));
    let r = s.invoke("bomb", &json!({}));
    // The pids limit stops it; whatever the handler makes of that, the
    // platform stays up and other functions run.
    assert!(
        r.status == 200 || r.status == 502 || r.status == 504,
        "{}",
        r.text
    );
    if r.status == 200 {
        let forked = r.body["forked"].as_u64().unwrap();
        assert!(forked < 128, "forked {forked} processes");
    }
    deploy(
        &s,
        "after",
        "nodejs",
        js("exports.handler = async () => 'alive';\n"),
        json!({}),
    );
    assert_eq!(s.invoke("after", &json!({})).body, json!("alive"));
}

#[test]
fn cpus_is_a_quota_over_a_short_period() {
    let Some(s) = docker_server() else { return };
    // The kernel's own view from inside the sandbox: cgroup v1 files or
    // v2's `cpu.max` ("quota period").
    deploy(&s, "cpu-limit", "python3",
        py("def read(p):\n    try:\n        return open(p).read().split()\n    except OSError:\n        return None\n\ndef handler(e, c):\n    v1 = [read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')]\n    if v1[0] and v1[1]:\n        return [int(v1[0][0]), int(v1[1][0])]\n    q, p = read('/sys/fs/cgroup/cpu.max')\n    return [int(q), int(p)]\n"),
        json!({"cpus": 0.25}));
    let r = s.invoke("cpu-limit", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    // 0.25 CPUs over 20 ms, not Docker's 100 ms `--cpus` period: a sandbox
    // out of quota waits at most 15 ms for more.
    assert_eq!(r.body, json!([5000, 20000]), "{}", r.text);
}

#[test]
fn no_network_and_read_only_root() {
    let Some(s) = docker_server() else { return };
    let port = s.url.rsplit(':').next().unwrap().to_string();
    deploy(
        &s,
        "jail",
        "python3",
        py(&format!(
            r#"
import os, socket
def handler(e, c):
    out = {{"interfaces": sorted(os.listdir('/sys/class/net'))}}
    try:
        socket.create_connection(('127.0.0.1', {port}), timeout=2)
        out['connect'] = 'connected'
    except OSError as err:
        out['connect'] = type(err).__name__
    for path in ['/etc/evil', '/usr/evil', '/evil', '/tmp/ok', '/var/task/ok']:
        try:
            with open(path, 'w') as f:
                f.write('x')
            out[path] = 'written'
        except OSError as err:
            out[path] = type(err).__name__
    return out
"#
        )),
        json!({}),
    );
    let r = s.invoke("jail", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["interfaces"], json!(["lo"]), "only loopback: {b}");
    assert_ne!(
        b["connect"], "connected",
        "reached the host from a sandbox: {b}"
    );
    for path in ["/etc/evil", "/usr/evil", "/evil"] {
        assert_ne!(b[path], "written", "{path} writable: {b}");
    }
    assert_eq!(b["/tmp/ok"], "written");
    assert_eq!(b["/var/task/ok"], "written");
}

#[test]
fn large_output_is_truncated_in_the_record() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "chatty-py", "python3",
        py("import sys\ndef handler(e, c):\n    print('start')\n    print('y' * 200000)\n    sys.stderr.write('err line\\n')\n    return 'done'\n"), json!({}));
    deploy(&s, "chatty-js", "nodejs",
        js("exports.handler = async () => { console.log('start'); console.log('y'.repeat(200000)); console.error('err line'); return 'done'; };\n"), json!({}));
    for name in ["chatty-py", "chatty-js"] {
        let r = s.invoke(name, &json!({}));
        assert_eq!(r.body, json!("done"));
        let rec = record(&s, name, r.header("x-ignis-invocation-id"));
        let stdout = rec["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("start\n"), "{name}");
        assert!(stdout.len() <= 65536, "{name}: {} bytes kept", stdout.len());
        assert!(stdout.len() > 60000, "{name}: {} bytes kept", stdout.len());
        assert_eq!(rec["logs_truncated"], true);
        assert_eq!(rec["stderr"], "err line\n", "{name}");
        // `ignis logs` shows it.
        let out = s.cli(&["logs", name, "--limit", "1"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("(output truncated)"));
    }
}

#[test]
fn http_trigger_round_trip() {
    let Some(s) = docker_server() else { return };
    let echo_py = r#"
import json, base64
def handler(event, context):
    if event['rawPath'].endswith('/raw'):
        return [1, 2]
    body = event['body']
    if event['isBase64Encoded']:
        body = base64.b64decode(body).hex()
    return {
        'statusCode': 201,
        'headers': {'content-type': 'application/json', 'x-echo-method': event['requestContext']['http']['method']},
        'body': json.dumps({
            'path': event['rawPath'], 'query': event['rawQueryString'],
            'params': event.get('queryStringParameters'), 'header': event['headers'].get('x-test'),
            'body': body,
        }),
    }
"#;
    let echo_js = r#"
exports.handler = async (event) => {
    if (event.rawPath.endsWith('/raw')) return [1, 2];
    let body = event.body;
    if (event.isBase64Encoded) body = Buffer.from(body, 'base64').toString('hex');
    return {
        statusCode: 201,
        headers: {'content-type': 'application/json', 'x-echo-method': event.requestContext.http.method},
        body: JSON.stringify({path: event.rawPath, query: event.rawQueryString,
            params: event.queryStringParameters, header: event.headers['x-test'], body}),
    };
};
"#;
    deploy(
        &s,
        "web-py",
        "python3",
        py(echo_py),
        json!({"route": "/web/py"}),
    );
    deploy(
        &s,
        "web-js",
        "nodejs",
        js(echo_js),
        json!({"route": "/web/js"}),
    );
    for route in ["/web/py", "/web/js"] {
        let resp = s
            .http
            .patch(format!("{}/fn{route}/items/7?a=1&b=two%20words&a=3", s.url))
            .bearer_auth(&s.key)
            .header("x-test", "yes")
            .body("hello body")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["x-echo-method"], "PATCH");
        assert!(resp.headers().contains_key("x-ignis-invocation-id"));
        let b: Value = resp.json().unwrap();
        assert_eq!(b["path"], format!("{route}/items/7"));
        assert_eq!(b["query"], "a=1&b=two%20words&a=3");
        assert_eq!(b["params"], json!({"a": "1,3", "b": "two words"}));
        assert_eq!(b["header"], "yes");
        assert_eq!(b["body"], "hello body");
        // Binary bodies arrive base64-encoded.
        let resp = s
            .http
            .post(format!("{}/fn{route}", s.url))
            .bearer_auth(&s.key)
            .body(vec![0u8, 255, 1])
            .send()
            .unwrap();
        let b: Value = resp.json().unwrap();
        assert_eq!(b["body"], "00ff01");
        // A plain value comes back as JSON with 200.
        let resp = s
            .http
            .get(format!("{}/fn{route}/raw", s.url))
            .bearer_auth(&s.key)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().unwrap(), json!([1, 2]));
    }
    // Records say these came through the HTTP trigger.
    let recs = s.get("/api/v1/functions/web-js/invocations");
    assert!(recs.body["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["trigger"] == "http"));
}

#[test]
fn ten_concurrent_calls() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "conc",
        "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(0.2)\n    return e['i']\n"),
        json!({"max_concurrency": 10}),
    );
    let results: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.invoke("conc", &json!({"i": i})))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!(i));
    }
}

#[test]
fn restart_removes_orphan_containers() {
    let Some(mut s) = docker_server() else { return };
    deploy(
        &s,
        "orphan",
        "python3",
        py("def handler(e, c):\n    return 1\n"),
        json!({}),
    );
    let r = s.invoke("orphan", &json!({}));
    let rec = record(&s, "orphan", r.header("x-ignis-invocation-id"));
    let sandbox = rec["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(
        containers_of(&sandbox).len(),
        1,
        "the warm container exists"
    );
    s.kill9();
    assert_eq!(containers_of(&sandbox).len(), 1, "kill -9 leaves it behind");
    s.spawn();
    assert!(
        containers_of(&sandbox).is_empty(),
        "start-up removed the orphan"
    );
    assert_eq!(s.invoke("orphan", &json!({})).body, json!(1));
}

#[test]
fn sigterm_drains_and_removes_sandboxes() {
    let Some(mut s) = docker_server() else { return };
    deploy(
        &s,
        "drain",
        "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(1)\n    return 'finished'\n"),
        json!({}),
    );
    let (url, key) = (s.url.clone(), s.key.clone());
    let call = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{url}/api/v1/functions/drain/invoke"))
            .bearer_auth(&key)
            .body("{}")
            .send()
            .map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
    });
    // Let the call start (cold start included), then stop the server.
    std::thread::sleep(Duration::from_millis(600));
    let r = s.get("/api/v1/pools");
    let status = s.terminate();
    assert!(status.success(), "exit status {status}");
    let (code, text) = call
        .join()
        .unwrap()
        .expect("the call in flight was answered");
    assert_eq!(code, 200, "{text} (pools before: {})", r.text);
    assert_eq!(text, "\"finished\"");
    // The record of the drained call was flushed before exit, and its
    // sandbox was removed.
    s.spawn();
    let recs = s.get("/api/v1/functions/drain/invocations");
    let rec = &recs.body["invocations"][0];
    assert_eq!(rec["status"], "success", "{}", recs.text);
    assert!(containers_of(rec["sandbox_id"].as_str().unwrap()).is_empty());
    let pools = s.get("/api/v1/pools");
    assert_eq!(
        pools.body["functions"][0]["sandboxes"]["busy"], 0,
        "{}",
        pools.text
    );
}

/// Sandbox ids of this server's containers.
fn sandboxes_of(s: &Server) -> Vec<String> {
    let instance = s.instance();
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=io.ignis.instance={instance}"),
            "--format",
            "{{.Label \"io.ignis.sandbox\"}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_new_functions_first_call_is_served_by_a_stem_cell() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "stem-py",
        "python3",
        py("def handler(e, c):\n    return 'py'\n"),
        json!({}),
    );
    deploy(
        &s,
        "stem-js",
        "nodejs",
        js("exports.handler = async () => 'js';\n"),
        json!({}),
    );
    wait_for("two ready stem cells", 30, || {
        let p = s.get("/api/v1/pools");
        p.body["stem_cells"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|c| c["ready"].as_u64() >= Some(1)))
    });
    for (name, value) in [("stem-py", "py"), ("stem-js", "js")] {
        let r = s.invoke(name, &json!({}));
        assert_eq!(r.body, json!(value));
        assert_eq!(r.header("x-ignis-start"), "stem", "{name}");
        assert_eq!(r.header("x-ignis-cold-start"), "true");
        assert_eq!(s.invoke(name, &json!({})).header("x-ignis-start"), "warm");
    }
}

#[test]
fn a_timeout_inside_a_batch_requeues_the_rest() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "batch", "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return e['i']\n"),
        json!({"max_concurrency": 1, "batch_max_size": 8, "timeout_ms": 1500}));
    assert_eq!(s.invoke("batch", &json!({"i": -1})).status, 200);
    let results: Vec<Reply> = std::thread::scope(|scope| {
        // The first call holds the only sandbox while the others queue up.
        let first = scope.spawn(|| s.invoke("batch", &json!({"i": 0, "sleep": 0.8})));
        std::thread::sleep(Duration::from_millis(300));
        let rest: Vec<_> = (1..=4)
            .map(|i| {
                let s = &s;
                let event = if i == 2 {
                    json!({"i": i, "sleep": 60})
                } else {
                    json!({"i": i})
                };
                let h = scope.spawn(move || s.invoke("batch", &event));
                std::thread::sleep(Duration::from_millis(30));
                h
            })
            .collect();
        std::iter::once(first)
            .chain(rest)
            .map(|h| h.join().unwrap())
            .collect()
    });
    for (i, r) in results.iter().enumerate() {
        if i == 2 {
            assert_error(r, 504, "Timeout");
        } else {
            assert_eq!(r.status, 200, "call {i}: {}", r.text);
            assert_eq!(r.body, json!(i));
        }
    }
    // Calls 1 and 2 went out in one batch with 3 and 4; 3 and 4 were
    // re-queued after the timeout and served by a new sandbox.
    let mut recs = Vec::new();
    wait_for("six records", 30, || {
        let body = s.get("/api/v1/functions/batch/invocations?limit=10").body;
        recs = body["invocations"].as_array().cloned().unwrap_or_default();
        recs.len() >= 6
    });
    let id_of = |r: &Reply| r.header("x-ignis-invocation-id").to_string();
    let rec = |i: usize| {
        recs.iter()
            .find(|x| x["id"] == id_of(&results[i]))
            .unwrap()
            .clone()
    };
    assert_eq!(rec(1)["batch_size"], 4);
    assert_eq!(rec(2)["status"], "timeout");
    assert_ne!(rec(3)["sandbox_id"], rec(1)["sandbox_id"]);
    assert_eq!(recs.len(), 6, "every call answered exactly once");
}

#[test]
fn concurrent_async_batches_in_node() {
    let Some(s) = docker_server() else { return };
    deploy(&s, "async-batch", "nodejs",
        js("exports.handler = async (e) => { const start = Date.now(); await new Promise(r => setTimeout(r, 400)); console.log('item', e.i); return {i: e.i, start, end: Date.now()}; };\n"),
        json!({"max_concurrency": 1, "batch_max_size": 4, "batch_concurrent": true, "batch_max_wait_ms": 200}));
    assert_eq!(s.invoke("async-batch", &json!({"i": -1})).status, 200);
    let results: Vec<Reply> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.invoke("async-batch", &json!({"i": i})))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let spans: Vec<(i64, i64)> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            (
                r.body["start"].as_i64().unwrap(),
                r.body["end"].as_i64().unwrap(),
            )
        })
        .collect();
    // All four ran at the same time in one sandbox.
    let latest_start = spans.iter().map(|s| s.0).max().unwrap();
    let earliest_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "handlers did not overlap: {spans:?}"
    );
    // Each call still got its own log.
    for (i, r) in results.iter().enumerate() {
        let rec = record(&s, "async-batch", r.header("x-ignis-invocation-id"));
        assert_eq!(rec["stdout"], format!("item {i}\n"));
        assert_eq!(rec["batch_size"], 4);
    }
}

#[test]
fn the_capacity_bound_throttles_instead_of_overcommitting() {
    if std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        return;
    }
    let s = Server::start(&[
        "--memory-budget-mb",
        "256",
        "--stem-initial",
        "0",
        "--stem-max",
        "0",
    ]);
    deploy(
        &s,
        "big",
        "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(2)\n    return 1\n"),
        json!({"memory_mb": 128, "queue_timeout_ms": 500, "timeout_ms": 10000}),
    );
    let results: Vec<Reply> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = &s;
                let h = scope.spawn(move || s.invoke("big", &json!({})));
                std::thread::sleep(Duration::from_millis(50));
                h
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1000));
        assert!(
            sandboxes_of(&s).len() <= 2,
            "overcommitted: {:?}",
            sandboxes_of(&s)
        );
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.status == 200).count();
    let throttled: Vec<_> = results.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok, 2);
    assert_eq!(throttled.len(), 2);
    assert_eq!(throttled[0].error_type(), "Throttled");
    assert_eq!(throttled[0].header("retry-after"), "1");
}

#[test]
fn a_killed_container_is_replaced() {
    let Some(s) = docker_server() else { return };
    deploy(
        &s,
        "keep",
        "python3",
        py("def handler(e, c):\n    return 'ok'\n"),
        json!({"min_warm": 1}),
    );
    let idle =
        |s: &Server| s.get("/api/v1/pools").body["functions"][0]["sandboxes"]["idle"].as_u64();
    wait_for("a warm sandbox", 30, || idle(&s) == Some(1));
    // Kill every container of this server (the warm one and the stem
    // cells) from outside, as an operator or the kernel might.
    let before: Vec<String> = sandboxes_of(&s);
    assert!(!before.is_empty());
    for id in &before {
        std::process::Command::new("docker")
            .args(["kill", &format!("ignis-{id}")])
            .output()
            .unwrap();
    }
    wait_for("a replacement", 30, || {
        idle(&s) == Some(1) && sandboxes_of(&s).iter().any(|id| !before.contains(id))
    });
    let r = s.invoke("keep", &json!({}));
    assert_eq!(r.body, json!("ok"));
    assert_eq!(r.header("x-ignis-start"), "warm");
}

/// Calls accepted before a delete or an update of their function, while
/// their sandboxes are still booting and about to read the code: each ends
/// with the version it ran (which the code and the header agree on) or, for
/// a delete, a typed 404; never a 500, and the code they need is never
/// collected under them (issue 10).
#[test]
fn delete_and_update_while_calls_cold_start() {
    if std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        return;
    }
    // No stem cells: every call boots a container, so the change lands
    // while sandboxes boot and then read the code.
    let s = Server::start(&["--stem-initial", "0", "--stem-max", "0", "--no-microvm"]);
    let code = |runtime: &str, tag: &str| {
        match runtime {
        "python3" => py(&format!(
            "import time\ndef handler(event, context):\n    time.sleep(1)\n    return {{'code': '{tag}', 'version': context.function_version}}\n"
        )),
        _ => js(&format!(
            "exports.handler = async (event, context) => {{ await new Promise(r => setTimeout(r, 1000)); return {{code: '{tag}', version: context.functionVersion}}; }};"
        )),
    }
    };
    let calls = |name: &str| -> Vec<std::thread::JoinHandle<Reply>> {
        (0..3)
            .map(|_| {
                let (url, name, key) = (s.url.clone(), name.to_string(), s.key.clone());
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    let resp = http
                        .post(format!("{url}/api/v1/functions/{name}/invoke"))
                        .bearer_auth(&key)
                        .body("{}")
                        .send()
                        .unwrap();
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let text = resp.text().unwrap();
                    Reply {
                        status,
                        headers,
                        body: serde_json::from_str(&text).unwrap_or(Value::Null),
                        text,
                    }
                })
            })
            .collect()
    };
    // Which code each version has.
    let version_code = |v: &str| match v {
        "1" => "one",
        "2" => "two",
        other => panic!("unexpected version {other}"),
    };
    let (mut ran, mut refused) = (0, 0);
    for runtime in ["python3", "nodejs"] {
        for delay_ms in [50u64, 150, 300] {
            // Delete: created (v1), updated (v2), 3 calls, deleted meanwhile.
            let name = format!("del-{}-{delay_ms}", &runtime[..2]);
            deploy(
                &s,
                &name,
                runtime,
                code(runtime, "one"),
                json!({"max_concurrency": 3}),
            );
            let r = s.put(
                &format!("/api/v1/functions/{name}"),
                &json!({"code": {"files": code(runtime, "two")}}),
            );
            assert_eq!(r.status, 200, "{}", r.text);
            let pending = calls(&name);
            std::thread::sleep(Duration::from_millis(delay_ms));
            assert_eq!(s.delete(&format!("/api/v1/functions/{name}")).status, 204);
            for p in pending {
                let r = p.join().unwrap();
                match r.status {
                    200 => {
                        ran += 1;
                        assert_eq!(r.body["code"], "two", "{name}: {}", r.text);
                        assert_eq!(r.header("x-ignis-function-version"), "2");
                    }
                    404 => {
                        refused += 1;
                        assert_eq!(r.error_type(), "NotFound", "{}", r.text);
                        assert!(r.text.contains("was deleted"), "{name}: {}", r.text);
                    }
                    _ => panic!("{name}: a call got {}: {}", r.status, r.text),
                }
            }
            // Update: 3 calls of v1, the code replaced meanwhile.
            let name = format!("upd-{}-{delay_ms}", &runtime[..2]);
            deploy(
                &s,
                &name,
                runtime,
                code(runtime, "one"),
                json!({"max_concurrency": 3}),
            );
            let pending = calls(&name);
            std::thread::sleep(Duration::from_millis(delay_ms));
            let r = s.put(
                &format!("/api/v1/functions/{name}"),
                &json!({"code": {"files": code(runtime, "two")}}),
            );
            assert_eq!(r.status, 200, "{}", r.text);
            for p in pending {
                let r = p.join().unwrap();
                assert_eq!(r.status, 200, "{name}: {}", r.text);
                let version = r.header("x-ignis-function-version").to_string();
                assert_eq!(r.body["version"], version.as_str(), "{}", r.text);
                assert_eq!(r.body["code"], version_code(&version), "{}", r.text);
            }
            assert_eq!(s.delete(&format!("/api/v1/functions/{name}")).status, 204);
        }
    }
    eprintln!("calls that ran: {ran}, refused as deleted: {refused}");
    let log = s.log_text();
    assert!(
        !log.contains("is missing"),
        "code was collected under a call:\n{log}"
    );
    // Once nothing holds them, the deleted functions' code is collected by
    // the next pass (a delete runs one). A sandbox of a deleted function
    // holds its version until its removal is done, which can outlast the
    // call's answer: so pass again until the sandboxes are gone (bounded).
    let mut blobs = Vec::new();
    wait_for("the deleted functions' code to be collected", 30, || {
        deploy(
            &s,
            "last",
            "python3",
            py("def handler(e, c):\n    return 1\n"),
            json!({}),
        );
        assert_eq!(s.delete("/api/v1/functions/last").status, 204);
        blobs = walk(&s.data_path().join("code"));
        blobs.is_empty()
    });
    assert!(blobs.is_empty(), "code left behind: {blobs:?}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// SIGTERM while four callers keep a function busy: every call the server
/// had accepted before the signal ends with its answer, calls after it get
/// 503 `ShuttingDown` (or find the port closed once the drain is over), no
/// call gets anything else, and the server exits 0 well within its grace
/// period with its containers removed.
#[test]
fn sigterm_under_load_drains_in_flight_and_refuses_new() {
    use std::sync::{Arc, Mutex};
    let Some(mut s) = docker_server() else { return };
    deploy(
        &s,
        "busy",
        "python3",
        py("import time\ndef handler(e, c):\n    time.sleep(0.3)\n    return e['n']\n"),
        json!({"min_warm": 4, "max_concurrency": 4}),
    );
    wait_for("four warm sandboxes", 60, || {
        s.get("/api/v1/pools").body["functions"][0]["sandboxes"]["idle"].as_u64() >= Some(4)
    });
    let instance = s.instance();
    // (start, end, outcome): an HTTP status and error type, or None when no
    // answer came (the port closed after the drain).
    type Seen = (Instant, Instant, Option<(u16, String)>, u64);
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let callers: Vec<_> = (0..4u64)
        .map(|t| {
            let (url, key, seen) = (s.url.clone(), s.key.clone(), seen.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                for i in 0.. {
                    let n = t * 1000 + i;
                    let start = Instant::now();
                    let r = http
                        .post(format!("{url}/api/v1/functions/busy/invoke"))
                        .bearer_auth(&key)
                        .json(&json!({"n": n}))
                        .send();
                    let outcome = r.ok().map(|r| {
                        let status = r.status().as_u16();
                        let body: Value = r.json().unwrap_or_default();
                        if status == 200 {
                            assert_eq!(body, json!(n), "an answer for another call");
                        }
                        let kind = body["error"]["type"].as_str().unwrap_or("").to_string();
                        (status, kind)
                    });
                    let done = outcome.is_none();
                    seen.lock()
                        .unwrap()
                        .push((start, Instant::now(), outcome, n));
                    if done {
                        return;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let status = s.terminate();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "the drain took {took:?}");
    for c in callers {
        c.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let mut in_flight = 0;
    let mut refused = 0;
    for (start, end, outcome, n) in &seen {
        // Sent well before the signal: the server had it.
        if *start + Duration::from_millis(100) < signalled && *end > signalled {
            in_flight += 1;
            assert_eq!(
                outcome.as_ref().map(|o| o.0),
                Some(200),
                "call {n} in flight at SIGTERM: {outcome:?}"
            );
        }
        match outcome {
            Some((200, _)) | None => {}
            Some((503, kind)) if kind == "ShuttingDown" => refused += 1,
            Some(other) => panic!("call {n} ended with {other:?}"),
        }
    }
    eprintln!(
        "{} calls, {in_flight} in flight at SIGTERM, {refused} refused with ShuttingDown, drain {took:?}",
        seen.len()
    );
    assert!(in_flight >= 1, "no call was in flight at the signal");
    assert_eq!(
        containers_of_instance(&instance, &[]),
        Vec::<String>::new(),
        "containers left after the drain"
    );
}
