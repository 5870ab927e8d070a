//! The function model: what a user deploys, its limits and defaults, and the
//! validation every API input goes through.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::IgnisError;

pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Limits and defaults of the function model, in one place.
pub mod limits {
    use std::ops::RangeInclusive;

    pub const TIMEOUT_MS: RangeInclusive<u64> = 100..=900_000;
    /// Retries of an asynchronous call after a failed attempt (Lambda's range).
    pub const ASYNC_MAX_RETRIES: RangeInclusive<u32> = 0..=2;
    pub const DEFAULT_ASYNC_MAX_RETRIES: u32 = 2;
    /// How long an asynchronous call may wait for a successful attempt.
    pub const ASYNC_MAX_AGE_S: RangeInclusive<u64> = 60..=21_600;
    pub const DEFAULT_ASYNC_MAX_AGE_S: u64 = 21_600;
    /// Characters of a description.
    pub const DESCRIPTION_CHARS: usize = 256;
    pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
    pub const MEMORY_MB: RangeInclusive<u32> = 64..=4096;
    pub const DEFAULT_MEMORY_MB: u32 = 128;
    pub const CPUS: RangeInclusive<f64> = 0.05..=16.0;
    pub const DEFAULT_CPUS: f64 = 0.5;
    /// Sum of the UTF-8 lengths of all keys and values.
    pub const ENV_TOTAL_BYTES: usize = 4096;
    pub const MIN_WARM: RangeInclusive<u32> = 0..=100;
    pub const DEFAULT_MIN_WARM: u32 = 0;
    pub const MAX_CONCURRENCY: RangeInclusive<u32> = 1..=1000;
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 10;
    pub const BATCH_MAX_SIZE: RangeInclusive<u32> = 1..=64;
    pub const DEFAULT_BATCH_MAX_SIZE: u32 = 1;
    pub const BATCH_MAX_WAIT_MS: RangeInclusive<u64> = 0..=1000;
    pub const DEFAULT_BATCH_MAX_WAIT_MS: u64 = 0;
    pub const QUEUE_TIMEOUT_MS: RangeInclusive<u64> = 0..=900_000;
    pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 10_000;
    pub const KEEP_ALIVE_S: RangeInclusive<u64> = 0..=86_400;
    pub const DEFAULT_KEEP_ALIVE_S: u64 = 600;
    pub const ROUTE_MAX_LEN: usize = 256;
    pub const HANDLER_MAX_LEN: usize = 256;
    /// Longest file name a handler's module may have, so that with its
    /// longest extension (`.mjs`) it stays within a file system's 255 bytes.
    pub const HANDLER_FILE_MAX_LEN: usize = 255 - ".mjs".len();
}

/// The language runtime a function is written for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Python3,
    Nodejs,
}

impl Runtime {
    pub const ALL: [Runtime; 2] = [Runtime::Python3, Runtime::Nodejs];

    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python3 => "python3",
            Runtime::Nodejs => "nodejs",
        }
    }

    /// Source file extensions a handler module may have, in lookup order.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Runtime::Python3 => &["py"],
            Runtime::Nodejs => &["js", "mjs", "cjs"],
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Runtime {
    type Err = IgnisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "python3" => Ok(Runtime::Python3),
            "nodejs" => Ok(Runtime::Nodejs),
            other => Err(IgnisError::invalid(format!(
                "unknown runtime `{other}`: expected `python3` or `nodejs`"
            ))),
        }
    }
}

/// The isolation technology a function's sandboxes run on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Docker,
    Microvm,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Docker => "docker",
            BackendKind::Microvm => "microvm",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = IgnisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" => Ok(BackendKind::Docker),
            "microvm" => Ok(BackendKind::Microvm),
            other => Err(IgnisError::invalid(format!(
                "unknown backend `{other}`: expected `docker` or `microvm`"
            ))),
        }
    }
}

/// Who may call a function's HTTP trigger (`/fn/{route}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    /// Anyone: a public endpoint (Lambda function URLs' `AuthType: NONE`).
    None,
    /// A key whose role may invoke the function (`Authorization: Bearer`).
    #[default]
    Key,
}

