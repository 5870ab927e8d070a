//! The client commands: thin wrappers over the HTTP API. Tables for
//! people, `--json` for scripts.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine as _;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::{json, Map, Value};

use crate::{Command, FnCommand, FnSpec};

pub struct Client {
    base: String,
    http: reqwest::Client,
    json: bool,
    namespace: Option<String>,
}

/// What `ignis login` stores: `~/.config/ignis/config.toml` (mode 0600).
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub server: Option<String>,
    pub key: Option<String>,
}

impl Login {
    pub fn path() -> Option<std::path::PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
            })?;
        Some(base.join("ignis").join("config.toml"))
    }

    /// The stored login, or nothing.
    pub fn load() -> anyhow::Result<Self> {
        let Some(path) = Self::path() else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self) -> anyhow::Result<std::path::PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = Self::path().context("no home directory to store the login in")?;
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let text = toml::to_string(self)?;
        let tmp = path.with_extension("toml.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// `ignis login`: checks the key against the server, then stores both.
pub async fn login(server: &str, key: Option<String>) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(k) => k,
        None => {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                eprint!("API key for {server}: ");
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if key.is_empty() {
        bail!("no key given: pass --key, set IGNIS_API_KEY, or type it");
    }
    let client = Client::new(server, false, Some(key.clone()), None)?;
    let me = client
        .expect_ok(client.http.get(client.url("/whoami")))
        .await
        .context("the server did not accept the key")?;
    let path = Login {
        server: Some(server.trim_end_matches('/').to_string()),
        key: Some(key),
    }
    .save()?;
    println!(
        "logged in to {server} as {} ({}); saved in {}",
        s(&me["key_name"]),
        s(&me["role"]),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

impl Client {
    pub fn new(
        server: &str,
        json: bool,
        key: Option<String>,
        namespace: Option<String>,
    ) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = key {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .context("the API key holds characters a header cannot")?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(960))
            .default_headers(headers)
            .build()?;
        Ok(Self {
            base: server.trim_end_matches('/').to_string(),
            http,
            json,
            namespace,
        })
    }

    /// `/functions...` of the namespace in use.
    fn fn_url(&self, rest: &str) -> String {
        match &self.namespace {
            Some(ns) => self.url(&format!("/namespaces/{ns}/functions{rest}")),
            None => self.url(&format!("/functions{rest}")),
        }
    }

    pub async fn run(&self, command: Command) -> anyhow::Result<ExitCode> {
        match command {
            Command::Function(FnCommand::Create(spec)) => self.create(spec).await,
            Command::Function(FnCommand::Update(spec)) => self.update(spec).await,
            Command::Function(FnCommand::Ls) => self.list().await,
            Command::Function(FnCommand::Get { name }) => self.get(&name).await,
            Command::Function(FnCommand::Rm { name }) => self.remove(&name).await,
            Command::Invoke {
                name,
                data,
                data_file,
            } => {
                let event = match (data, data_file) {
                    (Some(d), _) => d,
                    (None, Some(path)) if path.as_os_str() == "-" => {
                        let mut s = String::new();
                        std::io::stdin().read_to_string(&mut s)?;
                        s
                    }
                    (None, Some(path)) => std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                    (None, None) => "{}".to_string(),
                };
                self.invoke(&name, event).await
            }
            Command::Logs { name, limit } => self.logs(&name, limit).await,
            Command::Top { once } => self.top(once).await,
            Command::Whoami => self.whoami().await,
            Command::Keys(k) => self.keys(k).await,
            Command::Serve(_) | Command::Images(_) | Command::Login | Command::Admin(_) => {
                unreachable_command()
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Sends a request; returns the status, headers and JSON body, or fails
    /// with the server's error message.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Value)> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the ignis server at {}", self.base))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, headers, body))
    }

    async fn expect_ok(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let (status, _, body) = self.send(req).await?;
        if !status.is_success() {
            bail!("{}", error_text(status, &body));
        }
        Ok(body)
    }

    fn body_of(spec: &FnSpec, with_code: bool) -> anyhow::Result<Value> {
        let mut body = Map::new();
        let mut put = |k: &str, v: Value| {
            body.insert(k.to_string(), v);
        };
        if let Some(v) = &spec.runtime {
            put("runtime", json!(v));
        }
        if let Some(v) = &spec.handler {
            put("handler", json!(v));
        }
        if let Some(v) = &spec.route {
            // An empty route removes it.
            put("route", if v.is_empty() { Value::Null } else { json!(v) });
        }
        if let Some(v) = &spec.backend {
            put("backend", json!(v));
        }
        if let Some(v) = spec.timeout_ms {
            put("timeout_ms", json!(v));
        }
        if let Some(v) = spec.memory_mb {
            put("memory_mb", json!(v));
        }
        if let Some(v) = spec.cpus {
            put("cpus", json!(v));
        }
        if !spec.env.is_empty() {
            let mut env = BTreeMap::new();
            for kv in &spec.env {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--env {kv:?}: expected KEY=VALUE"))?;
                env.insert(k.to_string(), v.to_string());
            }
            put("env", json!(env));
        }
        if let Some(v) = spec.min_warm {
            put("min_warm", json!(v));
        }
        if let Some(v) = spec.max_concurrency {
            put("max_concurrency", json!(v));
        }
        if let Some(v) = spec.batch_max_size {
            put("batch_max_size", json!(v));
        }
        if let Some(v) = spec.batch_max_wait_ms {
            put("batch_max_wait_ms", json!(v));
        }
        if let Some(v) = spec.queue_timeout_ms {
            put("queue_timeout_ms", json!(v));
        }
        if let Some(v) = spec.keep_alive_s {
            put("keep_alive_s", json!(v));
        }
        if let Some(v) = &spec.http_auth {
            put("http_auth", json!(v));
        }
        if let Some(v) = spec.batch_concurrent {
            put("batch_concurrent", json!(v));
        }
        match &spec.dir {
            Some(dir) => {
                let archive = ignis_package::zip_dir(dir, ignis_package::DEFAULT_MAX_ARCHIVE_BYTES)
                    .with_context(|| format!("packing {}", dir.display()))?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&archive.bytes);
                body.insert("code".into(), json!({ "zip_base64": b64 }));
            }
            None if with_code => bail!("--dir is required: the directory holding the code"),
            None => {}
        }
        Ok(Value::Object(body))
    }

    async fn create(&self, spec: FnSpec) -> anyhow::Result<ExitCode> {
        let mut body = Self::body_of(&spec, true)?;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("name".into(), json!(spec.name));
        }
        let f = self
            .expect_ok(self.http.post(self.fn_url("")).json(&body))
            .await?;
        self.print_function(&f);
        Ok(ExitCode::SUCCESS)
    }

    async fn update(&self, spec: FnSpec) -> anyhow::Result<ExitCode> {
        let body = Self::body_of(&spec, false)?;
        let f = self
            .expect_ok(
                self.http
                    .put(self.fn_url(&format!("/{}", spec.name)))
                    .json(&body),
            )
            .await?;
        self.print_function(&f);
        Ok(ExitCode::SUCCESS)
    }

    async fn list(&self) -> anyhow::Result<ExitCode> {
        let body = self.expect_ok(self.http.get(self.fn_url(""))).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&body)?);
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        table.set_header([
            "NAME", "VERSION", "RUNTIME", "BACKEND", "ROUTE", "AUTH", "MEMORY", "TIMEOUT",
            "UPDATED",
        ]);
        for f in body["functions"].as_array().into_iter().flatten() {
            table.add_row([
                s(&f["name"]),
                s(&f["version"]),
                s(&f["runtime"]),
                s(&f["backend"]),
                s(&f["route"]),
                s(&f["http_auth"]),
                format!("{} MiB", s(&f["memory_mb"])),
                format!("{} ms", s(&f["timeout_ms"])),
                s(&f["updated_at"]),
            ]);
        }
        println!("{table}");
        Ok(ExitCode::SUCCESS)
    }

    async fn get(&self, name: &str) -> anyhow::Result<ExitCode> {
        let f = self
            .expect_ok(self.http.get(self.fn_url(&format!("/{name}"))))
            .await?;
        self.print_function(&f);
        Ok(ExitCode::SUCCESS)
    }

    async fn remove(&self, name: &str) -> anyhow::Result<ExitCode> {
        self.expect_ok(self.http.delete(self.fn_url(&format!("/{name}"))))
            .await?;
        if self.json {
            println!("{}", json!({ "deleted": name }));
        } else {
            println!("deleted {name}");
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn invoke(&self, name: &str, event: String) -> anyhow::Result<ExitCode> {
        let (status, headers, body) = self
            .send(
                self.http
                    .post(self.fn_url(&format!("/{name}/invoke")))
                    .header("content-type", "application/json")
                    .body(event),
            )
            .await?;
        let header = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        if self.json {
            let out = json!({
                "status": status.as_u16(),
                "invocation_id": header("x-ignis-invocation-id"),
                "start": header("x-ignis-start"),
                "duration_ms": header("x-ignis-duration-ms").parse::<f64>().ok(),
                "body": body,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else if status.is_success() {
            println!("{}", serde_json::to_string_pretty(&body)?);
            eprintln!(
                "({} start, {} ms, invocation {})",
                header("x-ignis-start"),
                header("x-ignis-duration-ms"),
                header("x-ignis-invocation-id")
            );
        } else {
            eprintln!("error: {}", error_text(status, &body));
            if let Some(stack) = body["error"]["stack"].as_str() {
                eprintln!("{stack}");
            }
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn logs(&self, name: &str, limit: u32) -> anyhow::Result<ExitCode> {
        let body = self
            .expect_ok(
                self.http
                    .get(self.fn_url(&format!("/{name}/invocations")))
                    .query(&[("limit", limit)]),
            )
            .await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&body)?);
            return Ok(ExitCode::SUCCESS);
        }
        let records = body["invocations"].as_array().cloned().unwrap_or_default();
        for r in records.iter().rev() {
            let when = r["started_at_ms"]
                .as_i64()
                .and_then(chrono_fmt)
                .unwrap_or_default();
            let err = match r["error_type"].as_str() {
                Some(t) => format!(" {t}: {}", s(&r["error_message"])),
                None => String::new(),
            };
            println!(
                "{when} {} v{} {} {} {:.1} ms{err}",
                s(&r["id"]),
                s(&r["version"]),
                s(&r["start"]),
                s(&r["status"]),
                r["total_ms"].as_f64().unwrap_or(0.0),
            );
            for (stream, prefix) in [("stdout", "  | "), ("stderr", "  ! ")] {
                for line in r[stream].as_str().unwrap_or("").lines() {
                    println!("{prefix}{line}");
                }
            }
            if r["logs_truncated"] == true {
                println!("  (output truncated)");
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Follows `GET /api/v1/metrics/stream` and redraws a table per snapshot.
    async fn top(&self, once: bool) -> anyhow::Result<ExitCode> {
        use futures::StreamExt;
        let resp = self
            .http
            .get(self.url("/metrics/stream"))
            .send()
            .await
            .with_context(|| format!("cannot reach the ignis server at {}", self.base))?;
        if !resp.status().is_success() {
            bail!("HTTP {}", resp.status());
        }
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let snap: Value = serde_json::from_str(&data)?;
                if self.json {
                    println!("{data}");
                } else {
                    if !once {
                        // Clear the screen and go home, like `top`.
                        print!("\x1b[2J\x1b[H");
                    }
                    println!("{}", render_top(&snap));
                }
                if once {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn whoami(&self) -> anyhow::Result<ExitCode> {
        let me = self.expect_ok(self.http.get(self.url("/whoami"))).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&me)?);
        } else {
            println!(
                "{} ({}): role {}, namespaces {}, at {}",
                s(&me["key_name"]),
                s(&me["key_id"]),
                s(&me["role"]),
                s(&me["namespaces"]),
                self.base
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn keys(&self, command: crate::KeysCommand) -> anyhow::Result<ExitCode> {
        use crate::KeysCommand;
        match command {
            KeysCommand::Ls => {
                let body = self.expect_ok(self.http.get(self.url("/keys"))).await?;
                if self.json {
                    println!("{}", serde_json::to_string_pretty(&body)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut table = Table::new();
                table.load_preset(UTF8_BORDERS_ONLY);
                table.set_header([
                    "ID",
                    "NAME",
                    "ROLE",
                    "NAMESPACES",
                    "PREFIX",
                    "CREATED",
                    "LAST USED",
                    "EXPIRES",
                    "STATE",
                ]);
                let time = |v: &Value| v.as_i64().and_then(chrono_fmt).unwrap_or("-".into());
                for k in body["keys"].as_array().into_iter().flatten() {
                    let state = if k["revoked_at_ms"].is_i64() {
                        "revoked"
                    } else {
                        "active"
                    };
                    table.add_row([
                        s(&k["id"]),
                        s(&k["name"]),
                        s(&k["role"]),
                        s(&k["namespaces"]),
                        format!("{}…", s(&k["prefix"])),
                        time(&k["created_at_ms"]),
                        time(&k["last_used_at_ms"]),
                        time(&k["expires_at_ms"]),
                        state.to_string(),
                    ]);
                }
                println!("{table}");
            }
            KeysCommand::Create {
                name,
                role,
                namespaces,
                expires_in_s,
            } => {
                let mut body = json!({"name": name, "role": role});
                if !namespaces.is_empty() {
                    body["namespaces"] = json!(namespaces);
                }
                if let Some(e) = expires_in_s {
                    body["expires_in_s"] = json!(e);
                }
                let k = self
                    .expect_ok(self.http.post(self.url("/keys")).json(&body))
                    .await?;
                if self.json {
                    println!("{}", serde_json::to_string_pretty(&k)?);
                } else {
                    println!("{}", s(&k["key"]));
                    eprintln!(
                        "(key {} \"{}\", role {}: the secret above is shown only now)",
                        s(&k["id"]),
                        s(&k["name"]),
                        s(&k["role"])
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                self.expect_ok(self.http.delete(self.url(&format!("/keys/{id}"))))
                    .await?;
                println!("revoked {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    fn print_function(&self, f: &Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(f).unwrap_or_default());
            return;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        if let Some(obj) = f.as_object() {
            for (k, v) in obj {
                let v = match v {
                    Value::Object(m) if m.is_empty() => "{}".to_string(),
                    Value::Object(_) => v.to_string(),
                    other => s(other),
                };
                table.add_row([k.as_str(), v.as_str()]);
            }
        }
        println!("{table}");
    }
}

fn unreachable_command() -> anyhow::Result<ExitCode> {
    bail!("this command does not talk to a server")
}

/// A JSON value as table text.
fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn error_text(status: reqwest::StatusCode, body: &Value) -> String {
    match (
        body["error"]["type"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(t), Some(m)) => format!("{t} ({}): {m}", status.as_u16()),
        _ => format!("HTTP {status}: {body}"),
    }
}

fn chrono_fmt(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn render_top(snap: &Value) -> String {
    let r = &snap["resources"];
    let h = &r["host"];
    let gib = |b: &Value| b.as_f64().unwrap_or(0.0) / (1u64 << 30) as f64;
    let mib = |b: &Value| b.as_f64().unwrap_or(0.0) / (1u64 << 20) as f64;
    let ms = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.1}"));
    let mut out = format!(
        "ignis  host cpu {:.0}% of {} cores  mem {:.1}/{:.1} GiB  load {:.2}  sandbox memory {}/{} MiB  records dropped {}\n",
        h["cpu_ratio"].as_f64().unwrap_or(0.0) * 100.0,
        h["cores"],
        gib(&h["memory_used_bytes"]),
        gib(&h["memory_total_bytes"]),
        h["load1"].as_f64().unwrap_or(0.0),
        r["memory_reserved_mb"],
        r["memory_budget_mb"],
        snap["records_dropped"],
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "FUNCTION", "RPS", "CALLS/1m", "ERR%/1m", "P50 ms", "P99 ms", "COLD/1m", "IDLE", "ACTIVE",
        "QUEUED", "MEM MiB", "CPU",
    ]);
    let mut row = |name: &str, f: &Value| {
        let sec = &f["last_second"];
        let m = &f["last_minute"];
        table.add_row([
            name.to_string(),
            format!("{:.0}", sec["rps"].as_f64().unwrap_or(0.0)),
            s(&m["requests"]),
            format!("{:.1}", m["error_rate"].as_f64().unwrap_or(0.0) * 100.0),
            ms(&m["p50_ms"]),
            ms(&m["p99_ms"]),
            s(&m["cold_starts"]),
            s(&f["idle"]),
            s(&f["active"]),
            s(&f["queued"]),
            format!("{:.0}", mib(&f["resources"]["memory_bytes"])),
            format!("{:.2}", f["resources"]["cpu_cores"].as_f64().unwrap_or(0.0)),
        ]);
    };
    row("(all)", &snap["system"]);
    if let Some(fs) = snap["functions"].as_object() {
        for (name, f) in fs {
            row(name, f);
        }
    }
    out.push_str(&table.to_string());
    out
}
