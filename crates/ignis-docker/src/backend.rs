//! [`DockerBackend`]: boots, kills and measures hardened containers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use ignis_core::{BackendKind, Runtime};
use ignis_sandbox::{
    Backend, BackendStatus, Booted, Channel, ExitReason, ResourceUsage, SandboxError,
    SandboxHandle, SandboxSpec,
};
use tokio::net::UnixStream;

use crate::events::Events;

pub(crate) const LABEL_MANAGED: &str = "io.ignis.managed";
pub(crate) const LABEL_INSTANCE: &str = "io.ignis.instance";
pub(crate) const LABEL_SANDBOX: &str = "io.ignis.sandbox";
const CHANNEL_DIR: &str = "/run/ignis";
const SOCKET_NAME: &str = "channel.sock";
/// The unprivileged user every sandbox runs as (`nobody`).
const SANDBOX_USER: &str = "65534:65534";

/// Settings of the Docker backend.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The Engine's Unix socket.
    pub socket: PathBuf,
    /// Image to run (see [`crate::image`]).
    pub image: String,
    /// Host directory holding one channel directory per sandbox. Keep it
    /// short: a Unix socket path has at most 107 bytes.
    pub run_dir: PathBuf,
    /// Label value that marks this server's containers, so that orphans of a
    /// crashed run are found and those of other servers are left alone.
    pub instance: String,
    /// Most processes (and threads) in one sandbox.
    pub pids_limit: i64,
    /// Size of the `/tmp` tmpfs, MiB.
    pub tmp_size_mb: u32,
    /// Size of the code tmpfs (`/var/task`), MiB.
    pub code_size_mb: u32,
}

impl DockerConfig {
    pub fn new(image: String, run_dir: PathBuf, instance: String) -> Self {
        Self {
            socket: PathBuf::from("/var/run/docker.sock"),
            image,
            run_dir,
            instance,
            pids_limit: 128,
            tmp_size_mb: 64,
            code_size_mb: 256,
        }
    }
}

/// The Docker backend.
#[derive(Clone)]
pub struct DockerBackend {
    docker: Docker,
    config: Arc<DockerConfig>,
    events: Arc<Events>,
    engine_version: String,
}

fn backend_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Backend(e.to_string())
}