impl HttpAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpAuth::None => "none",
            HttpAuth::Key => "key",
        }
    }
}

/// The namespace every function belongs to unless it says otherwise.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A function's identity: its namespace and its name (unique within the
/// namespace). Shown as `name` in the default namespace and `ns/name`
/// elsewhere (names never hold a `/`), as metrics label it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FunctionId {
    pub namespace: String,
    pub name: String,
}

impl FunctionId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A function of the default namespace.
    pub fn default_ns(name: impl Into<String>) -> Self {
        Self::new(DEFAULT_NAMESPACE, name)
    }

    /// `name` or `ns/name`, as [`std::fmt::Display`] shows it.
    pub fn parse(s: &str) -> Self {
        match s.split_once('/') {
            Some((ns, name)) => Self::new(ns, name),
            None => Self::default_ns(s),
        }
    }
}

impl std::fmt::Display for FunctionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace == DEFAULT_NAMESPACE {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Everything about a function that a user configures, except its code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunctionConfig {
    pub runtime: Runtime,
    /// `FILE.FUNC`: `main.handler` is function `handler` in `main.py` / `main.js`.
    pub handler: String,
    /// HTTP trigger path, e.g. `/hello`; calls to `/fn/hello[/...]` invoke the function.
    /// Unique across the server (every namespace).
    pub route: Option<String>,
    /// Who may call the HTTP trigger: `key` (default) or `none` (public).
    #[serde(default)]
    pub http_auth: HttpAuth,
    pub backend: BackendKind,
    /// Bound on one handler execution, in milliseconds (100..=900000).
    pub timeout_ms: u64,
    /// Memory limit of each sandbox in MiB (64..=4096).
    pub memory_mb: u32,
    /// CPU share of each sandbox, in cores (0.05..=16).
    pub cpus: f64,
    /// Environment variables given to the handler (4 KiB in total).
    pub env: BTreeMap<String, String>,
    /// Initialized sandboxes kept ready at all times.
    pub min_warm: u32,
    /// Most calls of this function running at once.
    pub max_concurrency: u32,
    /// Most queued calls sent to one sandbox in one `invoke` message (1 = no batching).
    pub batch_max_size: u32,
    /// How long a call may wait for others to fill a batch, in milliseconds.
    pub batch_max_wait_ms: u64,
    /// Whether async Node.js handlers of one batch may run concurrently.
    pub batch_concurrent: bool,
    /// How long a call may wait in the queue before it is throttled, in milliseconds.
    pub queue_timeout_ms: u64,
    /// Idle sandboxes are reaped after this many seconds.
    pub keep_alive_s: u64,
    /// What the function is for (256 characters).
    #[serde(default)]
    pub description: String,
    /// An IAM role ARN, as the AWS-compatible API is given one: stored and
    /// shown, not enforced.
    #[serde(default)]
    pub role: Option<String>,
    /// Retries of an asynchronous call after a failed attempt (0..=2).
    #[serde(default = "default_async_max_retries")]
    pub async_max_retries: u32,
    /// How long an asynchronous call may wait for a successful attempt, in
    /// seconds (60..=21600); older ones go to the dead letters.
    #[serde(default = "default_async_max_age_s")]
    pub async_max_age_s: u64,
    /// The alias or version the HTTP trigger calls (default: the latest).
    #[serde(default)]
    pub http_qualifier: Option<String>,
}

fn default_async_max_retries() -> u32 {
    limits::DEFAULT_ASYNC_MAX_RETRIES
}

fn default_async_max_age_s() -> u64 {
    limits::DEFAULT_ASYNC_MAX_AGE_S
}

/// A deployed function, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Function {
    /// The namespace the function belongs to (`default` unless said).
    pub namespace: String,
    pub name: String,
    /// Increases with every change of code or configuration.
    pub version: u64,
    #[serde(flatten)]
    pub config: FunctionConfig,
    /// Content address (sha256, hex) of the normalized code archive.
    pub code_sha256: String,
    pub code_size_bytes: u64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// SHA-256 (hex) of the zip as it was uploaded (the stored archive is
    /// normalized; this is what tools that sent the zip compare with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// A published version (frozen; `name:N`), as opposed to the latest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub published: bool,
}

