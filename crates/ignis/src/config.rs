//! One configuration schema for `ignis serve`.
//!
//! Every setting is declared once, in [`settings!`] below: its type, its
//! default, its environment variable and its documentation. From that one
//! list come [`Settings`] (the resolved values, with their defaults in one
//! `Default`) and [`SettingsLayer`] (the same fields, all optional: what one
//! source says), which is both the `[serve]` table of `ignis.toml` and the
//! flags and environment variables of `ignis serve`. Sources are applied
//! lowest first: defaults, then the file, then the environment, then flags
//! (clap reads a flag before its environment variable).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// A type that can be a setting: what a source gives for it, and how that
/// replaces the current value. For most types a source gives the value
/// itself; for an optional setting (`Option<T>`) it gives a `T`.
pub trait Setting {
    type Layer;
    fn set(&mut self, value: Self::Layer);
}

macro_rules! plain_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            type Layer = $t;
            fn set(&mut self, value: $t) {
                *self = value;
            }
        }
    )*};
}
plain_setting!(
    u32,
    u64,
    usize,
    bool,
    String,
    PathBuf,
    Enable,
    AuthMode,
    MicrovmAccel,
    Snapshots
);

impl<T> Setting for Option<T> {
    type Layer = T;
    fn set(&mut self, value: T) {
        *self = Some(value);
    }
}

/// Declares the settings. Per setting: documentation (it is the flag's help
/// too), `name: Type = default`, the environment variable, the flag's value
/// name, and optionally more clap attributes for the flag.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr,
            env $env:literal, value $value:literal $(, arg($($arg:tt)*))?;
    )*) => {
        /// The effective configuration of `ignis serve`.
        #[derive(Debug, Clone, Serialize)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        /// What one source (the file, or the flags and environment) sets.
        #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SettingsLayer {
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env, value_name = $value $(, $($arg)*)?)]
                #[serde(default)]
                pub $name: Option<<$ty as Setting>::Layer>,
            )*
        }

        impl Settings {
            /// Lets what `layer` sets replace the current values.
            pub fn apply(&mut self, layer: SettingsLayer) {
                $( if let Some(v) = layer.$name { self.$name.set(v); } )*
            }
        }
    };
}