impl DockerBackend {
    /// Connects to the Engine, negotiates the API version and starts
    /// following its event stream.
    pub async fn connect(config: DockerConfig) -> Result<Self, SandboxError> {
        let unavailable = |reason: String| SandboxError::Unavailable {
            backend: BackendKind::Docker,
            reason,
        };
        let socket = config.socket.display().to_string();
        if !config.socket.exists() {
            return Err(unavailable(format!(
                "no Docker engine socket at {socket}: install docker.io and start dockerd (scripts/setup.sh does both)"
            )));
        }
        let docker = Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unavailable(format!("cannot connect to {socket}: {e}")))?
            .negotiate_version()
            .await
            .map_err(|e| {
                unavailable(format!(
                    "the Docker engine at {socket} does not answer ({e}); is dockerd running?"
                ))
            })?;
        let version = docker
            .version()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        std::fs::create_dir_all(&config.run_dir)?;
        let events = Events::watch(docker.clone(), &config.instance);
        Ok(Self {
            docker,
            events,
            engine_version: version.version.unwrap_or_default(),
            config: Arc::new(config),
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    fn command(runtime: Runtime) -> Vec<String> {
        let socket = format!("{CHANNEL_DIR}/{SOCKET_NAME}");
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        match runtime {
            // -S: no site module (faster start, nothing to import from);
            // -B: the code tmpfs needs no bytecode files.
            Runtime::Python3 => v(&[
                "/usr/bin/python3",
                "-S",
                "-B",
                "/opt/ignis/bootstrap.py",
                "--socket",
                &socket,
            ]),
            Runtime::Nodejs => v(&[
                "/usr/bin/node",
                "/opt/ignis/bootstrap.js",
                "--socket",
                &socket,
            ]),
        }
    }

    fn create_body(&self, spec: &SandboxSpec, dir: &Path) -> ContainerCreateBody {
        let c = &self.config;
        let memory = i64::from(spec.memory_mb) * 1024 * 1024;
        let labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), c.instance.clone()),
            (LABEL_SANDBOX.to_string(), spec.id.clone()),
        ]);
        let tmpfs = HashMap::from([
            (
                "/tmp".to_string(),
                format!("rw,nosuid,nodev,size={}m,mode=1777", c.tmp_size_mb),
            ),
            (
                "/var/task".to_string(),
                format!("rw,nosuid,nodev,size={}m,mode=1777", c.code_size_mb),
            ),
        ]);
        ContainerCreateBody {
            image: Some(c.image.clone()),
            cmd: Some(Self::command(spec.runtime)),
            user: Some(SANDBOX_USER.into()),
            working_dir: Some("/var/task".into()),
            env: Some(vec![
                "HOME=/tmp".into(),
                "LANG=C.UTF-8".into(),
                "PATH=/usr/local/bin:/usr/bin:/bin".into(),
                format!("IGNIS_SANDBOX_ID={}", spec.id),
            ]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{}:{CHANNEL_DIR}:rw", dir.display())]),
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(tmpfs),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                memory: Some(memory),
                // Equal to `memory`: no swap on top of the limit.
                memory_swap: Some(memory),
                memory_swappiness: Some(0),
                nano_cpus: Some((spec.cpus * 1e9) as i64),
                pids_limit: Some(c.pids_limit),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".to_string(), "1m".to_string()),
                        ("max-file".to_string(), "1".to_string()),
                    ])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn remove_container(docker: &Docker, name: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        if let Err(e) = docker.remove_container(name, Some(options)).await {
            if !is_not_found(&e) {
                tracing::warn!(container = name, error = %e, "could not remove container");
            }
        }
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    async fn status(&self) -> BackendStatus {
        let (available, detail) = match self.docker.inspect_image(&self.config.image).await {
            Ok(_) => (
                true,
                format!(
                    "engine {}, image {}",
                    self.engine_version, self.config.image
                ),
            ),
            Err(e) if is_not_found(&e) => (
                false,
                format!(
                    "image {} is missing: run `ignis images build`",
                    self.config.image
                ),
            ),
            Err(e) => (false, format!("engine not answering: {e}")),
        };
        BackendStatus {
            kind: BackendKind::Docker,
            available,
            detail,
            accelerator: None,
        }
    }

    async fn boot(&self, spec: &SandboxSpec) -> Result<Booted, SandboxError> {
        let dir = self.config.run_dir.join(&spec.id);
        std::fs::create_dir_all(&dir)?;
        // The sandbox user must be able to create its socket here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        }
        let name = format!("ignis-{}", spec.id);
        let handle = Arc::new(DockerSandbox {
            id: spec.id.clone(),
            name: name.clone(),
            container_id: std::sync::OnceLock::new(),
            dir: dir.clone(),
            docker: self.docker.clone(),
            events: self.events.clone(),
            killed: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            cgroup: std::sync::Mutex::new(None),
        });
        match self.boot_inner(spec, &dir, &name, &handle).await {
            Ok(channel) => Ok(Booted { handle, channel }),
            Err(e) => {
                handle.destroy().await;
                Err(e)
            }
        }
    }

    fn deaths(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.events.died.subscribe())
    }

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.config.instance)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let orphans = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(backend_err)?;
        for c in &orphans {
            if let Some(id) = &c.id {
                Self::remove_container(&self.docker, id).await;
            }
        }
        // Channel directories of the previous run.
        if let Ok(entries) = std::fs::read_dir(&self.config.run_dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(orphans.len())
    }
}