impl Function {
    pub fn id(&self) -> FunctionId {
        FunctionId::new(&self.namespace, &self.name)
    }

    /// The engine's pool of this function: the latest version's is the
    /// function's id; a published version has a pool of its own, named
    /// `name:N` (function names cannot hold `:`), so that versions called
    /// through aliases and the latest run side by side.
    pub fn pool_id(&self) -> FunctionId {
        if self.published {
            FunctionId::new(&self.namespace, format!("{}:{}", self.name, self.version))
        } else {
            self.id()
        }
    }

    /// `name` or `ns/name`: the function's metrics label.
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        qualified(&self.namespace, &self.name)
    }
}

/// `name` in the default namespace, `ns/name` elsewhere (no allocation for
/// the default namespace).
pub fn qualified<'a>(namespace: &str, name: &'a str) -> std::borrow::Cow<'a, str> {
    if namespace == DEFAULT_NAMESPACE {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("{namespace}/{name}"))
    }
}

/// One version of a function, as `GET /functions/{name}/versions` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunctionVersion {
    pub version: u64,
    pub config: FunctionConfig,
    /// Content address of the version's code archive.
    pub code_sha256: String,
    /// Published: frozen, never pruned, callable as `name:version`.
    #[serde(default)]
    pub published: bool,
    /// The description given when it was published.
    #[serde(default)]
    pub description: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Which version of a function a call runs: the latest, a published
/// version, or an alias (`$LATEST`, `7`, `prod`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Latest,
    Version(u64),
    Alias(String),
}

impl Qualifier {
    pub fn parse(s: &str) -> Result<Self, IgnisError> {
        if s == "$LATEST" {
            return Ok(Qualifier::Latest);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .ok()
                .filter(|v| *v > 0)
                .map(Qualifier::Version)
                .ok_or_else(|| IgnisError::invalid(format!("`{s}` is not a version number")));
        }
        validate_alias_name(s)?;
        Ok(Qualifier::Alias(s.to_string()))
    }
}

impl std::fmt::Display for Qualifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("$LATEST"),
            Qualifier::Version(v) => write!(f, "{v}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

/// An alias name: 1 to 128 of `A-Z a-z 0-9 - _`, not only digits (that
/// would read as a version), not `$LATEST`.
pub fn validate_alias_name(name: &str) -> Result<(), IgnisError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(IgnisError::invalid(format!(
            "invalid alias name {name:?}: 1 to 128 of A-Z, a-z, 0-9, `-`, `_`, not only digits"
        )))
    }
}

/// A name for a published version, optionally sending a share of the calls
/// to other versions (a canary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alias {
    pub name: String,
    /// The version most calls run.
    pub version: u64,
    /// Other versions and the share of calls each runs (each in (0, 1),
    /// together under 1): `{"4": 0.1}` sends 10% to version 4.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub weights: BTreeMap<u64, f64>,
    #[serde(default)]
    pub description: String,
    /// Changes with every update.
    pub revision_id: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Alias {
    /// The version for a call, given `r` uniform in [0, 1).
    pub fn pick(&self, r: f64) -> u64 {
        let mut acc = 0.0;
        for (v, w) in &self.weights {
            acc += w;
            if r < acc {
                return *v;
            }
        }
        self.version
    }
}

/// Checks the routing of an alias: the weights of other versions.
pub fn validate_weights(version: u64, weights: &BTreeMap<u64, f64>) -> Result<(), IgnisError> {
    let mut total = 0.0;
    for (v, w) in weights {
        if *v == version {
            return Err(IgnisError::invalid(format!(
                "version {v} is the alias's own version: give only the others a weight"
            )));
        }
        if !w.is_finite() || *w <= 0.0 || *w >= 1.0 {
            return Err(IgnisError::invalid(format!(
                "the weight of version {v} must be between 0 and 1 (exclusive), not {w}"
            )));
        }
        total += w;
    }
    if total >= 1.0 {
        return Err(IgnisError::invalid(format!(
            "the weights add up to {total}: they must leave a share for version {version}"
        )));
    }
    if weights.len() > 1 {
        return Err(IgnisError::invalid(
            "an alias can route to one other version at most",
        ));
    }
    Ok(())
}

