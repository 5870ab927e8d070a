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
const ZOMBIES_PY: &str = r#"
import os
def zombies():
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        n += 1
            except OSError:
                pass
    return n
def handler(event, context):
    rc = os.system("sleep 0 &")
    return {"rc": rc, "zombies": zombies()}
"#;

const ZOMBIES_JS: &str = r#"
const { execSync } = require('child_process');
const fs = require('fs');
function zombies() {
  let n = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] === 'Z') n++;
    } catch (e) {}
  }
  return n;
}
exports.handler = async () => {
  execSync('sleep 0 &');
  return { rc: 0, zombies: zombies() };
};
"#;

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