settings! {
    /// Address to listen on, HOST:PORT (port 0 picks a free port).
    listen: String = "127.0.0.1:8080".into(), env "IGNIS_LISTEN", value "ADDR";
    /// Where functions, code, keys and records are kept.
    data_dir: PathBuf = "ignis-data".into(), env "IGNIS_DATA_DIR", value "DIR";
    /// Where built images (root filesystem, microVM disk, snapshots) are
    /// cached, shared by every data directory (default:
    /// /var/cache/ignis/images, or ~/.cache/ignis/images).
    image_dir: PathBuf = default_image_dir(), env "IGNIS_IMAGE_DIR", value "DIR";
    /// Directory for the sandboxes' channel sockets, a short path (default:
    /// /tmp/ignis-<id of the data directory>).
    run_dir: Option<PathBuf> = None, env "IGNIS_RUN_DIR", value "DIR";
    /// Sum of sandbox memory the engine may reserve, MiB (default: half the host's).
    memory_budget_mb: u64 = default_memory_budget_mb(), env "IGNIS_MEMORY_BUDGET_MB", value "MIB";
    /// Largest code archive, MiB.
    max_code_mb: u64 = 50, env "IGNIS_MAX_CODE_MB", value "MIB";
    /// Seconds to let calls in flight finish on shutdown.
    shutdown_grace_s: u64 = 30, env "IGNIS_SHUTDOWN_GRACE_S", value "SECONDS";
    /// Calls queued per function before new ones are refused (429).
    queue_capacity: usize = 1000, env "IGNIS_QUEUE_CAPACITY", value "N";
    /// Stem cells kept booted per (runtime, backend, memory) at first (0: none).
    stem_initial: usize = 1, env "IGNIS_STEM_INITIAL", value "N";
    /// Most stem cells per (runtime, backend, memory); pools adapt between the
    /// two (raised to stem_initial when lower).
    stem_max: usize = 4, env "IGNIS_STEM_MAX", value "N";
    /// Use the Docker backend (off: the management API only).
    docker: bool = true, env "IGNIS_DOCKER", value "BOOL", arg(num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new());
    /// The Docker engine's socket.
    docker_socket: PathBuf = "/var/run/docker.sock".into(), env "IGNIS_DOCKER_SOCKET", value "PATH";
    /// Use the microVM backend: `auto` (when QEMU and a kernel are
    /// installed), `on` or `off`.
    microvm: Enable = Enable::Auto, env "IGNIS_MICROVM", value "MODE";
    /// The QEMU binary (looked for, and run, at this path).
    qemu: PathBuf = "/usr/bin/qemu-system-x86_64".into(), env "IGNIS_QEMU", value "PATH";
    /// microVM acceleration: `auto` (probe KVM, fall back to TCG) or `tcg`
    /// (skip the probe).
    microvm_accel: MicrovmAccel = MicrovmAccel::Auto, env "IGNIS_MICROVM_ACCEL", value "ACCEL";
    /// How microVMs start: `mapped` snapshots, `streamed` snapshots, or `off`
    /// (every sandbox boots).
    microvm_snapshots: Snapshots = Snapshots::Mapped, env "IGNIS_MICROVM_SNAPSHOTS", value "MODE";
    /// Record calls: metrics and invocation records (off only to measure their cost).
    record: bool = true, env "IGNIS_RECORD", value "BOOL", arg(num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new());
    /// Records queued for the writer before new ones are dropped (and counted).
    record_capacity: usize = 10_000, env "IGNIS_RECORD_CAPACITY", value "N";
    /// Time each stage of a call on the server and expose the sums on /metrics (`ignis_call_stage_*`; for profiling the warm path).
    stage_timings: bool = false, env "IGNIS_STAGE_TIMINGS", value "BOOL", arg(num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new());
    /// Days of per-minute metric rollups kept.
    rollup_days: u64 = 7, env "IGNIS_ROLLUP_DAYS", value "DAYS";
    /// Hours of invocation records kept.
    invocation_hours: u64 = 24, env "IGNIS_INVOCATION_HOURS", value "HOURS";
    /// Most invocation records kept.
    max_invocations: u64 = 1_000_000, env "IGNIS_MAX_INVOCATIONS", value "N";
    /// Authentication: `on`, or `off` (every request acts as an admin; only
    /// allowed when listening on loopback, and said loudly).
    auth: AuthMode = AuthMode::On, env "IGNIS_AUTH", value "MODE";
    /// The first admin key, instead of a generated one (registered if new).
    admin_key: Option<Redacted> = None, env "IGNIS_ADMIN_KEY", value "KEY", arg(hide_env_values = true);
    /// Serve `/metrics` without credentials (for Prometheus setups that scrape so).
    metrics_public: bool = false, env "IGNIS_METRICS_PUBLIC", value "BOOL", arg(num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new());
    /// Failed authentications allowed at once per client address.
    auth_fail_burst: u32 = 20, env "IGNIS_AUTH_FAIL_BURST", value "N";
    /// Failed authentications allowed per minute and address after the burst.
    auth_fail_per_minute: u32 = 20, env "IGNIS_AUTH_FAIL_PER_MINUTE", value "N";
    /// Serve the web console from this directory (a `web/dist` build) instead
    /// of the one built into the binary.
    console_dir: Option<PathBuf> = None, env "IGNIS_CONSOLE_DIR", value "DIR";
    /// Asynchronous invocations run at once (over every function).
    async_workers: usize = 16, env "IGNIS_ASYNC_WORKERS", value "N";
    /// Asynchronous events waiting or running per function before new ones
    /// are refused (429).
    async_queue_per_function: u64 = 10_000, env "IGNIS_ASYNC_QUEUE_PER_FUNCTION", value "N";
    /// Asynchronous events waiting or running in total before new ones are
    /// refused (429).
    async_queue_total: u64 = 100_000, env "IGNIS_ASYNC_QUEUE_TOTAL", value "N";
    /// Wait before the first retry of a failed asynchronous event, ms (each
    /// next retry waits twice as long).
    async_retry_base_ms: u64 = 1_000, env "IGNIS_ASYNC_RETRY_BASE_MS", value "MS";
    /// The region in the Lambda API's ARNs (requests signed for any region
    /// are accepted).
    aws_region: String = "us-east-1".into(), env "IGNIS_AWS_REGION", value "REGION";
    /// The account id in the Lambda API's ARNs (12 digits).
    aws_account: String = "000000000000".into(), env "IGNIS_AWS_ACCOUNT", value "ID";
}

