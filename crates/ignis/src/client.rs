//! The client commands: thin wrappers over the HTTP API. Tables for
//! people, `--json` for scripts.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine as _;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ignis_api::handlers::access::{CreatedKey, KeyList, WhoAmI};
use ignis_api::handlers::functions::FunctionList;
use ignis_api::handlers::invoke::InvocationList;
use ignis_api::ErrorBody;
use ignis_core::auth::Namespaces;
use ignis_core::{
    CodeInput, CreateFunctionRequest, Function, FunctionPatch, UpdateFunctionRequest,
};
use ignis_engine::observe::{FunctionSnapshot, Snapshot};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Command, FnCommand, FnSpec};

/// A server's answer: the body as sent (what `--json` prints) and parsed
/// into the type the server serialized it from.
struct Reply<T> {
    raw: Value,
    value: T,
}

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
    let me: WhoAmI = client
        .expect_ok(client.http.get(client.url("/whoami")))
        .await
        .context("the server did not accept the key")?
        .value;
    let path = Login {
        server: Some(server.trim_end_matches('/').to_string()),
        key: Some(key),
    }
    .save()?;
    println!(
        "logged in to {server} as {} ({}); saved in {}",
        me.key_name,
        me.role,
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

    /// Sends a request; returns the status, headers and JSON body.
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

    /// Sends a request and parses a successful answer into `T`, or fails
    /// with the server's error.
    async fn expect_ok<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<Reply<T>> {
        let (status, _, raw) = self.send(req).await?;
        if !status.is_success() {
            bail!("{}", error_text(status, &raw));
        }
        let value = T::deserialize(&raw).with_context(|| {
            format!("the server's answer is not what this client understands (a different version?): {raw}")
        })?;
        Ok(Reply { raw, value })
    }

    /// Prints `raw` for `--json`; says whether it did.
    fn printed_json(&self, raw: &Value) -> anyhow::Result<bool> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(raw)?);
        }
        Ok(self.json)
    }

    async fn create(&self, spec: FnSpec) -> anyhow::Result<ExitCode> {
        let code = code_of(&spec)?.context("--dir is required: the directory holding the code")?;
        let body = CreateFunctionRequest {
            name: spec.name.clone(),
            code,
            config: patch_of(&spec)?,
        };
        let f: Reply<Function> = self
            .expect_ok(self.http.post(self.fn_url("")).json(&body))
            .await?;
        self.print_function(&f)
    }

    async fn update(&self, spec: FnSpec) -> anyhow::Result<ExitCode> {
        let body = UpdateFunctionRequest {
            code: code_of(&spec)?,
            config: patch_of(&spec)?,
        };
        let f: Reply<Function> = self
            .expect_ok(
                self.http
                    .put(self.fn_url(&format!("/{}", spec.name)))
                    .json(&body),
            )
            .await?;
        self.print_function(&f)
    }

    async fn list(&self) -> anyhow::Result<ExitCode> {
        let body: Reply<FunctionList> = self.expect_ok(self.http.get(self.fn_url(""))).await?;
        if self.printed_json(&body.raw)? {
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        table.set_header([
            "NAME", "VERSION", "RUNTIME", "BACKEND", "ROUTE", "AUTH", "MEMORY", "TIMEOUT",
            "UPDATED",
        ]);
        for f in &body.value.functions {
            let c = &f.config;
            table.add_row([
                f.label().into_owned(),
                f.version.to_string(),
                c.runtime.to_string(),
                c.backend.to_string(),
                c.route.clone().unwrap_or_else(|| "-".into()),
                c.http_auth.as_str().to_string(),
                format!("{} MiB", c.memory_mb),
                format!("{} ms", c.timeout_ms),
                f.updated_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]);
        }
        println!("{table}");
        Ok(ExitCode::SUCCESS)
    }

    async fn get(&self, name: &str) -> anyhow::Result<ExitCode> {
        let f: Reply<Function> = self
            .expect_ok(self.http.get(self.fn_url(&format!("/{name}"))))
            .await?;
        self.print_function(&f)
    }

    async fn remove(&self, name: &str) -> anyhow::Result<ExitCode> {
        let (status, _, body) = self
            .send(self.http.delete(self.fn_url(&format!("/{name}"))))
            .await?;
        if !status.is_success() {
            bail!("{}", error_text(status, &body));
        }
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
            if let Ok(ErrorBody { error }) = ErrorBody::deserialize(&body) {
                if let Some(stack) = error.stack {
                    eprintln!("{stack}");
                }
            }
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn logs(&self, name: &str, limit: u32) -> anyhow::Result<ExitCode> {
        let body: Reply<InvocationList> = self
            .expect_ok(
                self.http
                    .get(self.fn_url(&format!("/{name}/invocations")))
                    .query(&[("limit", limit)]),
            )
            .await?;
        if self.printed_json(&body.raw)? {
            return Ok(ExitCode::SUCCESS);
        }
        for r in body.value.invocations.iter().rev() {
            let when = chrono_fmt(r.started_at_ms).unwrap_or_default();
            let err = match r.error_type {
                Some(t) => format!(" {t}: {}", r.error_message.as_deref().unwrap_or("")),
                None => String::new(),
            };
            println!(
                "{when} {} v{} {} {} {:.1} ms{err}",
                r.id,
                r.version,
                r.start.map_or("-", |s| s.as_str()),
                r.status.as_str(),
                r.total_ms,
            );
            for (stream, prefix) in [(&r.stdout, "  | "), (&r.stderr, "  ! ")] {
                for line in stream.lines() {
                    println!("{prefix}{line}");
                }
            }
            if r.logs_truncated {
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
                if self.json {
                    println!("{data}");
                } else {
                    let snap: Snapshot = serde_json::from_str(&data)
                        .context("a snapshot this client does not understand")?;
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
        let me: Reply<WhoAmI> = self.expect_ok(self.http.get(self.url("/whoami"))).await?;
        if !self.printed_json(&me.raw)? {
            let me = me.value;
            println!(
                "{} ({}): role {}, namespaces {}, at {}",
                me.key_name,
                me.key_id,
                me.role,
                namespaces_text(&me.namespaces),
                self.base
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn keys(&self, command: crate::KeysCommand) -> anyhow::Result<ExitCode> {
        use crate::KeysCommand;
        match command {
            KeysCommand::Ls => {
                let body: Reply<KeyList> = self.expect_ok(self.http.get(self.url("/keys"))).await?;
                if self.printed_json(&body.raw)? {
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
                let time = |v: Option<i64>| v.and_then(chrono_fmt).unwrap_or("-".into());
                for k in &body.value.keys {
                    let state = if k.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    table.add_row([
                        k.id.clone(),
                        k.name.clone(),
                        k.role.to_string(),
                        namespaces_text(&k.namespaces),
                        format!("{}…", k.prefix),
                        time(Some(k.created_at_ms)),
                        time(k.last_used_at_ms),
                        time(k.expires_at_ms),
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
                let body = ignis_api::handlers::access::CreateKeyRequest {
                    name,
                    role,
                    namespaces: if namespaces.is_empty() {
                        Namespaces::All
                    } else {
                        Namespaces::Only(namespaces.into_iter().collect())
                    },
                    expires_in_s,
                };
                let k: Reply<CreatedKey> = self
                    .expect_ok(self.http.post(self.url("/keys")).json(&body))
                    .await?;
                if !self.printed_json(&k.raw)? {
                    let k = k.value;
                    println!("{}", k.key);
                    eprintln!(
                        "(key {} \"{}\", role {}: the secret above is shown only now)",
                        k.record.id, k.record.name, k.record.role
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                let (status, _, body) = self
                    .send(self.http.delete(self.url(&format!("/keys/{id}"))))
                    .await?;
                if !status.is_success() {
                    bail!("{}", error_text(status, &body));
                }
                println!("revoked {id}");
            }
            KeysCommand::AwsCredentials { id } => {
                let c: Reply<ignis_api::handlers::access::CreatedAwsCredential> = self
                    .expect_ok(
                        self.http
                            .post(self.url(&format!("/keys/{id}/aws-credentials"))),
                    )
                    .await?;
                if !self.printed_json(&c.raw)? {
                    let c = c.value;
                    println!("aws_access_key_id = {}", c.access_key_id);
                    println!("aws_secret_access_key = {}", c.secret_access_key);
                    println!("region = {}", c.region);
                    eprintln!(
                        "(for key {}: the secret above is shown only now; use it with --endpoint-url {})",
                        c.key_id,
                        self.base
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// One function as a two-column table (every field the server sent,
    /// read back from the typed value so that none is misnamed).
    fn print_function(&self, f: &Reply<Function>) -> anyhow::Result<ExitCode> {
        if self.printed_json(&f.raw)? {
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        if let Value::Object(obj) = serde_json::to_value(&f.value)? {
            for (k, v) in obj {
                let v = match v {
                    Value::Object(m) if m.is_empty() => "{}".to_string(),
                    Value::Null => "-".into(),
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                table.add_row([k, v]);
            }
        }
        println!("{table}");
        Ok(ExitCode::SUCCESS)
    }
}

/// The configuration fields an `fn create` / `fn update` sets.
pub(crate) fn patch_of(spec: &FnSpec) -> anyhow::Result<FunctionPatch> {
    let env = if spec.env.is_empty() {
        None
    } else {
        let mut env = BTreeMap::new();
        for kv in &spec.env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--env {kv:?}: expected KEY=VALUE"))?;
            env.insert(k.to_string(), v.to_string());
        }
        Some(env)
    };
    Ok(FunctionPatch {
        runtime: spec.runtime,
        handler: spec.handler.clone(),
        // An empty route removes it.
        route: spec
            .route
            .as_ref()
            .map(|r| (!r.is_empty()).then(|| r.clone())),
        http_auth: spec.http_auth,
        backend: spec.backend,
        timeout_ms: spec.timeout_ms,
        memory_mb: spec.memory_mb,
        cpus: spec.cpus,
        env,
        min_warm: spec.min_warm,
        max_concurrency: spec.max_concurrency,
        batch_max_size: spec.batch_max_size,
        batch_max_wait_ms: spec.batch_max_wait_ms,
        batch_concurrent: spec.batch_concurrent,
        queue_timeout_ms: spec.queue_timeout_ms,
        keep_alive_s: spec.keep_alive_s,
        description: spec.description.clone(),
        // Empty removes them.
        role: spec
            .role
            .as_ref()
            .map(|r| (!r.is_empty()).then(|| r.clone())),
        async_max_retries: spec.async_max_retries,
        async_max_age_s: spec.async_max_age_s,
        http_qualifier: spec
            .http_qualifier
            .as_ref()
            .map(|q| (!q.is_empty()).then(|| q.clone())),
    })
}

/// `--dir`, zipped.
fn code_of(spec: &FnSpec) -> anyhow::Result<Option<CodeInput>> {
    let Some(dir) = &spec.dir else {
        return Ok(None);
    };
    let archive = ignis_package::zip_dir(dir, ignis_package::DEFAULT_MAX_ARCHIVE_BYTES)
        .with_context(|| format!("packing {}", dir.display()))?;
    Ok(Some(CodeInput {
        files: None,
        zip_base64: Some(base64::engine::general_purpose::STANDARD.encode(&archive.bytes)),
    }))
}

fn namespaces_text(ns: &Namespaces) -> String {
    match ns {
        Namespaces::All => "*".into(),
        Namespaces::Only(list) => list.iter().cloned().collect::<Vec<_>>().join(","),
    }
}

fn unreachable_command() -> anyhow::Result<ExitCode> {
    bail!("this command does not talk to a server")
}

fn error_text(status: reqwest::StatusCode, body: &Value) -> String {
    match ErrorBody::deserialize(body) {
        Ok(ErrorBody { error }) => {
            format!("{} ({}): {}", error.kind, status.as_u16(), error.message)
        }
        Err(_) => format!("HTTP {status}: {body}"),
    }
}

fn chrono_fmt(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn render_top(snap: &Snapshot) -> String {
    let r = &snap.resources;
    let h = &r.host;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    let mut out = format!(
        "ignis  host cpu {:.0}% of {} cores  mem {:.1}/{:.1} GiB  load {:.2}  sandbox memory {}/{} MiB  records dropped {}\n",
        h.cpu_ratio * 100.0,
        h.cores,
        gib(h.memory_used_bytes),
        gib(h.memory_total_bytes),
        h.load1,
        r.memory_reserved_mb,
        r.memory_budget_mb,
        snap.records_dropped,
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "FUNCTION", "RPS", "CALLS/1m", "ERR%/1m", "P50 ms", "P99 ms", "COLD/1m", "IDLE", "ACTIVE",
        "QUEUED", "MEM MiB", "CPU",
    ]);
    let mut row = |name: &str, f: &FunctionSnapshot| {
        let m = &f.last_minute;
        table.add_row([
            name.to_string(),
            format!("{:.0}", f.last_second.rps),
            m.requests.to_string(),
            format!("{:.1}", m.error_rate * 100.0),
            ms(m.p50_ms),
            ms(m.p99_ms),
            m.cold_starts.to_string(),
            f.idle.to_string(),
            f.active.to_string(),
            f.queued.to_string(),
            format!("{:.0}", mib(f.resources.memory_bytes)),
            format!("{:.2}", f.resources.cpu_cores),
        ]);
    };
    row("(all)", &snap.system);
    for (name, f) in &snap.functions {
        row(name, f);
    }
    out.push_str(&table.to_string());
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    #[test]
    fn fn_update_can_set_every_configuration_field() {
        let cli = Cli::try_parse_from([
            "ignis",
            "fn",
            "update",
            "f",
            "--runtime=nodejs",
            "--handler=main.handler",
            "--route=/r",
            "--http-auth=none",
            "--backend=microvm",
            "--timeout-ms=1",
            "--memory-mb=2",
            "--cpus=3",
            "--env=A=B",
            "--min-warm=4",
            "--max-concurrency=5",
            "--batch-max-size=6",
            "--batch-max-wait-ms=7",
            "--batch-concurrent=true",
            "--queue-timeout-ms=8",
            "--keep-alive-s=9",
            "--description=d",
            "--role=arn:aws:iam::123456789012:role/r",
            "--async-max-retries=1",
            "--async-max-age-s=60",
            "--http-qualifier=prod",
        ])
        .unwrap();
        let Command::Function(FnCommand::Update(spec)) = cli.command else {
            panic!("not an update");
        };
        let sent = serde_json::to_value(patch_of(&spec).unwrap()).unwrap();
        let config = FunctionPatch {
            runtime: Some(ignis_core::Runtime::Python3),
            handler: Some("main.handler".into()),
            ..FunctionPatch::default()
        }
        .into_new_config()
        .unwrap();
        let every: Vec<String> = serde_json::to_value(config)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let set: Vec<String> = sent.as_object().unwrap().keys().cloned().collect();
        assert_eq!(set, every, "a configuration field the CLI cannot set");
    }
}
