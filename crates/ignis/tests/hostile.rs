//! Hostile functions (the reliability suite, #15): code that tries to get
//! out of its sandbox, to see other functions' secrets, to leave processes
//! behind, or to fill what it may write. Each case checks what the function
//! saw or got, and that another function keeps answering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};

fn server() -> Server {
    Server::start(&["--stem-max", "2", "--no-microvm"])
}

fn deploy(s: &Server, name: &str, runtime: &str, src: &str, extra: Value) {
    let (handler, file) = match runtime {
        "python3" => ("main.handler", "main.py"),
        _ => ("index.handler", "index.js"),
    };
    let mut body = json!({"name": name, "runtime": runtime, "handler": handler,
        "code": {"files": {file: src}}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    s.deploy(&body);
}

/// A function that must keep answering while the hostile one runs.
fn bystander(s: &Server) {
    deploy(
        s,
        "bystander",
        "python3",
        "def handler(e, c):\n    return {'ok': True}\n",
        json!({}),
    );
}

fn bystander_answers(s: &Server) {
    let r = s.invoke("bystander", &json!({}));
    assert_eq!(r.status, 200, "the bystander stopped answering: {}", r.text);
    assert_eq!(r.body["ok"], true);
}

/// Everything a function might try to learn or do beyond its sandbox.
const PROBE: &str = r#"
import ctypes, errno, os, socket, stat

libc = ctypes.CDLL(None, use_errno=True)

def call(fn, *args):
    r = fn(*args)
    return "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return type(e).__name__ + ":" + str(e.errno)
    finally:
        s.close()

def handler(event, context):
    secret = event["secret"]
    seen = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for f in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{f}", "rb") as fh:
                    if secret.encode() in fh.read():
                        seen.append(f"/proc/{pid}/{f}")
            except OSError:
                pass
    if secret in repr(dict(os.environ)):
        seen.append("os.environ")
    setuid = []
    for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin"):
        try:
            for name in os.listdir(d):
                p = os.path.join(d, name)
                try:
                    if os.stat(p).st_mode & (stat.S_ISUID | stat.S_ISGID):
                        setuid.append(p)
                except OSError:
                    pass
        except OSError:
            pass
    try:
        os.setuid(0)
        setuid_0 = "ok"
    except OSError as e:
        setuid_0 = errno.errorcode[e.errno]
    CLONE_NEWUSER, CLONE_NEWNS, PTRACE_ATTACH = 0x10000000, 0x00020000, 16
    # Every process of the sandbox (init, bootstrap, children): its uid
    # and effective capabilities. ptrace reaches only these.
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    st = dict(l.split(":", 1) for l in fh.read().splitlines() if ":" in l)
                procs.append({"pid": int(pid), "name": st["Name"].strip(),
                              "uids": st["Uid"].split(), "cap_eff": st["CapEff"].strip()})
            except OSError:
                pass
    return {
        "processes": procs,
        "uid": os.getuid(),
        "secret_seen_in": seen,
        "docker_socket": os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock"),
        "metadata": connect("169.254.169.254", 80),
        "ignis_api_loopback": connect("127.0.0.1", event["port"]),
        "docker_host": connect("172.17.0.1", event["port"]),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "setuid_files": setuid,
        "setuid_0": setuid_0,
        "unshare_user": call(libc.unshare, CLONE_NEWUSER),
        "unshare_mount": call(libc.unshare, CLONE_NEWNS),
        "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
        "ptrace_pid1": call(libc.ptrace, PTRACE_ATTACH, 1, None, None),
        "write_root": call(libc.access, b"/usr/bin", 2),
    }
"#;

#[test]
fn a_function_cannot_reach_the_host_other_functions_or_privilege() {
    let s = server();
    bystander(&s);
    let secret = "s3cr3t-of-function-a-7f1c";
    deploy(
        &s,
        "holder",
        "python3",
        "import os\ndef handler(e, c):\n    return {'has': os.environ['TOKEN'] != ''}\n",
        json!({"env": {"TOKEN": secret}}),
    );
    deploy(&s, "probe", "python3", PROBE, json!({}));
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    // The holder runs first, so a stem cell or sandbox could (wrongly)
    // carry its environment into the probe's.
    for _ in 0..3 {
        assert_eq!(s.invoke("holder", &json!({})).status, 200);
    }
    let mut sandboxes_of_probe = HashSet::new();
    for _ in 0..3 {
        let r = s.invoke("probe", &json!({"secret": secret, "port": port}));
        assert_eq!(r.status, 200, "{}", r.text);
        let b = &r.body;
        assert_eq!(b["uid"], 65534, "{b}");
        assert_eq!(
            b["secret_seen_in"],
            json!([]),
            "another function's secret was visible: {b}"
        );
        assert_eq!(b["docker_socket"], false, "{b}");
        for k in ["metadata", "ignis_api_loopback", "docker_host"] {
            assert_ne!(b[k], "connected", "{k}: {b}");
        }
        assert_eq!(b["interfaces"], json!(["lo"]), "{b}");
        assert_eq!(b["setuid_0"], "EPERM", "{b}");
        for k in ["unshare_user", "unshare_mount", "mount"] {
            assert_ne!(b[k], "ok", "{k} succeeded: {b}");
        }
        // ptrace reaches the sandbox's own processes only (the kernel allows
        // it between processes of one uid), and none of them has more
        // privilege than the function: every one runs as nobody with no
        // capabilities, so attaching to one gains nothing.
        for p in b["processes"].as_array().unwrap() {
            assert!(
                p["uids"].as_array().unwrap().iter().all(|u| u == "65534"),
                "a process of the sandbox runs as another user: {p}"
            );
            assert_eq!(p["cap_eff"], "0000000000000000", "{p}");
        }
        assert_ne!(
            b["write_root"], "ok",
            "the root filesystem is writable: {b}"
        );
        sandboxes_of_probe.insert(r.header("x-ignis-invocation-id").to_string());
    }
    // A sandbox serves one function only: no sandbox of the holder ever
    // served the probe (stem cells are specialized once, never reused).
    wait_for("the records", 10, || {
        s.get("/api/v1/functions/probe/invocations").body["invocations"]
            .as_array()
            .is_some_and(|a| a.len() >= 3)
    });
    let ids = |f: &str| -> HashSet<String> {
        s.get(&format!("/api/v1/functions/{f}/invocations?limit=100"))
            .body["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["sandbox_id"].as_str().map(str::to_string))
            .collect()
    };
    let (holder, probe) = (ids("holder"), ids("probe"));
    assert!(!holder.is_empty() && !probe.is_empty());
    assert!(holder.is_disjoint(&probe), "{holder:?} {probe:?}");
    bystander_answers(&s);
}

/// Each call leaves an orphan behind (`sleep 0 &` in a shell that exits):
/// unless something reaps them, zombies pile up to the pids limit and the
/// sandbox can no longer fork.

#[test]
fn orphans_are_reaped_over_500_warm_calls_in_both_runtimes() {
    let s = server();
    bystander(&s);
    for (name, runtime, src) in [
        ("zombie-py", "python3", ZOMBIES_PY),
        ("zombie-js", "nodejs", ZOMBIES_JS),
    ] {
        deploy(&s, name, runtime, src, json!({"max_concurrency": 1}));
        let mut last = Value::Null;
        for i in 0..500 {
            let r = s.invoke(name, &json!({}));
            assert_eq!(r.status, 200, "{name} call {i}: {}", r.text);
            assert_eq!(
                r.body["rc"], 0,
                "{name} call {i} could not fork: {}",
                r.text
            );
            last = r.body;
        }
        assert!(
            last["zombies"].as_u64().unwrap() <= 2,
            "{name}: zombies pile up: {last}"
        );
    }
    bystander_answers(&s);
}

#[test]
fn a_background_thread_does_not_corrupt_the_next_answer() {
    let s = server();
    deploy(
        &s,
        "chatty",
        "python3",
        r#"
import threading, time, sys
def noise(n):
    for i in range(2000):
        print("background", n, i)
        sys.stdout.flush()
        time.sleep(0.0005)
def handler(event, context):
    threading.Thread(target=noise, args=(event["n"],), daemon=True).start()
    return {"n": event["n"]}
"#,
        json!({"max_concurrency": 1}),
    );
    deploy(
        &s,
        "chatty-js",
        "nodejs",
        r#"
exports.handler = async (event) => {
  let i = 0;
  const t = setInterval(() => { console.log('background', event.n, i++); if (i > 500) clearInterval(t); }, 1);
  return { n: event.n };
};
"#,
        json!({"max_concurrency": 1}),
    );
    for name in ["chatty", "chatty-js"] {
        for n in 0..30u64 {
            let r = s.invoke(name, &json!({"n": n}));
            assert_eq!(r.status, 200, "{name} {n}: {}", r.text);
            assert_eq!(r.body, json!({"n": n}), "{name}: the answer of call {n}");
        }
    }
}

#[test]
fn filling_tmp_is_enospc_inside_and_nothing_outside() {
    let s = server();
    bystander(&s);
    deploy(
        &s,
        "filler",
        "python3",
        r#"
import errno, os
def handler(event, context):
    written = 0
    chunk = b"x" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < (4 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        return {"errno": errno.errorcode[e.errno], "written_mb": written >> 20}
    return {"errno": None, "written_mb": written >> 20}
"#,
        json!({"timeout_ms": 20000, "memory_mb": 256}),
    );
    let before = free_bytes(&s.data_dir);
    let r = s.invoke("filler", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["errno"], "ENOSPC", "{}", r.text);
    assert!(r.body["written_mb"].as_u64().unwrap() <= 1024, "{}", r.text);
    let after = free_bytes(&s.data_dir);
    assert!(
        before.saturating_sub(after) < 64 << 20,
        "the host disk lost {} MiB",
        (before - after) >> 20
    );
    bystander_answers(&s);
}

fn free_bytes(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// 200 MB written to stdout in one call, both runtimes: the call ends (its
/// answer, or a typed error), the record keeps a bounded, marked-truncated
/// log, the server's memory does not take the 200 MB, and the next call and
/// the bystander answer.
#[test]
fn two_hundred_megabytes_of_stdout() {
    let s = server();
    bystander(&s);
    let py = "import sys\ndef handler(e, c):\n    chunk = 'x' * (1 << 20)\n    for _ in range(200):\n        sys.stdout.write(chunk)\n    sys.stdout.flush()\n    return {'done': True}\n";
    let js = "exports.handler = async () => { const chunk = 'x'.repeat(1 << 20); for (let i = 0; i < 200; i++) process.stdout.write(chunk); return {done: true}; };";
    for (name, runtime, src) in [("loud-py", "python3", py), ("loud-js", "nodejs", js)] {
        deploy(
            &s,
            name,
            runtime,
            src,
            json!({"timeout_ms": 30000, "max_concurrency": 1}),
        );
        let r = s.invoke(name, &json!({}));
        eprintln!("{name}: {} {}", r.status, &r.text[..r.text.len().min(300)]);
        assert!(
            r.status == 200 && r.body["done"] == true
                || [502, 504].contains(&r.status) && !r.error_type().is_empty(),
            "{name}: {} {}",
            r.status,
            r.text
        );
        let id = r.header("x-ignis-invocation-id").to_string();
        // Records are written a moment after the answer.
        let path = format!("/api/v1/functions/{name}/invocations/{id}");
        wait_for("the call's record", 10, || s.get(&path).status == 200);
        let rec = s.get(&path);
        let stdout = rec.body["stdout"].as_str().unwrap_or("");
        assert!(
            stdout.len() <= 64 * 1024 + 64,
            "{name}: the record kept {} bytes of stdout",
            stdout.len()
        );
        assert_eq!(rec.body["logs_truncated"], true, "{}", rec.text);
        let rss_kib = server_rss_kib(&s);
        assert!(
            rss_kib < 150 * 1024,
            "{name}: the server holds {rss_kib} KiB after 200 MB of output"
        );
        // The same function answers again (a new sandbox if it died).
        let again = s.invoke(name, &json!({}));
        assert!(
            again.status == 200 || [502, 504].contains(&again.status),
            "{}",
            again.text
        );
        bystander_answers(&s);
    }
}

fn server_rss_kib(s: &Server) -> u64 {
    let pid = s.child.as_ref().unwrap().id();
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Containers of `function` killed from outside at random while a bounded
/// load calls it: each call succeeds or fails with a typed error, no more
/// calls fail than there were kills (each sandbox holds one call at a time),
/// and the pool heals by itself.
#[test]
fn sandboxes_killed_at_random_under_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let s = server();
    deploy(
        &s,
        "target",
        "python3",
        "import time\ndef handler(e, c):\n    time.sleep(0.02)\n    return {'n': e['n']}\n",
        json!({"min_warm": 2, "max_concurrency": 4}),
    );
    wait_for("a warm pool", 60, || {
        s.get("/api/v1/pools").body["functions"][0]["sandboxes"]["idle"].as_u64() >= Some(2)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let (url, key) = (s.url.clone(), s.key.clone());
            let (stop, failures, calls) = (stop.clone(), failures.clone(), calls.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .post(format!("{url}/api/v1/functions/target/invoke"))
                        .bearer_auth(&key)
                        .json(&json!({"n": n}))
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = r.json().unwrap();
                    if status == 200 {
                        assert_eq!(body["n"], n, "an answer for another call");
                    } else {
                        let kind = body["error"]["type"].as_str().unwrap_or("").to_string();
                        failures.lock().unwrap().push((status, kind));
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let instance = s.instance();
    let mut kills = 0;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..12 {
        std::thread::sleep(std::time::Duration::from_millis(400));
        let out = std::process::Command::new("docker")
            .args([
                "ps",
                "-q",
                "--filter",
                &format!("label=io.ignis.instance={instance}"),
            ])
            .output()
            .unwrap();
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            continue;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let victim = &ids[(seed % ids.len() as u64) as usize];
        let killed = std::process::Command::new("docker")
            .args(["kill", victim])
            .output()
            .unwrap();
        if killed.status.success() {
            kills += 1;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let calls = calls.load(Ordering::Relaxed);
    eprintln!(
        "{calls} calls, {kills} kills, {} failed: {failures:?}",
        failures.len()
    );
    for (status, kind) in &failures {
        assert!(
            *status == 502 && kind == "SandboxCrashed",
            "a call failed with {status} {kind}"
        );
    }
    assert!(kills > 0);
    assert!(
        failures.len() <= kills,
        "{} calls failed for {kills} kills",
        failures.len()
    );
    wait_for("the pool healed", 60, || {
        s.get("/api/v1/pools").body["functions"][0]["sandboxes"]["idle"].as_u64() >= Some(2)
    });
    let r = s.invoke("target", &json!({"n": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
}
