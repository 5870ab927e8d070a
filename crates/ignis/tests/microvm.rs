//! Functions on the microVM backend (QEMU microvm, TCG on this machine
//! class): the same behaviour as on Docker. One server and its stem cells
//! are shared by all checks, run in sequence, because every boot under TCG
//! costs seconds of a core. Needs QEMU, a kernel and busybox-static
//! (`scripts/deps.sh` installs them); set IGNIS_SKIP_MICROVM_TESTS=1 to skip.
//! Sandboxes are restored from snapshots (the default): the first stem cell
//! of each runtime builds the snapshot (kept in the shared image directory,
//! so later runs reuse it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{wait_for, Reply, Server};
use serde_json::{json, Value};

/// The tests that boot VMs take turns. Under TCG a boot is CPU-bound for
/// seconds: two such tests side by side on two cores (each booting one VM
/// per runtime at once) pushed boots past the 30 s boot timeout and a
/// guest's OOM kill past its call's deadline. Each test alone fits.
static VMS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn vms_to_myself() -> std::sync::MutexGuard<'static, ()> {
    VMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn skip() -> bool {
    std::env::var("IGNIS_SKIP_MICROVM_TESTS").as_deref() == Ok("1")
        || std::env::var("IGNIS_SKIP_DOCKER_TESTS").as_deref() == Ok("1")
}

const PY: &str = r#"
import os, random, time, uuid
def handler(event, context):
    if event.get('loop'):
        while True:
            pass
    if event.get('raise'):
        raise ValueError('boom in a vm')
    if event.get('exit'):
        os._exit(3)
    if event.get('hog'):
        chunks = []
        while True:
            chunks.append(bytearray(b'x' * (8 << 20)))
    time.sleep(event.get('sleep', 0))
    out = {'uid': os.getuid(), 'net': sorted(os.listdir('/sys/class/net')),
           'env': os.environ.get('GREETING'), 'rand': os.urandom(16).hex(),
           'random': random.random(), 'uuid': str(uuid.uuid4()), 'clock': time.time(),
           'name': context.function_name, 'event': event}
    for path in ['/etc/evil', '/tmp/ok']:
        try:
            with open(path, 'w') as f:
                f.write('x')
            out[path] = 'written'
        except OSError as e:
            out[path] = type(e).__name__
    return out
"#;

const JS: &str = r#"
const crypto = require('crypto');
const fs = require('fs');
exports.handler = async (event, context) => {
    if (event.loop) for (;;) {}
    if (event.raise) throw new TypeError('boom in a vm');
    if (event.exit) process.exit(3);
    if (event.hog) {
        const chunks = [];
        for (;;) chunks.push(Buffer.alloc(8 << 20, 1));
    }
    const out = {
        uid: process.getuid(), env: process.env.GREETING, rand: crypto.randomBytes(16).toString('hex'),
        random: Math.random(), uuid: crypto.randomUUID(), clock: Date.now() / 1000,
        net: fs.readdirSync('/sys/class/net').sort(), name: context.functionName, event,
    };
    for (const path of ['/etc/evil', '/tmp/ok']) {
        try {
            fs.writeFileSync(path, 'x');
            out[path] = 'written';
        } catch (e) {
            out[path] = e.code;
        }
    }
    return out;
};
"#;

/// The command lines (arguments joined by spaces) of running QEMU processes.
fn qemu_cmdlines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| {
            // The program may be named by path (`/usr/bin/qemu-system-x86_64`).
            let program = c.split(' ').next().unwrap_or("");
            program.rsplit('/').next().unwrap_or("").starts_with("qemu")
        })
        .collect()
}

/// The QEMU command line of a sandbox's VM, if it runs.
fn vm_cmdline(sandbox: &str) -> Option<String> {
    qemu_cmdlines()
        .into_iter()
        .find(|c| c.contains(&format!("ignis.sandbox={sandbox} ")))
}