impl DockerBackend {
    async fn boot_inner(
        &self,
        spec: &SandboxSpec,
        dir: &Path,
        name: &str,
        handle: &DockerSandbox,
    ) -> Result<Channel, SandboxError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), self.create_body(spec, dir))
            .await
            .map_err(backend_err)?;
        let _ = handle.container_id.set(created.id.clone());
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(backend_err)?;

        // The bootstrap binds `channel.sock.tmp` and renames it: the socket
        // appearing means it is listening.
        let socket = dir.join(SOCKET_NAME);
        let deadline = tokio::time::Instant::now() + spec.boot_timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            if socket.exists() {
                break;
            }
            if let Some(death) = self.events.get(&created.id).filter(|d| d.died) {
                return Err(SandboxError::BootFailed(format!(
                    "bootstrap exited with code {:?}{}",
                    death.exit_code,
                    if death.oom { " (out of memory)" } else { "" }
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SandboxError::BootTimeout(spec.boot_timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        let stream = UnixStream::connect(&socket).await?;
        let (r, w) = stream.into_split();
        Ok(Channel::new(r, w))
    }
}

/// One container.
struct DockerSandbox {
    id: String,
    name: String,
    container_id: std::sync::OnceLock<String>,
    dir: PathBuf,
    docker: Docker,
    events: Arc<Events>,
    killed: AtomicBool,
    destroyed: AtomicBool,
    /// Open cgroup files, read with pread after every batch.
    cgroup: std::sync::Mutex<Option<CgroupFiles>>,
}

/// The cgroup v1 files of a container, kept open: re-reading an open
/// cgroup file from offset 0 costs one syscall.
struct CgroupFiles {
    cpu_ns: std::fs::File,
    peak: std::fs::File,
}

impl CgroupFiles {
    fn open(id: &str) -> Option<Self> {
        Some(Self {
            cpu_ns: std::fs::File::open(format!(
                "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"
            ))
            .ok()?,
            peak: std::fs::File::open(format!(
                "/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes"
            ))
            .ok()?,
        })
    }

    fn read(&self) -> Option<ResourceUsage> {
        use std::os::unix::fs::FileExt;
        let value = |f: &std::fs::File| -> Option<u64> {
            let mut buf = [0u8; 32];
            let n = f.read_at(&mut buf, 0).ok()?;
            std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
        };
        let peak = value(&self.peak)?;
        Some(ResourceUsage {
            memory_bytes: peak,
            peak_memory_bytes: Some(peak),
            cpu_time_ms: value(&self.cpu_ns)? as f64 / 1e6,
        })
    }
}

impl DockerSandbox {
    fn target(&self) -> &str {
        self.container_id.get().map_or(&self.name, |s| s.as_str())
    }
}

#[async_trait]
impl SandboxHandle for DockerSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    async fn kill(&self) {
        if self.killed.swap(true, Ordering::SeqCst) {
            return;
        }
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        if let Err(e) = self
            .docker
            .kill_container(self.target(), Some(options))
            .await
        {
            // 404: already removed; 409: not running. Both mean "dead".
            tracing::debug!(sandbox = %self.id, error = %e, "kill");
        }
    }

    async fn destroy(&self) {
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.killed.store(true, Ordering::SeqCst);
        DockerBackend::remove_container(&self.docker, self.target()).await;
        if let Some(id) = self.container_id.get() {
            self.events.forget(id);
        }
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }

    async fn exit_reason(&self) -> ExitReason {
        let Some(id) = self.container_id.get() else {
            return ExitReason::Crashed { exit_code: None };
        };
        // The channel usually closes a moment before the engine reports the
        // death; the `oom` event comes before `die`.
        let death = self.events.wait_died(id, Duration::from_secs(3)).await;
        if death.is_some_and(|d| d.oom) {
            return ExitReason::OutOfMemory;
        }
        if self.killed.load(Ordering::SeqCst) {
            return ExitReason::Killed;
        }
        if let Some(d) = death.filter(|d| d.died) {
            return ExitReason::Crashed {
                exit_code: d.exit_code,
            };
        }
        // No event (stream reconnecting?): ask the engine.
        match self.docker.inspect_container(id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                if state.oom_killed == Some(true) {
                    ExitReason::OutOfMemory
                } else {
                    ExitReason::Crashed {
                        exit_code: state.exit_code,
                    }
                }
            }
            Err(_) => ExitReason::Crashed { exit_code: None },
        }
    }

    fn usage_now(&self) -> Option<ResourceUsage> {
        let id = self.container_id.get()?;
        let mut files = self.cgroup.lock().ok()?;
        if files.is_none() {
            *files = CgroupFiles::open(id);
        }
        files.as_ref()?.read()
    }

    async fn usage(&self) -> Option<ResourceUsage> {
        let id = self.container_id.get()?.clone();
        tokio::task::spawn_blocking(move || cgroup_usage(&id))
            .await
            .ok()
            .flatten()
    }
}

/// Reads memory and CPU use from the container's cgroup (v1 with the
/// cgroupfs driver, or v2 with either driver).
fn cgroup_usage(id: &str) -> Option<ResourceUsage> {
    let read = |p: String| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let v1_mem = format!("/sys/fs/cgroup/memory/docker/{id}");
    if let Some(memory) = read(format!("{v1_mem}/memory.usage_in_bytes")) {
        let peak = read(format!("{v1_mem}/memory.max_usage_in_bytes"));
        let cpu_ns = read(format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage")).unwrap_or(0);
        return Some(ResourceUsage {
            memory_bytes: memory,
            peak_memory_bytes: peak,
            cpu_time_ms: cpu_ns as f64 / 1e6,
        });
    }
    for dir in [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope"),
        format!("/sys/fs/cgroup/docker/{id}"),
    ] {
        if let Some(memory) = read(format!("{dir}/memory.current")) {
            let cpu_us = std::fs::read_to_string(format!("{dir}/cpu.stat"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
                })
                .unwrap_or(0);
            return Some(ResourceUsage {
                memory_bytes: memory,
                peak_memory_bytes: read(format!("{dir}/memory.peak")),
                cpu_time_ms: cpu_us as f64 / 1e3,
            });
        }
    }
    None
}
