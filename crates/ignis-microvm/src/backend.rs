//! [`MicroVmBackend`]: boots, supervises, kills and measures QEMU microVMs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ignis_core::{BackendKind, Runtime};
use ignis_sandbox::cgroup::{self, CpuCap};
use ignis_sandbox::host;
use ignis_sandbox::protocol::{GuestMessage, HostMessage, Restore};
use ignis_sandbox::{
    Backend, BackendStatus, Booted, Channel, ExitReason, ResourceUsage, SandboxError,
    SandboxHandle, SandboxSpec,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, watch, Notify};

use crate::snapshot::{fresh_seed, shell_quote, Qmp, Snapshot, SnapshotMode};
use ignis_image::microvm::Artifacts;

/// A KVM probe boot must answer within this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a probe's verdict is trusted before the next start probes again.
const PROBE_CACHE_FOR: Duration = Duration::from_secs(24 * 3600);
/// A snapshot template boots under TCG in about 20 s; allow for a busy host.
const TEMPLATE_BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// After a failed snapshot build, or RESTORE_FAILURES restores in a row
/// that failed, cold-boot for this long before trying snapshots again.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(600);
const RESTORE_FAILURES: u32 = 3;
/// Snapshot keys (runtime, memory size) per server: each costs a template
/// boot and a RAM file; sizes beyond these boot.
const MAX_TEMPLATES: usize = 8;

/// How guest code is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn args(self) -> Vec<String> {
        match self {
            Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            // A bounded translation cache keeps each VM's RSS down.
            Accel::Tcg => vec!["-accel".into(), "tcg,tb-size=64".into()],
        }
    }
}

#[derive(Debug, Clone)]
pub struct MicroVmConfig {
    pub qemu: PathBuf,
    pub artifacts: Artifacts,
    /// Directory of per-sandbox socket and console files (short path).
    pub run_dir: PathBuf,
    /// Marks this server's VMs (on their kernel command line) so that a
    /// restarted server finds and kills the orphans of a crashed one.
    pub instance: String,
    /// Skip the KVM probe and use TCG.
    pub force_tcg: bool,
    /// Start sandboxes by restoring snapshots (`None`: always boot).
    pub snapshots: Option<SnapshotMode>,
    /// Where snapshots are kept (inside the image's directory, so that a new
    /// image or kernel means new snapshots).
    pub snapshot_dir: PathBuf,
}

/// Per (runtime, memory size): the snapshot, or when building one failed.
#[derive(Default)]
struct TemplateState {
    snapshot: Option<Snapshot>,
    failed_at: Option<Instant>,
    /// Restores that failed in a row.
    restore_failures: u32,
}

type Templates = Mutex<HashMap<(Runtime, u32), Arc<tokio::sync::Mutex<TemplateState>>>>;

#[derive(Clone)]
pub struct MicroVmBackend {
    config: Arc<MicroVmConfig>,
    accel: Accel,
    accel_note: String,
    timing: String,
    /// Short hash of `qemu --version`: a snapshot restores only into the
    /// QEMU that saved it.
    qemu_id: String,
    deaths: broadcast::Sender<String>,
    templates: Arc<Templates>,
}

