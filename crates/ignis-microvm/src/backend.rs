//! [`MicroVmBackend`]: boots, supervises, kills and measures QEMU microVMs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ignis_core::{BackendKind, Runtime};
use ignis_sandbox::{
    Backend, BackendStatus, Booted, Channel, ExitReason, ResourceUsage, SandboxError,
    SandboxHandle, SandboxSpec,
};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{broadcast, watch, Notify};

use crate::image::Artifacts;

/// The first message of a bootstrap in device mode.
const BOOTED: &str = r#"{"type":"booted"}"#;
/// A KVM probe boot must answer within this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

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
}

#[derive(Clone)]
pub struct MicroVmBackend {
    config: Arc<MicroVmConfig>,
    accel: Accel,
    accel_note: String,
    timing: String,
    deaths: broadcast::Sender<String>,
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
            deaths: broadcast::channel(64).0,
        };
        let (accel, note) = backend.probe().await;
        backend.accel = accel;
        backend.accel_note = note;
        tracing::info!(accel = ?backend.accel, note = %backend.accel_note, "microvm backend ready");
        Ok(backend)
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn accel_note(&self) -> &str {
        &self.accel_note
    }

    async fn probe(&self) -> (Accel, String) {
        if self.config.force_tcg {
            return (Accel::Tcg, "TCG (KVM disabled by configuration)".into());
        }
        if !Path::new("/dev/kvm").exists() {
            return (Accel::Tcg, "TCG (no /dev/kvm)".into());
        }
        let spec = SandboxSpec {
            id: format!("probe-{}", std::process::id()),
            runtime: Runtime::Python3,
            memory_mb: 128,
            cpus: 1.0,
            boot_timeout: PROBE_TIMEOUT,
        };
        match self.launch(&spec, Accel::Kvm).await {
            Ok(booted) => {
                booted.handle.destroy().await;
                (Accel::Kvm, "KVM (probe boot answered)".into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "KVM probe boot failed; falling back to TCG (software emulation, much slower)");
                (Accel::Tcg, format!("TCG (KVM probe failed: {e})"))
            }
        }
    }

    fn args(&self, spec: &SandboxSpec, dir: &Path, accel: Accel) -> Vec<String> {
        let a = &self.config.artifacts;
        let runtime = spec.runtime.as_str();
        let mut v: Vec<String> = [
            "-M",
            "microvm,x-option-roms=off,isa-serial=on,rtc=on",
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
                self.timing, self.config.instance, spec.id
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
        v
    }

    async fn launch(&self, spec: &SandboxSpec, accel: Accel) -> Result<Booted, SandboxError> {
        let dir = self.config.run_dir.join(&spec.id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut child = tokio::process::Command::new(&self.config.qemu)
            .args(self.args(spec, &dir, accel))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SandboxError::Backend(format!("cannot start QEMU: {e}")))?;
        let pid = child.id().unwrap_or(0);
        let cgroup = cap_cpu(&spec.id, pid, spec.cpus);
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
            dir: dir.clone(),
            kill,
            killed,
            exit: exit_rx,
            cgroup,
        });
        match self.connect(&dir, spec.boot_timeout, &handle, stderr).await {
            Ok(channel) => Ok(Booted { handle, channel }),
            Err(e) => {
                handle.destroy().await;
                Err(e)
            }
        }
    }

    /// Connects to the channel socket and waits for the guest's ready line.
    async fn connect(
        &self,
        dir: &Path,
        timeout: Duration,
        vm: &Vm,
        stderr: Option<tokio::process::ChildStderr>,
    ) -> Result<Channel, SandboxError> {
        let sock = dir.join("ch.sock");
        let deadline = tokio::time::Instant::now() + timeout;
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
        let (mut r, w) = stream.into_split();
        let read_line = async {
            let mut line = Vec::new();
            loop {
                let b = r.read_u8().await?;
                if b == b'\n' {
                    return Ok::<_, std::io::Error>(line);
                }
                line.push(b);
            }
        };
        match tokio::time::timeout_at(deadline, read_line).await {
            Err(_) => Err(SandboxError::BootTimeout(timeout)),
            Ok(Err(e)) => Err(SandboxError::BootFailed(format!(
                "guest closed the channel while booting ({e}); console: {}",
                console_tail(dir)
            ))),
            Ok(Ok(line)) if String::from_utf8_lossy(&line).trim() == BOOTED => {
                Ok(Channel::new(r, w))
            }
            Ok(Ok(line)) => Err(SandboxError::BootFailed(format!(
                "unexpected first line from the guest: {}",
                String::from_utf8_lossy(&line)
            ))),
        }
    }
}

fn console_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Caps the VMM process at `cpus` cores with a cgroup v1 CPU controller.
/// Returns the cgroup directory to remove, or `None` where the host does not
/// allow it (then the VM is not capped; logged once per VM at debug level).
fn cap_cpu(id: &str, pid: u32, cpus: f64) -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/sys/fs/cgroup/cpu/ignis-microvm/{id}"));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cpu.cfs_period_us"), "100000")?;
        std::fs::write(
            dir.join("cpu.cfs_quota_us"),
            format!("{}", (cpus * 100_000.0) as u64),
        )?;
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        Ok(())
    })();
    match result {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::debug!(sandbox = id, error = %e, "could not cap the VM's CPU with a cgroup");
            None
        }
    }
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
            detail: format!("QEMU microvm, {}", self.accel_note),
        }
    }

    async fn boot(&self, spec: &SandboxSpec) -> Result<Booted, SandboxError> {
        self.launch(spec, self.accel).await
    }

    fn deaths(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.deaths.subscribe())
    }

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let marker = format!("ignis.instance={}", self.config.instance);
        let mut n = 0;
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let pid = e.file_name().to_string_lossy().to_string();
                if !pid.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&marker)
                    && pid != std::process::id().to_string()
                {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid])
                        .status();
                    n += 1;
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.config.run_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
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
    cgroup: Option<PathBuf>,
}

impl Vm {
    fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    fn read_usage(&self) -> Option<ResourceUsage> {
        if self.pid == 0 || self.exited() {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kb = |key: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
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
        if let Some(cg) = &self.cgroup {
            let _ = tokio::fs::remove_dir(cg).await;
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
        let console = tokio::fs::read_to_string(self.dir.join("console.log"))
            .await
            .unwrap_or_default();
        if console.contains("Out of memory") || console.contains("oom-kill") {
            return ExitReason::OutOfMemory;
        }
        if self.killed.load(Ordering::SeqCst) {
            return ExitReason::Killed;
        }
        // The guest init reports the bootstrap's exit status on the console.
        let bootstrap_code = console
            .lines()
            .rev()
            .find_map(|l| l.split("bootstrap exited with ").nth(1))
            .and_then(|c| c.trim().parse::<i64>().ok());
        ExitReason::Crashed {
            exit_code: bootstrap_code.or(code.map(i64::from)),
        }
    }

    async fn usage(&self) -> Option<ResourceUsage> {
        self.read_usage()
    }

    fn usage_now(&self) -> Option<ResourceUsage> {
        self.read_usage()
    }
}
