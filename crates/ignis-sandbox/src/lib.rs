//! The seam between the engine and the isolation technologies.
//!
//! A [`Backend`] turns a [`SandboxSpec`] into a running sandbox whose
//! bootstrap waits on a byte-stream [`Channel`] (a stem cell); the engine
//! then speaks the [channel protocol](protocol) over it and never cares
//! whether the sandbox is a container or a microVM. [`fake`] is an
//! in-process backend for engine and API tests.

pub mod cgroup;
pub mod channel;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod host;
pub mod protocol;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ignis_core::{BackendKind, Runtime};
use serde::Serialize;

pub use channel::{Channel, ChannelError};

/// What a backend needs to boot a generic sandbox (a stem cell).
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Unique id chosen by the engine (`sb-...`).
    pub id: String,
    pub runtime: Runtime,
    pub memory_mb: u32,
    pub cpus: f64,
    /// Bound on booting to a connected channel.
    pub boot_timeout: Duration,
}

/// A booted sandbox: a handle for its lifecycle and the channel to its
/// bootstrap, which is waiting for `init`.
pub struct Booted {
    pub handle: Arc<dyn SandboxHandle>,
    pub channel: Channel,
}

/// Why a sandbox's channel closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExitReason {
    /// Killed by the kernel for exceeding its memory limit.
    OutOfMemory,
    /// The bootstrap exited or the sandbox died for another reason.
    Crashed { exit_code: Option<i64> },
    /// Killed by ignis (timeout, shutdown).
    Killed,
}

/// Resource use of a sandbox at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResourceUsage {
    pub memory_bytes: u64,
    /// Highest memory use since the sandbox started, where known.
    pub peak_memory_bytes: Option<u64>,
    /// Total CPU time consumed since the sandbox started.
    pub cpu_time_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{backend} backend is unavailable: {reason}")]
    Unavailable {
        backend: BackendKind,
        reason: String,
    },
    #[error("sandbox did not boot within {0:?}")]
    BootTimeout(Duration),
    #[error("sandbox failed to boot: {0}")]
    BootFailed(String),
    /// The bootstrap died while the sandbox booted (out of memory at
    /// start, a crash), as opposed to the backend failing.
    #[error("the sandbox's bootstrap exited while booting ({0:?})")]
    Exited(ExitReason),
    #[error("backend operation failed: {0}")]
    Backend(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Availability and details of a backend, reported by `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub kind: BackendKind,
    pub available: bool,
    /// Human-readable details: engine version, image, acceleration, or what is wrong.
    pub detail: String,
    /// How guest code runs, where the backend has a choice (`kvm`, `tcg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<&'static str>,
}

/// An isolation technology.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;

    /// Whether the backend can run sandboxes now, and how.
    async fn status(&self) -> BackendStatus;

    /// Boots a generic sandbox for `spec.runtime` and connects its channel.
    async fn boot(&self, spec: &SandboxSpec) -> Result<Booted, SandboxError>;

    /// Removes sandboxes a previous run of this instance left behind.
    async fn remove_orphans(&self) -> Result<usize, SandboxError>;

    /// Ids of sandboxes that died on their own (killed from outside,
    /// crashed while idle), as the backend learns of them.
    fn deaths(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Ids of this server's sandboxes that run now: what the engine
    /// resynchronizes from when it may have missed death notifications.
    async fn alive(&self) -> Result<std::collections::HashSet<String>, SandboxError>;
}

impl SandboxError {
    /// Whether the failure is the backend's (it is down, misconfigured,
    /// too slow): those back the backend off; a bootstrap dying at start
    /// (a function's sandbox too small for its runtime) does not.
    pub fn is_backend_failure(&self) -> bool {
        match self {
            SandboxError::Unavailable { .. }
            | SandboxError::BootTimeout(_)
            | SandboxError::BootFailed(_)
            | SandboxError::Backend(_)
            | SandboxError::Io(_) => true,
            SandboxError::Exited(_) => false,
        }
    }
}

/// One running sandbox. Every method is idempotent and safe to call from
/// any task while another task drives the channel.
#[async_trait]
pub trait SandboxHandle: Send + Sync + 'static {
    fn id(&self) -> &str;

    /// Stops the sandbox at once (SIGKILL). Its channel reaches EOF.
    async fn kill(&self);

    /// Kills the sandbox and removes everything it used.
    async fn destroy(&self);

    /// After the channel closed unexpectedly: why the sandbox died. Waits
    /// briefly for the backend to learn it.
    async fn exit_reason(&self) -> ExitReason;

    /// Current resource use, where the backend can tell.
    async fn usage(&self) -> Option<ResourceUsage>;

    /// CPU time and peak memory, read cheaply enough to be called after
    /// every batch (a few microseconds), or `None`.
    fn usage_now(&self) -> Option<ResourceUsage> {
        None
    }
}
