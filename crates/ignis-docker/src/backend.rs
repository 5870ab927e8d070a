//! [`DockerBackend`]: boots, kills and measures hardened containers.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use ignis_core::{BackendKind, Runtime};
use ignis_sandbox::cgroup::{self, ContainerFiles, Layout};
use ignis_sandbox::host::{self, WaitError};
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
/// The CFS period of a sandbox's CPU quota (µs); see `create_body`.
const CPU_PERIOD_US: i64 = 20_000;

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
    cgroups: Layout,
}

fn backend_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Backend(e.to_string())
}

/// The bootstrap's command line in a container: the one place it is written.
pub fn command(runtime: Runtime) -> Vec<String> {
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

/// The container of a sandbox: every hardening setting, in one place.
/// `dir` is the host directory bind-mounted as the channel directory.
pub fn create_body(c: &DockerConfig, spec: &SandboxSpec, dir: &Path) -> ContainerCreateBody {
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
        cmd: Some(command(spec.runtime)),
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
            // An init (Docker's tini) as PID 1 reaps the orphans a function
            // leaves (`cmd &`): without it zombies pile up to the pids limit
            // and the sandbox can no longer fork. It passes the bootstrap's
            // exit code and signals through.
            init: Some(true),
            memory: Some(memory),
            // Equal to `memory`: no swap on top of the limit.
            memory_swap: Some(memory),
            memory_swappiness: Some(0),
            // `cpus` as a CFS quota over a 20 ms period instead of Docker's
            // `--cpus` (NanoCpus, a fixed 100 ms period): a sandbox that
            // exhausts its share waits at most 20 ms × (1 − cpus) for the
            // next period instead of up to 100 ms, so a CPU-bound call's
            // latency stays close to work ÷ cpus (0.05 cpus gives the
            // kernel's 1 ms minimum quota).
            cpu_period: Some(CPU_PERIOD_US),
            cpu_quota: Some((spec.cpus * CPU_PERIOD_US as f64).round() as i64),
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

/// The same hardening as `docker run` flags (for the bench's naive
/// baseline), derived from [`create_body`] so the two cannot drift.
pub fn run_flags(body: &ContainerCreateBody) -> Vec<String> {
    let mut f = Vec::new();
    let mut push = |k: &str, v: String| {
        f.push(k.to_string());
        f.push(v);
    };
    if let Some(u) = &body.user {
        push("--user", u.clone());
    }
    if let Some(w) = &body.working_dir {
        push("--workdir", w.clone());
    }
    for e in body.env.iter().flatten() {
        push("--env", e.clone());
    }
    if let Some(h) = &body.host_config {
        if let Some(n) = &h.network_mode {
            push("--network", n.clone());
        }
        let mut tmpfs: Vec<_> = h.tmpfs.iter().flatten().collect();
        tmpfs.sort();
        for (path, opts) in tmpfs {
            push("--tmpfs", format!("{path}:{opts}"));
        }
        for c in h.cap_drop.iter().flatten() {
            push("--cap-drop", c.clone());
        }
        for o in h.security_opt.iter().flatten() {
            push("--security-opt", o.clone());
        }
        if let Some(m) = h.memory {
            push("--memory", format!("{m}b"));
        }
        if let Some(m) = h.memory_swap {
            push("--memory-swap", format!("{m}b"));
        }
        if let (Some(period), Some(quota)) = (h.cpu_period, h.cpu_quota) {
            push("--cpu-period", period.to_string());
            push("--cpu-quota", quota.to_string());
        }
        if let Some(p) = h.pids_limit {
            push("--pids-limit", p.to_string());
        }
        for b in h.binds.iter().flatten() {
            push("--volume", b.clone());
        }
    }
    if body.host_config.as_ref().and_then(|h| h.readonly_rootfs) == Some(true) {
        f.push("--read-only".into());
    }
    if body.host_config.as_ref().and_then(|h| h.init) == Some(true) {
        f.push("--init".into());
    }
    f
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
        if !tokio::fs::try_exists(&config.socket).await.unwrap_or(false) {
            return Err(unavailable(format!(
                "no Docker engine socket at {socket}: install docker.io and start dockerd (scripts/deps.sh does both)"
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
        tokio::fs::create_dir_all(&config.run_dir).await?;
        let events = Events::watch(docker.clone(), &config.instance);
        let cgroups = cgroup::detect(Path::new(cgroup::ROOT));
        if cgroups == Layout::None {
            cgroup::warn_unusable("no cgroup v1 or v2 hierarchy under /sys/fs/cgroup");
        }
        Ok(Self {
            docker,
            events,
            engine_version: version.version.unwrap_or_default(),
            config: Arc::new(config),
            cgroups,
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Containers of this server, by their label's filter.
    async fn containers(
        &self,
        all: bool,
    ) -> Result<Vec<bollard::models::ContainerSummary>, SandboxError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.config.instance)],
        )]);
        let options = ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(backend_err)
    }
}

/// Removes a container (and its volumes); true when it is gone, also when
/// it already was.
pub(crate) async fn remove_container(docker: &Docker, name: &str) -> bool {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => true,
        Err(e) if is_not_found(&e) => true,
        Err(e) => {
            tracing::warn!(container = name, error = %e, "could not remove container");
            false
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
        tokio::fs::create_dir_all(&dir).await?;
        // The sandbox user must be able to create its socket here.
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).await?;
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
            cgroups: self.cgroups,
            cgroup: Mutex::new(CgroupState::Untried),
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

    async fn alive(&self) -> Result<HashSet<String>, SandboxError> {
        Ok(self
            .containers(false)
            .await?
            .into_iter()
            .filter_map(|c| c.labels?.get(LABEL_SANDBOX).cloned())
            .collect())
    }

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let orphans = self.containers(true).await?;
        for c in &orphans {
            if let Some(id) = &c.id {
                remove_container(&self.docker, id).await;
            }
        }
        // Channel directories of the previous run.
        host::clear_dir(&self.config.run_dir).await;
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
            .create_container(Some(options), create_body(&self.config, spec, dir))
            .await
            .map_err(backend_err)?;
        let _ = handle.container_id.set(created.id.clone());
        self.events.track(&created.id, &spec.id);
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(backend_err)?;

        // The bootstrap binds `channel.sock.tmp` and renames it: the socket
        // appearing means it is listening.
        let socket = dir.join(SOCKET_NAME);
        let deadline = tokio::time::Instant::now() + spec.boot_timeout;
        let died = || self.events.get(&created.id).filter(|d| d.died);
        match host::wait_for_path(&socket, deadline, || died().is_some()).await {
            Ok(()) => {}
            Err(WaitError::Timeout) => return Err(SandboxError::BootTimeout(spec.boot_timeout)),
            Err(WaitError::GaveUp) => {
                let death = died().unwrap_or_default();
                return Err(SandboxError::Exited(if death.oom {
                    ExitReason::OutOfMemory
                } else {
                    ExitReason::Crashed {
                        exit_code: death.exit_code,
                    }
                }));
            }
        }
        let stream = UnixStream::connect(&socket).await?;
        let (r, w) = stream.into_split();
        Ok(Channel::new(r, w))
    }
}

/// The accounting files of a container: opened on first use, and a failure
/// is remembered (no retry after every batch).
#[derive(Debug)]
enum CgroupState {
    Untried,
    Open(ContainerFiles),
    Unavailable,
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
    cgroups: Layout,
    cgroup: Mutex<CgroupState>,
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
        if !remove_container(&self.docker, self.target()).await {
            // The engine is down: removed once it answers again.
            self.events.remove_later(self.target().to_string());
        }
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
        // death; the `oom` event comes before `die`. With the stream down
        // no event will come: waiting would only hold the call (the engine
        // killed and restarted held them 3 s each).
        let death = if self.events.connected() {
            self.events.wait_died(id, Duration::from_secs(3)).await
        } else {
            self.events.get(id)
        };
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

    /// A pread of two or three open files: microseconds, cheap enough after
    /// every batch.
    fn usage_now(&self) -> Option<ResourceUsage> {
        let id = self.container_id.get()?;
        let mut state = self.cgroup.lock().ok()?;
        if matches!(*state, CgroupState::Untried) {
            *state = match ContainerFiles::open(Path::new(cgroup::ROOT), self.cgroups, id) {
                Some(files) => CgroupState::Open(files),
                None => {
                    cgroup::warn_unusable("the container's cgroup files are not where expected");
                    CgroupState::Unavailable
                }
            };
        }
        match &*state {
            CgroupState::Open(files) => files.read(),
            _ => None,
        }
    }

    async fn usage(&self) -> Option<ResourceUsage> {
        let id = self.container_id.get()?.clone();
        let layout = self.cgroups;
        tokio::task::spawn_blocking(move || {
            ContainerFiles::open(Path::new(cgroup::ROOT), layout, &id)?.read()
        })
        .await
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: "sb-1".into(),
            runtime: Runtime::Python3,
            memory_mb: 128,
            cpus: 0.5,
            boot_timeout: Duration::from_secs(30),
        }
    }

    /// The hardening of every container, pinned: a change here is a change
    /// of the sandbox's security and shows up in review.
    #[test]
    fn the_container_body_is_the_hardened_one() {
        let config =
            DockerConfig::new("ignis-runtime:abc".into(), "/tmp/ign".into(), "inst".into());
        let body = create_body(&config, &spec(), Path::new("/tmp/ign/sb-1"));
        let mut json = serde_json::to_value(&body).unwrap();
        // Label and tmpfs maps come in any order: compare them sorted.
        let expected = serde_json::json!({
            "Image": "ignis-runtime:abc",
            "Cmd": ["/usr/bin/python3", "-S", "-B", "/opt/ignis/bootstrap.py", "--socket", "/run/ignis/channel.sock"],
            "User": "65534:65534",
            "WorkingDir": "/var/task",
            "Env": ["HOME=/tmp", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin", "IGNIS_SANDBOX_ID=sb-1"],
            "Labels": {"io.ignis.managed": "true", "io.ignis.instance": "inst", "io.ignis.sandbox": "sb-1"},
            "NetworkDisabled": true,
            "HostConfig": {
                "Binds": ["/tmp/ign/sb-1:/run/ignis:rw"],
                "NetworkMode": "none",
                "ReadonlyRootfs": true,
                "Tmpfs": {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777", "/var/task": "rw,nosuid,nodev,size=256m,mode=1777"},
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Init": true,
                "Memory": 134217728,
                "MemorySwap": 134217728,
                "MemorySwappiness": 0,
                "CpuPeriod": 20000,
                "CpuQuota": 10000,
                "PidsLimit": 128,
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}}
            }
        });
        // Fields the body leaves unset serialize as null or are absent.
        strip_nulls(&mut json);
        assert_eq!(json, expected);
    }

    fn strip_nulls(v: &mut serde_json::Value) {
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                strip_nulls(x);
            }
        }
    }

    #[test]
    fn run_flags_carry_the_same_hardening() {
        let config = DockerConfig::new("img".into(), "/tmp/ign".into(), "inst".into());
        let flags = run_flags(&create_body(&config, &spec(), Path::new("/tmp/ign/sb-1"))).join(" ");
        for f in [
            "--network none",
            "--read-only",
            "--cap-drop ALL",
            "--security-opt no-new-privileges",
            "--init",
            "--memory 134217728b",
            "--memory-swap 134217728b",
            "--cpu-period 20000 --cpu-quota 10000",
            "--pids-limit 128",
            "--user 65534:65534",
            "--tmpfs /tmp:rw,nosuid,nodev,size=64m,mode=1777",
        ] {
            assert!(flags.contains(f), "{f} missing from {flags}");
        }
    }
}
