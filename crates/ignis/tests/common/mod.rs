//! Black-box harness: the real `ignis` binary on a free port with a
//! temporary data directory, driven over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ignis");

pub struct Server {
    pub child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::blocking::Client,
    pub stdout_rest: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Everything the server wrote to stderr (its log), across restarts.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The admin key of the first start (`DATA_DIR/admin.key`), sent by
    /// every request helper unless it says otherwise.
    pub key: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Server {
    /// Starts a server without Docker (management API only).
    pub fn start_api_only() -> Self {
        Self::start(&["--no-docker", "--no-microvm"])
    }

    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Self::unstarted(data_dir, Some(tmp), extra, env);
        s.spawn();
        s
    }

    fn unstarted(
        data_dir: PathBuf,
        tmp: Option<tempfile::TempDir>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self {
            child: None,
            url: String::new(),
            data_dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _tmp: tmp,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            stdout_rest: Default::default(),
            log: Default::default(),
            key: String::new(),
        }
    }

    /// Starts a server on `data_dir`, which the caller owns (a mount, say).
    pub fn start_on(data_dir: PathBuf, extra: &[&str]) -> Self {
        let mut s = Self::unstarted(data_dir, None, extra, &[]);
        s.spawn();
        s
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// (Re)starts the process on the same data directory.
    pub fn spawn(&mut self) {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            // Images are built once (scripts/test.sh) and shared.
            .env("IGNIS_IMAGE_DIR", image_dir())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ignis");
        // The log is kept for assertions and echoed to the test's output
        // (shown when the test fails).
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                log.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let rest = self.stdout_rest.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("ignis: listening on ") {
                    let _ = tx.send(url.to_string());
                }
                rest.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("server did not report its address");
        self.url = url;
        self.child = Some(child);
        if let Ok(k) = std::fs::read_to_string(self.data_dir.join("admin.key")) {
            self.key = k.trim().to_string();
        }
    }

    /// Standard output of the server so far.
    pub fn stdout_text(&self) -> String {
        self.stdout_rest.lock().unwrap().join("\n")
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> Reply {
        let key = (!self.key.is_empty()).then_some(self.key.as_str());
        self.request_as(key, method, path, body)
    }

    /// A request with `key` (`None`: no credentials).
    pub fn request_as(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        reply(req.send().expect("request"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request(reqwest::Method::GET, path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(reqwest::Method::POST, path, Some(&body.to_string()))
    }
    pub fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.request(reqwest::Method::POST, path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(reqwest::Method::PUT, path, Some(&body.to_string()))
    }
    pub fn delete(&self, path: &str) -> Reply {
        self.request(reqwest::Method::DELETE, path, None)
    }

    /// Creates a key with `role` (admin credentials) and returns its secret.
    pub fn create_key(&self, role: &str, namespaces: Value) -> String {
        let r = self.post(
            "/api/v1/keys",
            &serde_json::json!({"name": format!("test {role}"), "role": role, "namespaces": namespaces}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["key"].as_str().unwrap().to_string()
    }
}

/// A response, read whole.
pub fn reply(resp: reqwest::blocking::Response) -> Reply {
    {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}

impl Server {
    /// Creates a function and asserts it worked.
    pub fn deploy(&self, body: &Value) -> Value {
        let r = self.post("/api/v1/functions", body);
        assert_eq!(r.status, 201, "create failed: {}", r.text);
        r.body
    }

    pub fn invoke(&self, name: &str, event: &Value) -> Reply {
        self.post(&format!("/api/v1/functions/{name}/invoke"), event)
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("IGNIS_SERVER", &self.url)
            .env("IGNIS_API_KEY", &self.key)
            // No stored login of the machine's user interferes.
            .env("XDG_CONFIG_HOME", self.data_dir.join("cli-config"))
            .output()
            .expect("run cli")
    }

    pub fn data_path(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A graceful stop removes this server's sandboxes.
            let _ = self.terminate();
        }
    }
}

/// A zip archive of `files`, base64-encoded.
/// The image directory every test server shares (built by scripts/test.sh).
pub fn image_dir() -> String {
    std::env::var("IGNIS_IMAGE_DIR").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../ignis-data/images").to_string()
    })
}

impl Server {
    /// This server run's instance id, as its containers are labelled.
    pub fn instance(&self) -> String {
        self.get("/api/v1/health").body["instance"]
            .as_str()
            .expect("health names the instance")
            .to_string()
    }
}

/// Ids of the containers (any state) labelled with `instance`, narrowed by
/// more `docker ps` filters (`status=exited`, say).
pub fn containers_of_instance(instance: &str, filters: &[&str]) -> Vec<String> {
    let label = format!("label=io.ignis.instance={instance}");
    let mut args = vec!["ps", "-aq", "--filter", label.as_str()];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `cond` every 100 ms until it holds; fails the test after `secs`.
pub fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn zip_b64(files: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
}

/// A Python function that leaves an orphan (`sleep 0 &`) at every call and
/// counts the zombies in its sandbox.
pub const ZOMBIES_PY: &str = r#"
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

/// The same in Node.js.
pub const ZOMBIES_JS: &str = r#"
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