/// A saved test event of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestEvent {
    pub name: String,
    /// The event, any JSON value.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    pub updated_at_ms: i64,
}

/// A partial configuration: every field optional. Creating a function applies
/// a patch to the defaults; updating one applies it to the current config.
///
/// Serialized, an absent field is left out and a removed route is `null`:
/// what the CLI sends is what the server parses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionPatch {
    /// `python3` or `nodejs` (required to create a function).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// `FILE.FUNCTION`, e.g. `main.handler` (required to create a function).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^(([A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.\\.[A-Za-z0-9_.-]+)/)*([A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.\\.[A-Za-z0-9_.-]+)\\.[A-Za-z_$][A-Za-z0-9_$]*$",
        max_length = 256
    )]
    pub handler: Option<String>,
    /// `null` removes the route.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, pattern = "^(/([A-Za-z0-9_~-][A-Za-z0-9._~-]*|\\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\\.\\.[A-Za-z0-9._~-]+))+$", max_length = 256)]
    pub route: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_auth: Option<HttpAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 100, maximum = 900000)]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 64, maximum = 4096)]
    pub memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.05, maximum = 16.0)]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub min_warm: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 64)]
    pub batch_max_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1000)]
    pub batch_max_wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_concurrent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 900000)]
    pub queue_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 86400)]
    pub keep_alive_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub description: Option<String>,
    /// `null` removes it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub role: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub async_max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 21600)]
    pub async_max_age_s: Option<u64>,
    /// `null` makes the trigger call the latest version again.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub http_qualifier: Option<Option<String>>,
}

/// Function code: inline source files, or a zip archive in base64. Exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    /// File path to UTF-8 content, e.g. `{"main.py": "def handler(event, context): ..."}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// A zip archive, base64-encoded (standard alphabet, with padding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_base64: Option<String>,
}

/// Body of `POST /api/v1/functions`: `name`, `code`, `runtime`, `handler`,
/// and any configuration field (the rest take defaults). This type is what
/// the server parses the body into, and what the CLI sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateFunctionRequest {
    pub name: String,
    pub code: CodeInput,
    #[serde(flatten)]
    pub config: FunctionPatch,
}

/// Body of `PUT /api/v1/functions/{name}`: new code and/or any configuration
/// fields; the fields left out keep their values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateFunctionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeInput>,
    #[serde(flatten)]
    pub config: FunctionPatch,
}

/// The fields of a create or update body beside the configuration, taken
/// out of the object; the rest must be configuration fields (serde's
/// `flatten` cannot reject unknown fields, so the split is done here).
fn split_request<E: serde::de::Error>(
    mut obj: serde_json::Map<String, serde_json::Value>,
    with_name: bool,
) -> Result<(Option<String>, Option<CodeInput>, FunctionPatch), E> {
    use serde_json::Value;
    let name = match obj.remove("name") {
        Some(Value::String(s)) if with_name => Some(s),
        Some(_) if with_name => return Err(E::custom("`name` must be a string")),
        None if with_name => return Err(E::custom("`name` is required")),
        Some(_) => {
            return Err(E::custom(
                "`name` cannot be changed (it is the function's path)",
            ))
        }
        None => None,
    };
    let code = match obj.remove("code") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<CodeInput>(v)
                .map_err(|e| E::custom(format!("invalid `code`: {e}")))?,
        ),
    };
    let patch = serde_json::from_value::<FunctionPatch>(Value::Object(obj))
        .map_err(|e| E::custom(format!("invalid function configuration: {e}")))?;
    Ok((name, code, patch))
}

impl<'de> Deserialize<'de> for CreateFunctionRequest {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let obj = serde_json::Map::deserialize(de)?;
        let (name, code, config) = split_request(obj, true)?;
        Ok(Self {
            name: name.unwrap_or_default(),
            code: code.ok_or_else(|| serde::de::Error::custom("`code` is required"))?,
            config,
        })
    }
}