/// What a QEMU process is for.
#[derive(Clone, Copy)]
enum Role<'a> {
    /// A plain boot.
    Boot,
    /// A template booting to save `snapshot` (whose directory it writes).
    Template(&'a Snapshot),
    /// A clone restoring `snapshot`.
    Clone(&'a Snapshot),
}

fn unavailable(reason: impl Into<String>) -> SandboxError {
    SandboxError::Unavailable {
        backend: BackendKind::Microvm,
        reason: reason.into(),
    }
}

/// `lpj` and `tsc_early_khz` from the host's clock: without them the guest
/// kernel sometimes hangs calibrating its timer under TCG.
fn timing_args() -> String {
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("cpu MHz"))
                .and_then(|v| {
                    v.trim_start_matches([' ', '\t', ':'])
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .unwrap_or(2000.0);
    let khz = (mhz * 1000.0) as u64;
    // Debian's kernel runs at HZ=250.
    format!("lpj={} tsc_early_khz={khz}", khz * 1000 / 250)
}

impl MicroVmBackend {
    /// Checks QEMU and the artifacts, then picks the accelerator: KVM when
    /// `/dev/kvm` exists and a probe boot answers, TCG otherwise.
    pub async fn start(config: MicroVmConfig) -> Result<Self, SandboxError> {
        let qemu_ok = std::process::Command::new(&config.qemu)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let qemu_id = std::process::Command::new(&config.qemu)
            .arg("--version")
            .output()
            .map(|o| ignis_package::sha256_hex(&o.stdout)[..12].to_string())
            .unwrap_or_default();
        if !qemu_ok {
            return Err(unavailable(format!(
                "{} not found: apt-get install qemu-system-x86",
                config.qemu.display()
            )));
        }
        if !config.artifacts.exist() {
            return Err(unavailable(
                "microVM image missing: run `ignis images build`",
            ));
        }
        std::fs::create_dir_all(&config.run_dir)?;
        let mut backend = Self {
            config: Arc::new(config),
            accel: Accel::Tcg,
            accel_note: String::new(),
            timing: timing_args(),
            qemu_id,
            deaths: broadcast::channel(64).0,
            templates: Arc::default(),
        };
        let (accel, note) = backend.probe().await;
        backend.accel = accel;
        backend.accel_note = note;
        // The server prints the backend's status (with this note) once.
        tracing::debug!(accel = ?backend.accel, note = %backend.accel_note, "microvm backend ready");
        Ok(backend)
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn accel_note(&self) -> &str {
        &self.accel_note
    }

    /// Where the last KVM probe's verdict is kept: beside the image (a new
    /// kernel or image probes again), for this QEMU.
    fn probe_file(&self) -> PathBuf {
        let dir = self
            .config
            .artifacts
            .kernel
            .parent()
            .map_or_else(|| self.config.run_dir.clone(), Path::to_path_buf);
        dir.join(format!("kvm-probe-{}", self.qemu_id))
    }

    /// KVM or TCG. A probe boot takes up to 8 s, so its verdict is cached
    /// for a day in the (machine-wide) image directory.
    async fn probe(&self) -> (Accel, String) {
        if self.config.force_tcg {
            return (Accel::Tcg, "TCG (KVM disabled by configuration)".into());
        }
        if !Path::new("/dev/kvm").exists() {
            return (Accel::Tcg, "TCG (no /dev/kvm)".into());
        }
        let file = self.probe_file();
        let fresh = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < PROBE_CACHE_FOR);
        if fresh {
            if let Ok(verdict) = std::fs::read_to_string(&file) {
                match verdict.split_once(' ') {
                    Some(("kvm", _)) => return (Accel::Kvm, "KVM (probe boot answered)".into()),
                    Some(("tcg", why)) => {
                        return (Accel::Tcg, format!("TCG (KVM probe failed: {why})"))
                    }
                    _ => {}
                }
            }
        }
        let (accel, note, verdict) = self.probe_boot().await;
        if let Err(e) = std::fs::write(&file, verdict) {
            tracing::debug!(error = %e, "cannot cache the KVM probe's verdict");
        }
        (accel, note)
    }

    async fn probe_boot(&self) -> (Accel, String, String) {
        let spec = SandboxSpec {
            id: format!("probe-{}", std::process::id()),
            runtime: Runtime::Python3,
            memory_mb: 128,
            cpus: 1.0,
            boot_timeout: PROBE_TIMEOUT,
        };
        match self.launch(&spec, Accel::Kvm, Role::Boot).await {
            Ok(booted) => {
                booted.handle.destroy().await;
                (
                    Accel::Kvm,
                    "KVM (probe boot answered)".into(),
                    "kvm ok".into(),
                )
            }
            Err(e) => (
                Accel::Tcg,
                format!("TCG (KVM probe failed: {e})"),
                format!("tcg {e}"),
            ),
        }
    }

    /// Boots a VM and waits for its bootstrap's `booted` line.
    async fn launch(
        &self,
        spec: &SandboxSpec,
        accel: Accel,
        role: Role<'_>,
    ) -> Result<Booted, SandboxError> {
        let (vm, stderr) = self.spawn(spec, accel, role).await?;
        let deadline = tokio::time::Instant::now() + spec.boot_timeout;
        let booted = async {
            let (mut r, w) = self
                .open_channel(deadline, spec.boot_timeout, &vm, stderr)
                .await?;
            match first_message(&mut r, deadline, spec.boot_timeout, &vm.dir).await? {
                GuestMessage::Booted => Ok(Channel::new(r, w)),
                other => Err(SandboxError::BootFailed(format!(
                    "the guest's first message is not `booted`: {other:?}"
                ))),
            }
        };
        let channel = booted.await;
        settle(vm, spec, channel).await
    }

    /// Restores a clone of `snapshot` and gives it its own identity.
    async fn restore(
        &self,
        spec: &SandboxSpec,
        snapshot: &Snapshot,
    ) -> Result<Booted, SandboxError> {
        let started = Instant::now();
        let (vm, mut stderr) = self.spawn(spec, self.accel, Role::Clone(snapshot)).await?;
        let deadline = tokio::time::Instant::now() + spec.boot_timeout;
        let restored = async {
            let load = async {
                let mut qmp = Qmp::connect(&vm.dir.join("qmp.sock"), deadline).await?;
                if snapshot.mode == SnapshotMode::Mapped {
                    qmp.ignore_shared().await?;
                }
                let uri = format!("exec:cat {}", shell_quote(&snapshot.state()));
                qmp.execute("migrate-incoming", json!({ "uri": uri }))
                    .await?;
                qmp.wait_migration().await?;
                // A VM started with `-incoming` stays paused after loading.
                qmp.execute("cont", json!({})).await.map(|_| ())
            };
            let mut exit = vm.exit.clone();
            let load = async {
                match tokio::time::timeout_at(deadline, load).await {
                    Ok(r) => r,
                    Err(_) => Err(SandboxError::BootTimeout(spec.boot_timeout)),
                }
            };
            tokio::select! {
                loaded = load => loaded?,
                _ = async { let _ = exit.wait_for(|e| e.is_some()).await; } => {
                    let mut msg = String::new();
                    if let Some(mut e) = stderr.take() {
                        let _ = e.read_to_string(&mut msg).await;
                    }
                    return Err(SandboxError::BootFailed(format!("QEMU exited while restoring: {}", msg.trim())));
                }
            }
            let loaded_ms = started.elapsed().as_secs_f64() * 1e3;
            let (mut r, mut w) = self
                .open_channel(deadline, spec.boot_timeout, &vm, stderr)
                .await?;
            let restore = HostMessage::Restore(Restore {
                seed: fresh_seed()?,
                now_ms: ignis_core::now_ms(),
                sandbox_id: &spec.id,
            });
            let mut line = restore
                .to_line()
                .map_err(|e| SandboxError::Backend(e.to_string()))?;
            line.push(b'\n');
            w.write_all(&line).await?;
            match first_message(&mut r, deadline, spec.boot_timeout, &vm.dir).await? {
                GuestMessage::Restored {
                    kernel_reseeded: true,
                } => {}
                other => {
                    return Err(SandboxError::BootFailed(format!(
                        "the restored guest did not take its new identity: {other:?}"
                    )))
                }
            }
            tracing::debug!(
                sandbox = %spec.id,
                loaded_ms,
                restored_ms = started.elapsed().as_secs_f64() * 1e3,
                "microvm restored"
            );
            Ok(Channel::new(r, w))
        };
        let channel = restored.await;
        settle(vm, spec, channel).await
    }

    /// The snapshot for `spec`'s (runtime, memory size), built on first use
    /// (by a template VM booted for it); `None` when building failed lately.
    async fn snapshot_for(&self, spec: &SandboxSpec, mode: SnapshotMode) -> Option<Snapshot> {
        let key = (spec.runtime, spec.memory_mb);
        let cell = {
            let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
            if !templates.contains_key(&key) && templates.len() >= MAX_TEMPLATES {
                return None;
            }
            templates.entry(key).or_default().clone()
        };
        // Another boot may be building this key's template: wait for it no
        // longer than this boot may take, then boot instead.
        let Ok(mut state) = tokio::time::timeout(spec.boot_timeout, cell.lock()).await else {
            return None;
        };
        if let Some(s) = state.snapshot.as_ref().filter(|s| s.exists()) {
            return Some(s.clone());
        }
        if state
            .failed_at
            .is_some_and(|t| t.elapsed() < SNAPSHOT_RETRY)
        {
            return None;
        }
        let accel = match self.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        };
        let name = format!(
            "{accel}-{}-{}-{}m-{}",
            mode.as_str(),
            spec.runtime.as_str(),
            spec.memory_mb,
            self.qemu_id
        );
        let snapshot = Snapshot::new(
            mode,
            spec.runtime,
            spec.memory_mb,
            self.config.snapshot_dir.join(name),
        );
        if !snapshot.exists() {
            let started = Instant::now();
            match self.build_snapshot(spec, &snapshot).await {
                Ok(()) => tracing::info!(
                    runtime = spec.runtime.as_str(),
                    memory_mb = spec.memory_mb,
                    mode = mode.as_str(),
                    ms = started.elapsed().as_millis() as u64,
                    "microvm snapshot saved"
                ),
                Err(e) => {
                    tracing::warn!(
                        runtime = spec.runtime.as_str(),
                        memory_mb = spec.memory_mb,
                        error = %e,
                        "cannot build a microvm snapshot; booting VMs instead (retry in 10 min)"
                    );
                    state.failed_at = Some(Instant::now());
                    return None;
                }
            }
        }
        state.snapshot = Some(snapshot.clone());
        state.failed_at = None;
        Some(snapshot)
    }

    /// Counts a restore's outcome; after RESTORE_FAILURES failures in a row
    /// the key boots for a while. A snapshot is never deleted here: clones
    /// being restored from it read its files, and one failing restore says
    /// little about the snapshot (the host may be out of memory).
    fn restore_outcome(&self, spec: &SandboxSpec, ok: bool) {
        let cell = self
            .templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(spec.runtime, spec.memory_mb))
            .cloned();
        let Some(cell) = cell else { return };
        let Ok(mut state) = cell.try_lock() else {
            return;
        };
        if ok {
            state.restore_failures = 0;
            return;
        }
        state.restore_failures += 1;
        if state.restore_failures >= RESTORE_FAILURES {
            tracing::warn!(
                runtime = spec.runtime.as_str(),
                memory_mb = spec.memory_mb,
                "microvm restores keep failing; booting VMs instead (retry in 10 min)"
            );
            state.restore_failures = 0;
            state.failed_at = Some(Instant::now());
            state.snapshot = None;
        }
    }

    /// Boots a template to a ready bootstrap, stops it and saves it.
    async fn build_snapshot(
        &self,
        spec: &SandboxSpec,
        snapshot: &Snapshot,
    ) -> Result<(), SandboxError> {
        let mut partial_name = snapshot.dir.file_name().unwrap_or_default().to_os_string();
        // Unique: another server sharing the image directory may be
        // building the same snapshot.
        partial_name.push(format!(".partial-{}", std::process::id()));
        let partial = Snapshot::new(
            snapshot.mode,
            snapshot.runtime,
            snapshot.memory_mb,
            snapshot.dir.with_file_name(partial_name),
        );
        let _ = tokio::fs::remove_dir_all(&partial.dir).await;
        tokio::fs::create_dir_all(&partial.dir).await?;
        let result = self.save_template(spec, snapshot, &partial).await;
        if result.is_err() {
            let _ = tokio::fs::remove_dir_all(&partial.dir).await;
        }
        result
    }

    async fn save_template(
        &self,
        spec: &SandboxSpec,
        snapshot: &Snapshot,
        partial: &Snapshot,
    ) -> Result<(), SandboxError> {
        let template = SandboxSpec {
            id: format!(
                "template-{}-{}m-{}",
                spec.runtime.as_str(),
                spec.memory_mb,
                std::process::id()
            ),
            boot_timeout: spec.boot_timeout.max(TEMPLATE_BOOT_TIMEOUT),
            ..spec.clone()
        };
        let booted = self
            .launch(&template, self.accel, Role::Template(partial))
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let saved = async {
            let qmp_path = self.config.run_dir.join(&template.id).join("qmp.sock");
            let mut qmp = Qmp::connect(&qmp_path, deadline).await?;
            if snapshot.mode == SnapshotMode::Mapped {
                qmp.ignore_shared().await?;
            }
            qmp.execute("stop", json!({})).await?;
            // `cat` may still be writing when QEMU reports completion: the
            // file gets its final name only once `cat` is done.
            let tmp = partial.dir.join("state.tmp");
            let uri = format!(
                "exec:cat > {} && mv {} {}",
                shell_quote(&tmp),
                shell_quote(&tmp),
                shell_quote(&partial.state())
            );
            qmp.execute("migrate", json!({ "uri": uri })).await?;
            qmp.wait_migration().await?;
            while !tokio::fs::try_exists(partial.state())
                .await
                .unwrap_or(false)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        };
        let saved = match tokio::time::timeout_at(deadline, saved).await {
            Ok(r) => r,
            Err(_) => Err(SandboxError::Backend(
                "saving the snapshot timed out".into(),
            )),
        };
        booted.handle.destroy().await;
        drop(booted.channel);
        saved?;
        // Durable before it is used: a torn snapshot would restore garbage.
        let files = [partial.state(), partial.memory()];
        tokio::task::spawn_blocking(move || {
            for f in files.iter().filter(|f| f.exists()) {
                std::fs::File::open(f)?.sync_all()?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| SandboxError::Backend(e.to_string()))??;
        let _ = tokio::fs::remove_dir_all(&snapshot.dir).await;
        tokio::fs::rename(&partial.dir, &snapshot.dir).await?;
        Ok(())
    }

    /// Starts a QEMU process for `spec` and supervises it.
    async fn spawn(
        &self,
        spec: &SandboxSpec,
        accel: Accel,
        role: Role<'_>,
    ) -> Result<(Arc<Vm>, Option<tokio::process::ChildStderr>), SandboxError> {
        let dir = self.config.run_dir.join(&spec.id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir).await?;
        let mut child = tokio::process::Command::new(&self.config.qemu)
            .args(qemu_args(
                &self.config.artifacts,
                &self.config.instance,
                &self.timing,
                spec,
                &dir,
                accel,
                role,
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SandboxError::Backend(format!("cannot start QEMU: {e}")))?;
        let pid = child.id().unwrap_or(0);
        let (exit_tx, exit_rx) = watch::channel(None);
        let kill = Arc::new(Notify::new());
        let killed = Arc::new(AtomicBool::new(false));
        let stderr = child.stderr.take();
        {
            let (kill, killed, deaths, id) = (
                kill.clone(),
                killed.clone(),
                self.deaths.clone(),
                spec.id.clone(),
            );
            tokio::spawn(async move {
                let status = tokio::select! {
                    s = child.wait() => s,
                    _ = kill.notified() => {
                        let _ = child.start_kill();
                        child.wait().await
                    }
                };
                let code = status.ok().and_then(|s| s.code());
                let _ = exit_tx.send(Some(code));
                if !killed.load(Ordering::SeqCst) {
                    let _ = deaths.send(id);
                }
            });
        }
        let handle = Arc::new(Vm {
            id: spec.id.clone(),
            pid,
            dir,
            kill,
            killed,
            exit: exit_rx,
            cgroup: Mutex::new(None),
            proc_files: Mutex::new(None),
        });
        Ok((handle, stderr))
    }

    /// Connects to the VM's channel socket.
    async fn open_channel(
        &self,
        deadline: tokio::time::Instant,
        timeout: Duration,
        vm: &Vm,
        stderr: Option<tokio::process::ChildStderr>,
    ) -> Result<(OwnedReadHalf, OwnedWriteHalf), SandboxError> {
        let sock = vm.dir.join("ch.sock");
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&sock).await {
                break s;
            }
            if vm.exited() {
                let mut msg = String::new();
                if let Some(mut e) = stderr {
                    let _ = e.read_to_string(&mut msg).await;
                }
                return Err(SandboxError::BootFailed(format!(
                    "QEMU exited: {}",
                    msg.trim()
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SandboxError::BootTimeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        Ok(stream.into_split())
    }
}

/// The QEMU command line of a sandbox: a pure function of its inputs.
fn qemu_args(
    a: &Artifacts,
    instance: &str,
    timing: &str,
    spec: &SandboxSpec,
    dir: &Path,
    accel: Accel,
    role: Role,
) -> Vec<String> {
    let runtime = spec.runtime.as_str();
    let snapshot = match role {
        Role::Boot => None,
        Role::Template(s) | Role::Clone(s) => Some(s),
    };
    let mapped = snapshot.filter(|s| s.mode == SnapshotMode::Mapped);
    let mut machine = "microvm,x-option-roms=off,isa-serial=on,rtc=on".to_string();
    if mapped.is_some() {
        machine.push_str(",memory-backend=mem");
    }
    let mut v: Vec<String> = [
        "-M",
        &machine,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-smp",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(accel.args());
    v.extend([
        "-m".into(),
        format!("{}M", spec.memory_mb),
        "-kernel".into(),
        a.kernel.display().to_string(),
        "-initrd".into(),
        a.initramfs.display().to_string(),
        "-append".into(),
        format!(
            "console=ttyS0 quiet panic=-1 {} ignis.runtime={runtime} ignis.instance={} ignis.sandbox={}",
            timing, instance, spec.id
        ),
        // The shared root disk, read-only.
        "-drive".into(),
        format!("id=root,file={},format=raw,if=none,readonly=on", a.rootfs.display()),
        "-device".into(),
        "virtio-blk-device,drive=root".into(),
        "-device".into(),
        "virtio-serial-device".into(),
        "-chardev".into(),
        format!("socket,id=ch,path={},server=on,wait=off", dir.join("ch.sock").display()),
        "-device".into(),
        "virtserialport,chardev=ch,name=ignis".into(),
        "-device".into(),
        "virtio-rng-device".into(),
        "-serial".into(),
        format!("file:{}", dir.join("console.log").display()),
    ]);
    if let Some(s) = mapped {
        // The template writes its RAM into the file; a clone maps it
        // privately, copy-on-write.
        let share = if matches!(role, Role::Template(_)) {
            "on"
        } else {
            "off"
        };
        v.extend([
            "-object".into(),
            format!(
                "memory-backend-file,id=mem,size={}M,mem-path={},share={share}",
                spec.memory_mb,
                s.memory().display()
            ),
        ]);
    }
    if snapshot.is_some() {
        v.extend([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()),
        ]);
    }
    match role {
        Role::Template(_) => {
            let append = v.iter().position(|a| a == "-append").map(|i| i + 1);
            if let Some(i) = append {
                v[i].push_str(" ignis.template=1");
            }
        }
        Role::Clone(_) => v.extend(["-incoming".into(), "defer".into()]),
        Role::Boot => {}
    }
    v
}

/// A VM that came up is capped at its CPU share and handed over; one that
/// did not is destroyed.
async fn settle(
    vm: Arc<Vm>,
    spec: &SandboxSpec,
    channel: Result<Channel, SandboxError>,
) -> Result<Booted, SandboxError> {
    match channel {
        Ok(channel) => {
            vm.cap_cpu(spec.cpus);
            Ok(Booted {
                handle: vm,
                channel,
            })
        }
        Err(e) => {
            vm.destroy().await;
            Err(e)
        }
    }
}

/// The guest's first message on the channel (read byte by byte, so that
/// nothing after it is consumed before the [`Channel`] takes over).
async fn first_message(
    r: &mut OwnedReadHalf,
    deadline: tokio::time::Instant,
    timeout: Duration,
    dir: &Path,
) -> Result<GuestMessage, SandboxError> {
    let read_line = async {
        let mut line = Vec::new();
        loop {
            let b = r.read_u8().await?;
            if b != b'\n' {
                line.push(b);
            } else if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok::<_, std::io::Error>(line);
            } else {
                line.clear();
            }
        }
    };
    let line = match tokio::time::timeout_at(deadline, read_line).await {
        Err(_) => return Err(SandboxError::BootTimeout(timeout)),
        Ok(Err(e)) => {
            return Err(SandboxError::BootFailed(format!(
                "guest closed the channel while booting ({e}){}",
                console_tail(dir).await
            )))
        }
        Ok(Ok(line)) => line,
    };
    match GuestMessage::parse(&line) {
        Ok(GuestMessage::Exited(reason)) => Err(SandboxError::Exited(reason)),
        Ok(msg) => Ok(msg),
        Err(e) => Err(SandboxError::BootFailed(format!(
            "the guest spoke no protocol ({e}){}",
            console_tail(dir).await
        ))),
    }
}

/// `"; console: LAST LINES"`, or nothing when the console is empty.
async fn console_tail(dir: &Path) -> String {
    let text = tokio::fs::read_to_string(dir.join("console.log"))
        .await
        .unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rev()
        .take(5)
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!("; console: {}", tail.join(" | "))
}

#[async_trait]
impl Backend for MicroVmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Microvm
    }

    async fn status(&self) -> BackendStatus {
        BackendStatus {
            kind: BackendKind::Microvm,
            available: true,
            detail: format!(
                "QEMU microvm, {}, snapshots: {}",
                self.accel_note,
                self.config.snapshots.map_or("off", SnapshotMode::as_str)
            ),
            accelerator: Some(match self.accel {
                Accel::Kvm => "kvm",
                Accel::Tcg => "tcg",
            }),
        }
    }

    async fn boot(&self, spec: &SandboxSpec) -> Result<Booted, SandboxError> {
        if let Some(mode) = self.config.snapshots {
            if let Some(snapshot) = self.snapshot_for(spec, mode).await {
                match self.restore(spec, &snapshot).await {
                    Ok(booted) => {
                        self.restore_outcome(spec, true);
                        return Ok(booted);
                    }
                    Err(e) => {
                        tracing::warn!(sandbox = %spec.id, error = %e, "snapshot restore failed; booting instead");
                        self.restore_outcome(spec, false);
                    }
                }
            }
        }
        self.launch(spec, self.accel, Role::Boot).await
    }

    fn deaths(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.deaths.subscribe())
    }

    async fn alive(&self) -> Result<std::collections::HashSet<String>, SandboxError> {
        let marker = format!("ignis.instance={} ", self.config.instance);
        Ok(host::processes_async()
            .await
            .into_iter()
            .filter(|(_, c)| c.contains(&marker))
            .filter_map(|(_, c)| {
                let id = c
                    .split("ignis.sandbox=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?;
                Some(id.to_string())
            })
            .collect())
    }

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let marker = format!("ignis.instance={} ", self.config.instance);
        let mut n = 0;
        for (pid, cmdline) in host::processes_async().await {
            if cmdline.contains(&marker) && pid != std::process::id() {
                if let Err(e) = host::kill(pid) {
                    tracing::debug!(pid, error = %e, "could not kill an orphaned VM");
                }
                n += 1;
            }
        }
        host::clear_dir(&self.config.run_dir).await;
        Ok(n)
    }
}

/// One microVM.
struct Vm {
    id: String,
    pid: u32,
    dir: PathBuf,
    kill: Arc<Notify>,
    killed: Arc<AtomicBool>,
    /// `Some(exit code)` once QEMU exited.
    exit: watch::Receiver<Option<Option<i32>>>,
    /// The CPU cap, applied once the VM is up: booting or restoring is the
    /// platform's work (under TCG, seconds of it), not the function's.
    cgroup: Mutex<Option<CpuCap>>,
    proc_files: Mutex<Option<ProcFiles>>,
}

impl Vm {
    fn cap_cpu(&self, cpus: f64) {
        let root = Path::new(cgroup::ROOT);
        let capped = match CpuCap::apply(
            root,
            cgroup::detect(root),
            "ignis-microvm",
            &self.id,
            self.pid,
            cpus,
        ) {
            Ok(cap) => Some(cap),
            Err(e) => {
                cgroup::warn_unusable(&format!("cannot cap a microVM's CPU: {e}"));
                None
            }
        };
        *self.cgroup.lock().unwrap_or_else(|e| e.into_inner()) = capped;
    }

    fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// The VMM's CPU time and memory from its open `/proc` files (a pread
    /// each: cheap enough after every batch).
    fn read_usage(&self) -> Option<ResourceUsage> {
        if self.pid == 0 || self.exited() {
            return None;
        }
        let mut files = self.proc_files.lock().ok()?;
        if files.is_none() {
            *files = ProcFiles::open(self.pid);
        }
        files.as_ref()?.read()
    }
}

/// `/proc/PID/stat` and `status` of a VMM, kept open.
struct ProcFiles {
    stat: std::fs::File,
    status: std::fs::File,
}

impl ProcFiles {
    fn open(pid: u32) -> Option<Self> {
        Some(Self {
            stat: std::fs::File::open(format!("/proc/{pid}/stat")).ok()?,
            status: std::fs::File::open(format!("/proc/{pid}/status")).ok()?,
        })
    }

    fn read(&self) -> Option<ResourceUsage> {
        use std::os::unix::fs::FileExt;
        let text = |f: &std::fs::File| -> Option<String> {
            let mut buf = vec![0u8; 4096];
            let n = f.read_at(&mut buf, 0).ok()?;
            buf.truncate(n);
            String::from_utf8(buf).ok()
        };
        let status = text(&self.status)?;
        let kb = |key: &str| ignis_core::proc_kib(&status, key);
        let stat = text(&self.stat)?;
        // Fields after the command name: utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ResourceUsage {
            memory_bytes: kb("VmRSS:")? * 1024,
            peak_memory_bytes: kb("VmHWM:").map(|k| k * 1024),
            // USER_HZ is 100 on Linux.
            cpu_time_ms: ticks as f64 * 10.0,
        })
    }
}

