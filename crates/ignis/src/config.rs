//! One configuration schema for `ignis serve`, filled from (highest first)
//! command-line flags, environment variables, `ignis.toml`, and defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// `ignis.toml`. Every field is optional; unknown fields are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub serve: ServeFile,
    /// Server URL for client commands.
    pub server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub image_dir: Option<PathBuf>,
    pub docker_socket: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub memory_budget_mb: Option<u64>,
    pub max_code_mb: Option<u64>,
    pub shutdown_grace_s: Option<u64>,
    pub queue_capacity: Option<usize>,
    pub stem_initial: Option<usize>,
    pub stem_max: Option<usize>,
    pub docker: Option<bool>,
    /// Enable the microVM backend (default: when QEMU and a kernel are installed).
    pub microvm: Option<bool>,
    /// `auto` (probe KVM, fall back to TCG) or `tcg`.
    pub microvm_accel: Option<String>,
    /// How microVMs start: `mapped` snapshots (default), `streamed`, or `off` (boot).
    pub microvm_snapshots: Option<String>,
    /// Record calls (metrics and invocation records); off only to measure its cost.
    pub record: Option<bool>,
    /// `"on"` (default) or `"off"`: no authentication, loopback only.
    pub auth: Option<AuthMode>,
    /// Serve `/metrics` without credentials.
    pub metrics_public: Option<bool>,
    /// Failed authentications allowed at once per client address.
    pub auth_fail_burst: Option<u32>,
    /// ... and per minute after that.
    pub auth_fail_per_minute: Option<u32>,
    /// Records queued for the writer before new ones are dropped (and counted).
    pub record_capacity: Option<usize>,
    /// Days of per-minute rollups kept.
    pub rollup_days: Option<u64>,
    /// Hours of invocation records kept.
    pub invocation_hours: Option<u64>,
    /// Most invocation records kept.
    pub max_invocations: Option<u64>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    On,
    Off,
}

/// The resolved settings of the server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub image_dir: PathBuf,
    pub docker_socket: PathBuf,
    pub run_dir: PathBuf,
    pub memory_budget_mb: u64,
    pub max_code_mb: u64,
    pub shutdown_grace_s: u64,
    pub queue_capacity: usize,
    pub stem_initial: usize,
    pub stem_max: usize,
    /// Whether to use the Docker backend (off only for API-only testing).
    pub docker: bool,
    pub microvm: bool,
    pub microvm_accel: String,
    pub microvm_snapshots: String,
    pub record: bool,
    /// Authentication on (the default) or off (`--no-auth`, loopback only).
    pub auth: bool,
    pub metrics_public: bool,
    pub auth_fail_burst: u32,
    pub auth_fail_per_minute: u32,
    pub record_capacity: usize,
    pub rollup_days: u64,
    pub invocation_hours: u64,
    pub max_invocations: u64,
    /// Label value marking this server's sandboxes.
    pub instance: String,
}

impl ServeConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.memory_budget_mb < 64 {
            bail!("memory_budget_mb must be at least 64");
        }
        if !(1..=1024).contains(&self.max_code_mb) {
            bail!("max_code_mb must be between 1 and 1024");
        }
        if self.stem_initial > self.stem_max || self.stem_max > 64 {
            bail!("stem cells: need stem_initial <= stem_max <= 64");
        }
        if !matches!(self.microvm_accel.as_str(), "auto" | "tcg") {
            bail!("microvm_accel must be `auto` or `tcg`");
        }
        if let Err(e) = ignis_microvm::SnapshotMode::parse(&self.microvm_snapshots) {
            bail!("microvm_snapshots: {e}");
        }
        if self.record_capacity == 0 || self.rollup_days == 0 || self.invocation_hours == 0 {
            bail!("record_capacity, rollup_days and invocation_hours must be at least 1");
        }
        if self.queue_capacity == 0 {
            bail!("queue_capacity must be at least 1");
        }
        if !self.auth && !listens_on_loopback(&self.listen) {
            bail!(
                "authentication can be off only when listening on loopback (127.0.0.1, ::1, localhost), not on {}",
                self.listen
            );
        }
        if self.auth_fail_burst == 0 || self.auth_fail_per_minute == 0 {
            bail!("auth_fail_burst and auth_fail_per_minute must be at least 1");
        }
        // sun_path holds 108 bytes; leave room for "/sb-<uuid>/channel.sock".
        if self.run_dir.as_os_str().len() > 50 {
            bail!(
                "run_dir {} is too long for Unix socket paths (50 bytes at most)",
                self.run_dir.display()
            );
        }
        Ok(())
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