impl<'de> Deserialize<'de> for UpdateFunctionRequest {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let obj = serde_json::Map::deserialize(de)?;
        let (_, code, config) = split_request(obj, false)?;
        Ok(Self { code, config })
    }
}

/// The schema of a create or update body: one object, the configuration's
/// properties beside `name` and `code`, unknown fields refused, as
/// [`split_request`] parses it. (A derived `allOf` of the patch, which
/// refuses every property it does not list, and of `{name, code}` would
/// allow no body at all.)
fn request_schema(create: bool) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr, Schema};
    use utoipa::PartialSchema;
    let mut object = match FunctionPatch::schema() {
        RefOr::T(Schema::Object(o)) => o,
        _ => Object::new(),
    };
    let code = Ref::from_schema_name("CodeInput");
    if create {
        object.description = Some(
            "Body of `POST /api/v1/functions`: `name`, `code`, `runtime`, `handler`, and any \
             configuration field (the rest take defaults)."
                .to_string(),
        );
        object.properties.insert(
            "name".to_string(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(NAME_PATTERN))
                .description(Some("The function's name, unique in its namespace."))
                .into(),
        );
        object.properties.insert("code".to_string(), code.into());
        // Required to create, so not `null` either.
        object.properties.insert(
            "runtime".to_string(),
            Ref::from_schema_name("Runtime").into(),
        );
        object.properties.insert(
            "handler".to_string(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(HANDLER_PATTERN))
                .max_length(Some(limits::HANDLER_MAX_LEN))
                .description(Some("`FILE.FUNCTION`, e.g. `main.handler`."))
                .into(),
        );
        object.required = ["name", "code", "runtime", "handler"]
            .map(String::from)
            .to_vec();
    } else {
        object.description = Some(
            "Body of `PUT /api/v1/functions/{name}`: new code and/or any configuration \
             fields; the fields left out keep their values."
                .to_string(),
        );
        object.properties.insert(
            "code".to_string(),
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(code)
                .into(),
        );
    }
    RefOr::T(Schema::Object(object))
}

impl utoipa::PartialSchema for CreateFunctionRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        request_schema(true)
    }
}

impl ToSchema for CreateFunctionRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("CodeInput".to_string(), CodeInput::schema()));
        <FunctionPatch as ToSchema>::schemas(schemas);
    }
}

impl utoipa::PartialSchema for UpdateFunctionRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        request_schema(false)
    }
}

impl ToSchema for UpdateFunctionRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CreateFunctionRequest as ToSchema>::schemas(schemas);
    }
}

/// Distinguishes a field set to `null` (`Some(None)`) from an absent one (`None`).
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

impl FunctionPatch {
    /// Builds a full configuration for a new function. `runtime` and `handler`
    /// are required; everything else has a default.
    pub fn into_new_config(self) -> Result<FunctionConfig, IgnisError> {
        let runtime = self
            .runtime
            .ok_or_else(|| IgnisError::invalid("`runtime` is required (`python3` or `nodejs`)"))?;
        let handler = self
            .handler
            .clone()
            .ok_or_else(|| IgnisError::invalid("`handler` is required, e.g. `main.handler`"))?;
        let base = FunctionConfig {
            runtime,
            handler,
            route: None,
            http_auth: HttpAuth::default(),
            backend: BackendKind::default(),
            timeout_ms: limits::DEFAULT_TIMEOUT_MS,
            memory_mb: limits::DEFAULT_MEMORY_MB,
            cpus: limits::DEFAULT_CPUS,
            env: BTreeMap::new(),
            min_warm: limits::DEFAULT_MIN_WARM,
            max_concurrency: limits::DEFAULT_MAX_CONCURRENCY,
            batch_max_size: limits::DEFAULT_BATCH_MAX_SIZE,
            batch_max_wait_ms: limits::DEFAULT_BATCH_MAX_WAIT_MS,
            batch_concurrent: false,
            queue_timeout_ms: limits::DEFAULT_QUEUE_TIMEOUT_MS,
            keep_alive_s: limits::DEFAULT_KEEP_ALIVE_S,
            description: String::new(),
            role: None,
            async_max_retries: limits::DEFAULT_ASYNC_MAX_RETRIES,
            async_max_age_s: limits::DEFAULT_ASYNC_MAX_AGE_S,
            http_qualifier: None,
        };
        self.apply(&base)
    }

