//! Snapshots, the microVM's fast cold start: one template VM per (runtime,
//! memory size) boots to a ready bootstrap and saves its state to a file;
//! further sandboxes are restored from it instead of booting.
//!
//! Two ways to carry guest memory, both measured by the bench:
//! - [`SnapshotMode::Mapped`] (the default, Firecracker's way): the template's
//!   RAM lives in a file (`memory-backend-file`, `share=on`); the migration
//!   stream holds device state only (`x-ignore-shared`). A clone maps the
//!   same file privately (`share=off`): copy-on-write, pages read on demand
//!   and shared in the page cache by every clone.
//! - [`SnapshotMode::Streamed`]: plain guest RAM, all of it in the migration
//!   stream; a clone reads and copies it whole.
//!
//! A clone starts with the template's clock and random state. Its first
//! message is `restore` (docs/protocol.md): the guest's root bootstrap sets
//! the clock, credits fresh host entropy to the kernel and forces a CRNG
//! reseed, reseeds the language's generators, and only then drops to nobody.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ignis_core::Runtime;
use ignis_sandbox::SandboxError;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How a snapshot carries guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Guest RAM in a file, mapped copy-on-write by every clone.
    Mapped,
    /// Guest RAM in the migration stream, copied into every clone.
    Streamed,
}

impl SnapshotMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMode::Mapped => "mapped",
            SnapshotMode::Streamed => "streamed",
        }
    }
}

/// A saved template: what clones of one (runtime, memory size) restore.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub mode: SnapshotMode,
    pub runtime: Runtime,
    pub memory_mb: u32,
    pub dir: PathBuf,
}

impl Snapshot {
    pub fn new(mode: SnapshotMode, runtime: Runtime, memory_mb: u32, dir: PathBuf) -> Self {
        Self {
            mode,
            runtime,
            memory_mb,
            dir,
        }
    }

    /// Guest RAM (mapped mode only).
    pub fn memory(&self) -> PathBuf {
        self.dir.join("memory.ram")
    }

    /// The migration stream: device state, plus RAM when streamed.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.mig")
    }

    pub fn exists(&self) -> bool {
        self.state().exists() && (self.mode == SnapshotMode::Streamed || self.memory().exists())
    }
}

/// A minimal QMP client: one command at a time, events skipped.
pub(crate) struct Qmp {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

fn qmp_error(what: impl std::fmt::Display) -> SandboxError {
    SandboxError::Backend(format!("QMP: {what}"))
}

impl Qmp {
    /// Connects (QEMU creates the socket shortly after it starts) and
    /// negotiates capabilities.
    pub(crate) async fn connect(
        path: &Path,
        deadline: tokio::time::Instant,
    ) -> Result<Self, SandboxError> {
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(qmp_error(format!(
                        "cannot connect to {}: {e}",
                        path.display()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        };
        let (r, w) = stream.into_split();
        let mut qmp = Self {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = qmp.read().await?;
        if greeting.get("QMP").is_none() {
            return Err(qmp_error(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", json!({})).await?;
        Ok(qmp)
    }

    async fn read(&mut self) -> Result<Value, SandboxError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await.map_err(qmp_error)? == 0 {
            return Err(qmp_error("QEMU closed the monitor"));
        }
        serde_json::from_str(&line).map_err(qmp_error)
    }

    /// Runs one command; its `return` value or its error.
    pub(crate) async fn execute(
        &mut self,
        command: &str,
        arguments: Value,
    ) -> Result<Value, SandboxError> {
        let msg = json!({"execute": command, "arguments": arguments});
        let mut bytes = serde_json::to_vec(&msg).map_err(qmp_error)?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await.map_err(qmp_error)?;
        loop {
            let reply = self.read().await?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                return Err(qmp_error(format!("{command}: {}", err["desc"])));
            }
            // An asynchronous event: not the answer.
        }
    }

    /// Polls `query-migrate` until it completes (either direction). Callers
    /// bound it with their own deadline.
    pub(crate) async fn wait_migration(&mut self) -> Result<(), SandboxError> {
        loop {
            let status = self.execute("query-migrate", json!({})).await?;
            match status["status"].as_str().unwrap_or("") {
                "completed" => return Ok(()),
                "failed" | "cancelled" => {
                    return Err(qmp_error(format!(
                        "migration {}: {}",
                        status["status"],
                        status["error-desc"].as_str().unwrap_or("no detail")
                    )))
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Turns on `x-ignore-shared`: shared (file-backed) RAM stays out of the
    /// stream. Both ends of a mapped snapshot need it.
    pub(crate) async fn ignore_shared(&mut self) -> Result<(), SandboxError> {
        self.execute(
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]}),
        )
        .await
        .map(|_| ())
    }
}

/// 32 bytes from the host's CSPRNG, hex: the seed a clone reseeds with.
pub(crate) fn fresh_seed() -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Quotes a path for the `exec:` migration URI (run by `/bin/sh -c`).
pub(crate) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_fresh_hex() {
        let (a, b) = (fresh_seed().unwrap(), fresh_seed().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn exec_paths_are_quoted() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