/// Snapshot directories (in the shared image directory) whose name has `key`.
fn snapshot_dirs(key: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for image in std::fs::read_dir(common::image_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let snapshots = image.path().join("snapshots");
        for snap in std::fs::read_dir(snapshots).into_iter().flatten().flatten() {
            let name = snap.file_name().to_string_lossy().to_string();
            if name.contains(&format!("-{key}-")) && !name.contains(".partial") {
                out.push(snap.path());
            }
        }
    }
    out
}

fn vm_running(sandbox: &str) -> bool {
    vm_cmdline(sandbox).is_some()
}

fn sandbox_of(s: &Server, function: &str, r: &Reply) -> String {
    let id = r.header("x-ignis-invocation-id").to_string();
    let mut sandbox = String::new();
    wait_for("the record", 10, || {
        let recs = s
            .get(&format!(
                "/api/v1/functions/{function}/invocations?limit=100"
            ))
            .body;
        if let Some(rec) = recs["invocations"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == id))
        {
            sandbox = rec["sandbox_id"].as_str().unwrap_or("").to_string();
            return true;
        }
        false
    });
    sandbox
}

#[test]
fn functions_behave_the_same_in_microvms() {
    if skip() {
        return;
    }
    let _turn = vms_to_myself();
    let s = Server::start(&["--stem-max", "2"]);
    let health = s.get("/api/v1/health").body;
    let vm = health["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "microvm")
        .cloned()
        .expect("microvm backend listed");
    assert_eq!(vm["available"], true, "{health}");
    let detail = vm["detail"].as_str().unwrap();
    assert!(detail.contains("KVM") || detail.contains("TCG"), "{detail}");

    for (name, runtime, handler, file, src) in [
        ("vm-py", "python3", "main.handler", "main.py", PY),
        ("vm-js", "nodejs", "index.handler", "index.js", JS),
    ] {
        s.deploy(
            &json!({"name": name, "runtime": runtime, "handler": handler, "backend": "microvm",
            "env": {"GREETING": "hi"}, "timeout_ms": 3000, "max_concurrency": 4,
            "code": {"files": {file: src}}}),
        );
    }
    wait_for("a stem cell of each runtime", 240, || {
        let p = s.get("/api/v1/pools").body;
        let ready = |rt: &str| {
            p["stem_cells"].as_array().into_iter().flatten().any(|c| {
                c["backend"] == "microvm"
                    && c["runtime"] == rt
                    && c["ready"].as_u64().unwrap_or(0) >= 1
            })
        };
        ready("python3") && ready("nodejs")
    });

    // Hello, echo, env, context, unprivileged, from a stem cell that was
    // restored from a snapshot, with the host's clock.
    let mut firsts = Vec::new();
    for name in ["vm-py", "vm-js"] {
        let event = json!({"hello": "vm", "n": [1, 2]});
        let r = s.invoke(name, &event);
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(r.header("x-ignis-start"), "stem", "{name}");
        assert_eq!(r.body["event"], event);
        assert_eq!(r.body["env"], "hi");
        assert_eq!(r.body["name"], name);
        assert_eq!(r.body["uid"], 65534);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let clock = r.body["clock"].as_f64().unwrap();
        assert!(
            (clock - now).abs() < 30.0,
            "{name}: guest clock {clock}, host {now}"
        );
        let sandbox = sandbox_of(&s, name, &r);
        let cmdline = vm_cmdline(&sandbox).unwrap_or_else(|| {
            panic!(
                "{name}: the VM of sandbox {sandbox:?} runs; QEMU processes: {:?}",
                qemu_cmdlines()
            )
        });
        assert!(
            cmdline.contains("-incoming defer"),
            "{name} was not restored: {cmdline}"
        );
        assert!(cmdline.contains("share=off"), "{cmdline}");
        assert_eq!(s.invoke(name, &json!({})).header("x-ignis-start"), "warm");
        firsts.push(r.body);
    }

    // Two clones of one snapshot: different random streams everywhere (the
    // kernel's CRNG, Python's random and uuid, V8's Math.random, OpenSSL).
    for (i, (name, runtime, handler, file, src)) in [
        ("vm-py2", "python3", "main.handler", "main.py", PY),
        ("vm-js2", "nodejs", "index.handler", "index.js", JS),
    ]
    .into_iter()
    .enumerate()
    {
        s.deploy(
            &json!({"name": name, "runtime": runtime, "handler": handler,
            "backend": "microvm", "env": {"GREETING": "hi"}, "code": {"files": {file: src}}}),
        );
        let r = s.invoke(name, &json!({}));
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        let sandbox = sandbox_of(&s, name, &r);
        assert!(vm_cmdline(&sandbox).is_some_and(|c| c.contains("-incoming defer")));
        for field in ["rand", "random", "uuid"] {
            assert_ne!(
                r.body[field], firsts[i][field],
                "{name}: {field} repeats another clone's"
            );
        }
    }

    for (name, error) in [
        ("vm-py", "ValueError: boom in a vm"),
        ("vm-js", "TypeError: boom in a vm"),
    ] {
        // No network interface but loopback; read-only root; writable /tmp.
        let r = s.invoke(name, &json!({}));
        let first_rand = r.body["rand"].clone();
        let first_sandbox = sandbox_of(&s, name, &r);
        assert_eq!(r.body["net"], json!(["lo"]), "{name}");
        assert_ne!(r.body["/etc/evil"], "written", "{name}");
        assert_eq!(r.body["/tmp/ok"], "written", "{name}");

        // Exception.
        let r = s.invoke(name, &json!({"raise": true}));
        assert_eq!(r.status, 502, "{name}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "FunctionError");
        assert_eq!(r.body["error"]["message"], error);

        // Timeout: the VM is killed and never reused.
        let r = s.invoke(name, &json!({"loop": true}));
        assert_eq!(r.status, 504, "{name}: {}", r.text);
        assert_eq!(r.body["error"]["message"], "timed out after 3000 ms");
        let sandbox = sandbox_of(&s, name, &r);
        wait_for("the timed-out VM to be gone", 20, || !vm_running(&sandbox));

        // The replacement is another VM, with its own random stream.
        let r = s.invoke(name, &json!({}));
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_ne!(sandbox_of(&s, name, &r), first_sandbox);
        assert_ne!(r.body["rand"], first_rand);

        // The bootstrap exits: SandboxCrashed with its exit code, learned
        // from the guest init's last message on the channel (not from the
        // VMM's exit, which under TCG comes seconds later).
        let r = s.invoke(name, &json!({"exit": true}));
        assert_eq!(r.status, 502, "{name}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "SandboxCrashed", "{name}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exited with code 3"),
            "{name}: {}",
            r.text
        );

        // Memory hog: the guest kernel's OOM killer, reported as OutOfMemory.
        // Under TCG a guest near its memory limit thrashes (code pages
        // evicted and read back) for seconds before the OOM killer acts;
        // on a busy machine that outran the 3 s deadline, so this call
        // gets a longer one.
        let r = s.put(
            &format!("/api/v1/functions/{name}"),
            &json!({"timeout_ms": 20000}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s.invoke(name, &json!({"hog": true}));
        assert_eq!(r.status, 502, "{name}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "OutOfMemory", "{name}: {}", r.text);
    }

    // A broken snapshot: restores fail, sandboxes boot instead, calls succeed.
    // Its own memory size gives it its own snapshot, built fresh each run.
    for dir in snapshot_dirs("python3-192m") {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let deploy_192 = |name: &str| {
        s.deploy(
            &json!({"name": name, "runtime": "python3", "handler": "main.handler",
            "backend": "microvm", "memory_mb": 192, "code": {"files": {"main.py": PY}}}),
        );
    };
    deploy_192("vm-192a");
    let r = s.invoke("vm-192a", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let dirs = snapshot_dirs("python3-192m");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    std::fs::write(dirs[0].join("state.mig"), b"not a migration stream").unwrap();
    for name in ["vm-192b", "vm-192c"] {
        deploy_192(name);
        let r = s.invoke(name, &json!({}));
        assert_eq!(r.status, 200, "{name}: {}", r.text);
    }
    wait_for("a 192 MB VM booted after a failed restore", 120, || {
        qemu_cmdlines()
            .iter()
            .any(|c| c.contains("-m 192M") && !c.contains("-incoming"))
    });
    for dir in snapshot_dirs("python3-192m") {
        let _ = std::fs::remove_dir_all(dir);
    }

    // Still serving.
    let r = s.invoke("vm-js", &json!({"after": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    let v: Value = r.body;
    assert_eq!(v["event"]["after"], true);
}

#[test]
fn forcing_tcg_skips_the_kvm_probe() {
    if skip() {
        return;
    }
    let s = Server::start_with_env(
        &["--stem-initial", "0", "--stem-max", "0"],
        &[("IGNIS_MICROVM_ACCEL", "tcg")],
    );
    let health = s.get("/api/v1/health").body;
    let vm = health["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "microvm")
        .cloned()
        .unwrap();
    assert!(
        vm["detail"]
            .as_str()
            .unwrap()
            .contains("TCG (KVM disabled by configuration)"),
        "{vm}"
    );
    let out = s.stdout_rest.lock().unwrap().join("\n");
    assert!(
        out.contains("backend microvm: ready") && out.contains("TCG"),
        "{out}"
    );
}

/// In microVMs (the guest init is PID 1): orphans left by every call are
/// reaped over 500 warm calls, in both runtimes; then QEMU itself is killed
/// from outside (`kill -9`): the call it held fails with a typed error and
/// the function answers again from a new VM.
#[test]
fn orphans_are_reaped_and_a_killed_vm_is_replaced() {
    if skip() {
        return;
    }
    let _turn = vms_to_myself();
    let mut s = Server::start(&["--stem-max", "1"]);
    // The two runtimes side by side (one VM each, one core each under TCG).
    let cases = [
        (
            "orphans-py",
            "python3",
            "main.handler",
            "main.py",
            common::ZOMBIES_PY,
        ),
        (
            "orphans-js",
            "nodejs",
            "index.handler",
            "index.js",
            common::ZOMBIES_JS,
        ),
    ];
    std::thread::scope(|scope| {
        for (name, runtime, handler, file, src) in cases {
            let s = &s;
            scope.spawn(move || {
                s.deploy(
                    &json!({"name": name, "runtime": runtime, "handler": handler,
                    "backend": "microvm", "max_concurrency": 1, "timeout_ms": 10000,
                    "code": {"files": {file: src}}}),
                );
                let mut last = serde_json::Value::Null;
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
                    "{name}: zombies pile up in the VM: {last}"
                );
            });
        }
    });

    let first = s.invoke("orphans-py", &json!({}));
    let sandbox = sandbox_of(&s, "orphans-py", &first);
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(&format!("ignis.sandbox={sandbox} "))
            })
        })
        .map(|e| e.file_name().to_string_lossy().to_string())
        .expect("the VM's QEMU process");
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    wait_for("QEMU gone", 10, || !vm_running(&sandbox));
    let mut outcomes = Vec::new();
    wait_for("an answer from a new VM", 120, || {
        let r = s.invoke("orphans-py", &json!({}));
        outcomes.push((r.status, r.error_type().to_string()));
        r.status == 200
    });
    for (status, kind) in &outcomes {
        assert!(
            *status == 200 || (*status == 502 && kind == "SandboxCrashed"),
            "a call after the kill ended with {status} {kind}: {outcomes:?}"
        );
    }
    let again = s.invoke("orphans-py", &json!({}));
    assert_ne!(sandbox_of(&s, "orphans-py", &again), sandbox);

    // `kill -9` of the server: its VMs outlive it (QEMU is not told), and
    // the restart on the same data directory kills every one of them.
    let instance = s.instance();
    let marker = format!("ignis.instance={instance} ");
    let vm_pids = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&marker)
                })
            })
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    };
    let before = vm_pids();
    assert!(!before.is_empty(), "no VM running before the kill");
    s.kill9();
    s.spawn();
    wait_for("the killed server's VMs gone", 30, || {
        let now = vm_pids();
        before.iter().all(|pid| !now.contains(pid))
    });
    let r = s.invoke("orphans-py", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
}