    /// Applies the patch to `base` and validates the result.
    pub fn apply(self, base: &FunctionConfig) -> Result<FunctionConfig, IgnisError> {
        let mut c = base.clone();
        if let Some(v) = self.runtime {
            c.runtime = v;
        }
        if let Some(v) = self.handler {
            c.handler = v;
        }
        if let Some(v) = self.route {
            c.route = v;
        }
        if let Some(v) = self.http_auth {
            c.http_auth = v;
        }
        if let Some(v) = self.backend {
            c.backend = v;
        }
        if let Some(v) = self.timeout_ms {
            c.timeout_ms = v;
        }
        if let Some(v) = self.memory_mb {
            c.memory_mb = v;
        }
        if let Some(v) = self.cpus {
            c.cpus = v;
        }
        if let Some(v) = self.env {
            c.env = v;
        }
        if let Some(v) = self.min_warm {
            c.min_warm = v;
        }
        if let Some(v) = self.max_concurrency {
            c.max_concurrency = v;
        }
        if let Some(v) = self.batch_max_size {
            c.batch_max_size = v;
        }
        if let Some(v) = self.batch_max_wait_ms {
            c.batch_max_wait_ms = v;
        }
        if let Some(v) = self.batch_concurrent {
            c.batch_concurrent = v;
        }
        if let Some(v) = self.queue_timeout_ms {
            c.queue_timeout_ms = v;
        }
        if let Some(v) = self.keep_alive_s {
            c.keep_alive_s = v;
        }
        if let Some(v) = self.description {
            c.description = v;
        }
        if let Some(v) = self.role {
            c.role = v;
        }
        if let Some(v) = self.async_max_retries {
            c.async_max_retries = v;
        }
        if let Some(v) = self.async_max_age_s {
            c.async_max_age_s = v;
        }
        if let Some(v) = self.http_qualifier {
            c.http_qualifier = v;
        }
        c.validate()?;
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        *self == FunctionPatch::default()
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), IgnisError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(IgnisError::invalid(format!(
            "`{field}` is {value}, must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}

impl FunctionConfig {
    /// Checks every field against the model's rules.
    pub fn validate(&self) -> Result<(), IgnisError> {
        validate_handler(&self.handler)?;
        if let Some(route) = &self.route {
            validate_route(route)?;
        }
        check_range("timeout_ms", self.timeout_ms, limits::TIMEOUT_MS)?;
        check_range("memory_mb", self.memory_mb, limits::MEMORY_MB)?;
        if !self.cpus.is_finite() {
            return Err(IgnisError::invalid("`cpus` must be a number"));
        }
        check_range("cpus", self.cpus, limits::CPUS)?;
        validate_env(&self.env)?;
        check_range("min_warm", self.min_warm, limits::MIN_WARM)?;
        check_range(
            "max_concurrency",
            self.max_concurrency,
            limits::MAX_CONCURRENCY,
        )?;
        if self.min_warm > self.max_concurrency {
            return Err(IgnisError::invalid(format!(
                "`min_warm` ({}) cannot exceed `max_concurrency` ({})",
                self.min_warm, self.max_concurrency
            )));
        }
        check_range(
            "batch_max_size",
            self.batch_max_size,
            limits::BATCH_MAX_SIZE,
        )?;
        check_range(
            "batch_max_wait_ms",
            self.batch_max_wait_ms,
            limits::BATCH_MAX_WAIT_MS,
        )?;
        check_range(
            "queue_timeout_ms",
            self.queue_timeout_ms,
            limits::QUEUE_TIMEOUT_MS,
        )?;
        check_range("keep_alive_s", self.keep_alive_s, limits::KEEP_ALIVE_S)?;
        if self.description.chars().count() > limits::DESCRIPTION_CHARS {
            return Err(IgnisError::invalid(format!(
                "`description` is over {} characters",
                limits::DESCRIPTION_CHARS
            )));
        }
        if let Some(role) = &self.role {
            if role.is_empty() || role.len() > 2048 || role.chars().any(char::is_control) {
                return Err(IgnisError::invalid(
                    "`role` must be 1 to 2048 printable characters (an IAM role ARN)",
                ));
            }
        }
        check_range(
            "async_max_retries",
            self.async_max_retries,
            limits::ASYNC_MAX_RETRIES,
        )?;
        check_range(
            "async_max_age_s",
            self.async_max_age_s,
            limits::ASYNC_MAX_AGE_S,
        )?;
        if let Some(q) = &self.http_qualifier {
            Qualifier::parse(q)?;
        }
        Ok(())
    }

    /// The handler's module path and function name: `src/app.run` gives
    /// (`src/app`, `run`).
    pub fn handler_parts(&self) -> (&str, &str) {
        split_handler(&self.handler).unwrap_or((&self.handler, ""))
    }

    /// Files that may hold the handler module, in lookup order.
    pub fn handler_files(&self) -> Vec<String> {
        let (module, _) = self.handler_parts();
        self.runtime
            .extensions()
            .iter()
            .map(|ext| format!("{module}.{ext}"))
            .collect()
    }
}

fn split_handler(handler: &str) -> Option<(&str, &str)> {
    let (module, func) = handler.rsplit_once('.')?;
    Some((module, func))
}

/// A namespace name: the same rules as a function name.
pub fn validate_namespace(ns: &str) -> Result<(), IgnisError> {
    validate_name(ns).map_err(|_| {
        IgnisError::invalid(format!(
            "invalid namespace {ns:?}: use 1 to 64 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit"
        ))
    })
}

/// What [`validate_name`] accepts, for the OpenAPI document (function and
/// namespace names).
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// What [`validate_alias_name`] accepts, with a `maxLength` of 128: `[A-Za-z0-9_-]`,
/// at least one of them not a digit.
pub const ALIAS_PATTERN: &str = "^[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*$";

/// What [`validate_handler`] accepts, with a `maxLength` of 256.
pub const HANDLER_PATTERN: &str = "^(([A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.\\.[A-Za-z0-9_.-]+)/)*([A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\\.\\.[A-Za-z0-9_.-]+)\\.[A-Za-z_$][A-Za-z0-9_$]*$";

/// `name`: `[a-z0-9][a-z0-9-_]{0,63}`.
pub fn validate_name(name: &str) -> Result<(), IgnisError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IgnisError::invalid(format!(
            "invalid function name {name:?}: use 1 to 64 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit"
        )))
    }
}

/// `route`: an absolute path of one or more segments of `[A-Za-z0-9._~-]`,
/// no `.` or `..` segment, no trailing slash.
pub fn validate_route(route: &str) -> Result<(), IgnisError> {
    let bad = |why: &str| {
        Err(IgnisError::invalid(format!(
            "invalid route {route:?}: {why}"
        )))
    };
    if !route.starts_with('/') {
        return bad("it must start with `/`");
    }
    if route.len() > limits::ROUTE_MAX_LEN {
        return bad("it is longer than 256 characters");
    }
    for segment in route[1..].split('/') {
        if segment.is_empty() {
            return bad("empty path segment (double or trailing `/`, or `/` alone)");
        }
        if segment == "." || segment == ".." {
            return bad("`.` and `..` segments are not allowed");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
        {
            return bad("segments may only hold A-Z, a-z, 0-9, `.`, `_`, `~` and `-`");
        }
    }
    Ok(())
}

/// `handler`: `PATH.FUNC`, a relative module path and an identifier.
pub fn validate_handler(handler: &str) -> Result<(), IgnisError> {
    let bad = |why: &str| {
        Err(IgnisError::invalid(format!(
            "invalid handler {handler:?}: {why}; expected FILE.FUNCTION such as `main.handler`"
        )))
    };
    if handler.len() > limits::HANDLER_MAX_LEN {
        return bad("longer than 256 characters");
    }
    let Some((module, func)) = split_handler(handler) else {
        return bad("no `.` between file and function");
    };
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == '$';
    let ident_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    if !func.starts_with(ident_start) || !func.chars().all(ident_rest) {
        return bad("the function name is not an identifier");
    }
    if module.is_empty() || module.starts_with('/') {
        return bad("the file part must be a relative path");
    }
    for segment in module.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return bad("the file part has an empty, `.` or `..` segment");
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return bad("the file part may only hold A-Z, a-z, 0-9, `_`, `-`, `.` and `/`");
        }
    }
    if module.rsplit('/').next().map_or(0, str::len) > limits::HANDLER_FILE_MAX_LEN {
        return bad("the file name is longer than 251 characters");
    }
    Ok(())
}