/// On, off, or decided by what the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Enable {
    Auto,
    #[value(alias = "true")]
    On,
    #[value(alias = "false")]
    Off,
}

impl<'de> Deserialize<'de> for Enable {
    /// `"auto"`, `"on"`, `"off"`, or a boolean (`microvm = false`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Enable::On),
            Raw::Bool(false) => Ok(Enable::Off),
            Raw::Word(w) => match w.as_str() {
                "auto" => Ok(Enable::Auto),
                "on" | "true" => Ok(Enable::On),
                "off" | "false" => Ok(Enable::Off),
                other => Err(serde::de::Error::custom(format!(
                    "expected `auto`, `on` or `off`, not `{other}`"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MicrovmAccel {
    /// Probe KVM once (the verdict is cached), fall back to TCG.
    Auto,
    /// Skip the probe: QEMU's TCG (software emulation).
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Snapshots {
    /// Guest RAM in a file, mapped copy-on-write by every clone.
    Mapped,
    /// Guest RAM in the migration stream, copied into every clone.
    Streamed,
    /// No snapshots: every microVM boots.
    Off,
}

impl Snapshots {
    pub fn mode(self) -> Option<ignis_microvm::SnapshotMode> {
        match self {
            Snapshots::Mapped => Some(ignis_microvm::SnapshotMode::Mapped),
            Snapshots::Streamed => Some(ignis_microvm::SnapshotMode::Streamed),
            Snapshots::Off => None,
        }
    }
}

/// A secret setting: shown as `<redacted>` by `--print-config` and in logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_string()))
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Redacted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// `ignis.toml`. Every field is optional; unknown fields are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Settings of `ignis serve` (and `ignis images build`).
    #[serde(default)]
    pub serve: SettingsLayer,
    /// Server URL for client commands.
    pub server: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or `./ignis.toml` when no path is given and it exists.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("ignis.toml"), false),
        };
        if !path.exists() {
            if required {
                bail!("config file {} does not exist", path.display());
            }
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Settings resolved for a server: every value decided.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub settings: Settings,
    /// The socket directory (`run_dir`, or the default for this data directory).
    pub run_dir: PathBuf,
    /// Whether to start the microVM backend (`microvm`, with `auto` decided).
    pub microvm: bool,
    /// Label value marking this server's sandboxes.
    pub instance: String,
}

impl std::ops::Deref for ServeConfig {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Settings {
    /// Defaults, then each layer in turn (lowest first).
    pub fn layered(layers: impl IntoIterator<Item = SettingsLayer>) -> Self {
        let mut settings = Settings::default();
        for layer in layers {
            settings.apply(layer);
        }
        settings.stem_max = settings.stem_max.max(settings.stem_initial);
        settings
    }

    /// Decides what is left to the host, and checks every value.
    pub fn resolve(mut self) -> anyhow::Result<ServeConfig> {
        let instance = instance_id(&self.data_dir);
        let run_dir = self
            .run_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/ignis-{instance}")));
        self.run_dir = Some(run_dir.clone());
        let microvm = match self.microvm {
            Enable::On => true,
            Enable::Off => false,
            Enable::Auto => {
                self.qemu.exists() && ignis_microvm::image::installed_kernel().is_some()
            }
        };
        self.validate(&run_dir)?;
        Ok(ServeConfig {
            settings: self,
            run_dir,
            microvm,
            instance,
        })
    }

    fn validate(&self, run_dir: &Path) -> anyhow::Result<()> {
        if self.memory_budget_mb < 64 {
            bail!("memory_budget_mb must be at least 64");
        }
        if !(1..=1024).contains(&self.max_code_mb) {
            bail!("max_code_mb must be between 1 and 1024");
        }
        if self.stem_initial > self.stem_max || self.stem_max > 64 {
            bail!("stem cells: need stem_initial <= stem_max <= 64");
        }
        if self.record_capacity == 0 || self.rollup_days == 0 || self.invocation_hours == 0 {
            bail!("record_capacity, rollup_days and invocation_hours must be at least 1");
        }
        if self.queue_capacity == 0 {
            bail!("queue_capacity must be at least 1");
        }
        if self.auth == AuthMode::Off && !listens_on_loopback(&self.listen) {
            bail!(
                "authentication can be off only when listening on loopback (127.0.0.1, ::1, localhost), not on {}",
                self.listen
            );
        }
        if self.auth_fail_burst == 0 || self.auth_fail_per_minute == 0 {
            bail!("auth_fail_burst and auth_fail_per_minute must be at least 1");
        }
        if !(1..=1024).contains(&self.async_workers) {
            bail!("async_workers must be between 1 and 1024");
        }
        if self.async_queue_per_function == 0 || self.async_queue_total == 0 {
            bail!("async_queue_per_function and async_queue_total must be at least 1");
        }
        if !(1..=3_600_000).contains(&self.async_retry_base_ms) {
            bail!("async_retry_base_ms must be between 1 and 3600000");
        }
        if self.aws_account.len() != 12 || !self.aws_account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("aws_account must be 12 digits");
        }
        if self.aws_region.is_empty()
            || !self
                .aws_region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("aws_region must be a region name such as us-east-1");
        }
        // sun_path holds 108 bytes; leave room for "/sb-<uuid>/channel.sock".
        if run_dir.as_os_str().len() > 50 {
            bail!(
                "run_dir {} is too long for Unix socket paths (50 bytes at most)",
                run_dir.display()
            );
        }
        Ok(())
    }

    /// The effective configuration as an `ignis.toml` (secrets redacted).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct File<'a> {
            serve: &'a Settings,
        }
        Ok(toml::to_string(&File { serve: self })?)
    }
}

/// Whether `listen` (`HOST:PORT`) is a loopback address.
pub fn listens_on_loopback(listen: &str) -> bool {
    let host = listen
        .rsplit_once(':')
        .map_or(listen, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The machine-wide cache of built images (root filesystem, Docker image
/// tarball, microVM disk and snapshots), shared by every data directory:
/// `/var/cache/ignis/images` where it can be written (root), else
/// `$XDG_CACHE_HOME/ignis/images` (`~/.cache/ignis/images`).
pub fn default_image_dir() -> PathBuf {
    let system = PathBuf::from("/var/cache/ignis/images");
    if writable_dir(&system) {
        return system;
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ignis").join("images")
}

/// Whether `dir` exists (or can be created) and a file can be made in it.
fn writable_dir(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Half of the host's memory, in MiB: the default sandbox memory budget.
pub fn default_memory_budget_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| ignis_core::proc_kib(&s, "MemTotal:"))
        .unwrap_or(4 * 1024 * 1024);
    total_kb / 1024 / 2
}

/// A short, stable id of a data directory: it names this server's run
/// directory and labels its sandboxes.
pub fn instance_id(data_dir: &Path) -> String {
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    ignis_package::sha256_hex(canonical.to_string_lossy().as_bytes())[..10].to_string()
}