/// The VMM's proportional set size (pages shared with other clones, such
/// as a snapshot's RAM file in the page cache, split among them: what a VM
/// really costs), KiB.
fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    ignis_core::proc_kib(&rollup, "Pss:")
}

#[async_trait]
impl SandboxHandle for Vm {
    fn id(&self) -> &str {
        &self.id
    }

    async fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }

    async fn destroy(&self) {
        self.kill().await;
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), exit.wait_for(|e| e.is_some())).await;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
        let cgroup = self.cgroup.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(cap) = cgroup {
            let _ = tokio::task::spawn_blocking(move || cap.remove()).await;
        }
    }

    async fn exit_reason(&self) -> ExitReason {
        let mut exit = self.exit.clone();
        let code = match tokio::time::timeout(
            Duration::from_secs(3),
            exit.wait_for(|e| e.is_some()),
        )
        .await
        {
            Ok(Ok(e)) => e.flatten(),
            _ => None,
        };
        if self.killed.load(Ordering::SeqCst) {
            return ExitReason::Killed;
        }
        // A bootstrap that exits is reported on the channel by the guest
        // init (`exited`, with its code and whether the OOM killer struck):
        // the channel closing without it means the VMM itself died.
        ExitReason::Crashed {
            exit_code: code.map(i64::from),
        }
    }

    /// Sampled every few seconds: memory is the PSS (read on the blocking
    /// pool).
    async fn usage(&self) -> Option<ResourceUsage> {
        let mut u = self.read_usage()?;
        let pid = self.pid;
        if let Ok(Some(pss)) = tokio::task::spawn_blocking(move || pss_kib(pid)).await {
            u.memory_bytes = pss * 1024;
        }
        Some(u)
    }

    fn usage_now(&self) -> Option<ResourceUsage> {
        self.read_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts() -> Artifacts {
        Artifacts {
            kernel: "/img/vmlinuz".into(),
            initramfs: "/img/initramfs.cpio.gz".into(),
            rootfs: "/img/rootfs.ext4".into(),
        }
    }

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: "sb-1".into(),
            runtime: Runtime::Python3,
            memory_mb: 128,
            cpus: 0.5,
            boot_timeout: Duration::from_secs(30),
        }
    }

    /// The isolation of every VM, pinned: no network device, a read-only
    /// root disk, one vCPU, the channel on a virtio-serial port.
    #[test]
    fn a_plain_boot() {
        let args = qemu_args(
            &artifacts(),
            "inst",
            "lpj=1 tsc_early_khz=2",
            &spec(),
            Path::new("/run/sb-1"),
            Accel::Tcg,
            Role::Boot,
        )
        .join(" ");
        assert_eq!(
            args,
            "-M microvm,x-option-roms=off,isa-serial=on,rtc=on -nodefaults -no-user-config -display none \
             -no-reboot -smp 1 -accel tcg,tb-size=64 -m 128M -kernel /img/vmlinuz -initrd /img/initramfs.cpio.gz \
             -append console=ttyS0 quiet panic=-1 lpj=1 tsc_early_khz=2 ignis.runtime=python3 ignis.instance=inst \
             ignis.sandbox=sb-1 -drive id=root,file=/img/rootfs.ext4,format=raw,if=none,readonly=on \
             -device virtio-blk-device,drive=root -device virtio-serial-device \
             -chardev socket,id=ch,path=/run/sb-1/ch.sock,server=on,wait=off \
             -device virtserialport,chardev=ch,name=ignis -device virtio-rng-device \
             -serial file:/run/sb-1/console.log"
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(!args.contains("-netdev") && !args.contains("-nic"));
    }

    #[test]
    fn templates_share_their_ram_and_clones_map_it_privately() {
        let snap = Snapshot::new(
            SnapshotMode::Mapped,
            Runtime::Nodejs,
            256,
            "/snaps/tcg-mapped-nodejs-256m-q".into(),
        );
        let dir = Path::new("/run/sb-1");
        let template = qemu_args(
            &artifacts(),
            "i",
            "",
            &spec(),
            dir,
            Accel::Kvm,
            Role::Template(&snap),
        )
        .join(" ");
        assert!(template.contains("-accel kvm -cpu host"), "{template}");
        assert!(template.contains("memory-backend=mem"));
        assert!(template.contains("share=on"));
        assert!(template.contains("ignis.template=1"));
        assert!(template.contains("-qmp unix:/run/sb-1/qmp.sock,server=on,wait=off"));
        let clone = qemu_args(
            &artifacts(),
            "i",
            "",
            &spec(),
            dir,
            Accel::Tcg,
            Role::Clone(&snap),
        )
        .join(" ");
        assert!(clone.contains("share=off"), "{clone}");
        assert!(clone.ends_with("-incoming defer"));
        assert!(!clone.contains("ignis.template=1"));
    }
}