fn validate_env(env: &BTreeMap<String, String>) -> Result<(), IgnisError> {
    let mut total = 0;
    for (k, v) in env {
        let valid_key = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(IgnisError::invalid(format!(
                "invalid environment variable name {k:?}: use A-Z, a-z, 0-9 and `_`, not starting with a digit"
            )));
        }
        if k.starts_with("IGNIS_") || k.starts_with("AWS_LAMBDA_") {
            return Err(IgnisError::invalid(format!(
                "environment variable {k:?} is reserved (prefixes IGNIS_ and AWS_LAMBDA_ are set by ignis)"
            )));
        }
        if v.contains('\0') {
            return Err(IgnisError::invalid(format!(
                "environment variable {k:?} contains a NUL byte"
            )));
        }
        total += k.len() + v.len();
    }
    if total > limits::ENV_TOTAL_BYTES {
        return Err(IgnisError::invalid(format!(
            "environment variables take {total} bytes, the limit is {} bytes",
            limits::ENV_TOTAL_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "0", "hello-world_2", &"a".repeat(64)] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a.b",
            "a/b",
            "é",
            &"a".repeat(65),
            "a b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn routes() {
        for ok in ["/hello", "/a/b-c/d.e", "/v1/~user"] {
            validate_route(ok).unwrap();
        }
        for bad in [
            "", "/", "hello", "/a/", "//a", "/a/../b", "/./a", "/a b", "/a?b", "/a%20",
        ] {
            assert!(validate_route(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn handlers() {
        for ok in ["main.handler", "src/app.run", "my-mod.$fn", "a.b.c"] {
            validate_handler(ok).unwrap();
        }
        for bad in [
            "main",
            ".handler",
            "main.",
            "/abs.h",
            "../x.h",
            "a//b.h",
            "m.1x",
            "m.a-b",
            // `x….mjs` would be over 255 bytes, more than a file name can be.
            &format!("{}.h", "x".repeat(252)),
        ] {
            assert!(validate_handler(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_and_ranges() {
        let patch = FunctionPatch {
            runtime: Some(Runtime::Python3),
            handler: Some("main.handler".into()),
            ..Default::default()
        };
        let c = patch.clone().into_new_config().unwrap();
        assert_eq!(c.timeout_ms, 3000);
        assert_eq!(c.memory_mb, 128);
        assert_eq!(c.backend, BackendKind::Docker);
        let too_big = FunctionPatch {
            memory_mb: Some(8192),
            ..patch.clone()
        };
        assert!(too_big.into_new_config().is_err());
        let nan = FunctionPatch {
            cpus: Some(f64::NAN),
            ..patch
        };
        assert!(nan.into_new_config().is_err());
    }

    #[test]
    fn env_limits() {
        let mut env = BTreeMap::new();
        env.insert("A".into(), "x".repeat(4095));
        assert!(validate_env(&env).is_ok());
        env.insert("B".into(), "x".into());
        assert!(validate_env(&env).is_err());
        let reserved: BTreeMap<_, _> = [("IGNIS_X".to_string(), String::new())].into();
        assert!(validate_env(&reserved).is_err());
    }

    #[test]
    fn route_can_be_cleared() {
        let p: FunctionPatch = serde_json::from_str(r#"{"route": null}"#).unwrap();
        assert_eq!(p.route, Some(None));
        let p: FunctionPatch = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(p.route, None);
        assert!(serde_json::from_str::<FunctionPatch>(r#"{"bogus": 1}"#).is_err());
    }
}
