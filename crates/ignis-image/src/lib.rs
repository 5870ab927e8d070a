//! The guest root filesystem of every sandbox, built from Debian packages
//! only (`images/rootfs.sh`; no image registry), with the bootstraps
//! embedded in this binary. One recipe, two packagings: the Docker backend
//! imports it as an image (`ignis-docker`), the microVM backend packs it as
//! a kernel + initramfs + ext4 disk ([`microvm`]).
//!
//! Everything is cached by a hash of its inputs ([`input_hash`]) in one
//! machine-wide directory shared by every server: builds are staged under
//! names of their own process, and the first complete one wins.

pub mod microvm;

use std::path::{Path, PathBuf};

/// The root filesystem recipe.
pub const RECIPE: &str = include_str!("../../../images/rootfs.sh");
/// The Python bootstrap, installed as `/opt/ignis/bootstrap.py`.
pub const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");
/// The Node.js bootstrap, installed as `/opt/ignis/bootstrap.js`.
pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.js");
/// PID 1 of a microVM.
pub const GUEST_INIT: &str = include_str!("../../../images/guest-init");
/// The microVM packager.
pub const MICROVM_PACKAGER: &str = include_str!("../../../images/microvm.sh");

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image recipe failed ({status}); its output is above")]
    Recipe { status: String },
    #[error("image build I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The one hash of build inputs: SHA-256 over the parts, each prefixed by
/// its length (so moving bytes from one part to the next changes it),
/// shortened to 16 hex digits.
pub fn input_hash(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend_from_slice(&(p.len() as u64).to_le_bytes());
        joined.extend_from_slice(p);
    }
    ignis_package::sha256_hex(&joined)[..16].to_string()
}

/// Hash of the root filesystem recipe alone.
pub fn rootfs_hash() -> String {
    input_hash(&[RECIPE.as_bytes()])
}

/// Hash of everything in the Docker image: recipe and bootstraps.
pub fn docker_image_hash() -> String {
    input_hash(&[
        RECIPE.as_bytes(),
        PYTHON_BOOTSTRAP.as_bytes(),
        NODE_BOOTSTRAP.as_bytes(),
    ])
}

/// The bootstraps as installed in a sandbox: (path in the guest, content).
pub fn bootstraps() -> [(&'static str, &'static str); 2] {
    [
        ("opt/ignis/bootstrap.py", PYTHON_BOOTSTRAP),
        ("opt/ignis/bootstrap.js", NODE_BOOTSTRAP),
    ]
}

/// Builds the root filesystem into `CACHE/rootfs-HASH/` unless it is there.
pub async fn ensure_rootfs(
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, ImageError> {
    let dir = cache_dir.join(format!("rootfs-{}", rootfs_hash()));
    if dir.join(".complete").exists() {
        progress("root filesystem: cached");
        return Ok(dir);
    }
    tokio::fs::create_dir_all(cache_dir).await?;
    remove_abandoned(cache_dir);
    let pid = std::process::id();
    let staging = cache_dir.join(format!("rootfs-{}.{pid}.partial", rootfs_hash()));
    let script = cache_dir.join(format!("rootfs.{pid}.sh"));
    tokio::fs::write(&script, RECIPE).await?;
    progress("root filesystem: building from Debian packages (about 40 s)");
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&staging)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    if let Some(stdout) = child.stdout.take() {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            progress(&line);
        }
    }
    let status = child.wait().await?;
    let _ = tokio::fs::remove_file(&script).await;
    if !status.success() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
        return Err(ImageError::Recipe {
            status: status.to_string(),
        });
    }
    tokio::fs::write(staging.join(".complete"), b"").await?;
    publish(&staging, &dir, &dir.join(".complete")).await?;
    Ok(dir)
}

/// Removes staging leftovers (`NAME.PID.partial`) of builds whose process
/// is gone (a server killed while building).
pub fn remove_abandoned(cache_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = staging_pid(&name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The process of a staging name `NAME.PID.partial`.
fn staging_pid(name: &str) -> Option<u32> {
    name.strip_suffix(".partial")?
        .rsplit_once('.')?
        .1
        .parse()
        .ok()
}

/// Moves a finished build from `staging` to `dir`, unless another build
/// got there first (`done` exists): then ours is discarded. A partial
/// leftover at `dir` (no `done`) is replaced.
pub async fn publish(staging: &Path, dir: &Path, done: &Path) -> std::io::Result<()> {
    if tokio::fs::try_exists(done).await.unwrap_or(false) {
        return tokio::fs::remove_dir_all(staging).await;
    }
    let _ = tokio::fs::remove_dir_all(dir).await;
    match tokio::fs::rename(staging, dir).await {
        Ok(()) => Ok(()),
        // Lost a race with another server's build.
        Err(_) if tokio::fs::try_exists(done).await.unwrap_or(false) => {
            tokio::fs::remove_dir_all(staging).await
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_separates_its_parts() {
        assert_ne!(input_hash(&[b"ab", b"c"]), input_hash(&[b"a", b"bc"]));
        assert_eq!(input_hash(&[b"x"]), input_hash(&[b"x"]));
        assert_eq!(input_hash(&[b"x"]).len(), 16);
        assert_ne!(rootfs_hash(), docker_image_hash());
    }

    #[test]
    fn staging_names() {
        assert_eq!(staging_pid("rootfs-abc.123.partial"), Some(123));
        assert_eq!(staging_pid("microvm-abc.9.partial"), Some(9));
        assert_eq!(staging_pid("rootfs-abc"), None);
        assert_eq!(staging_pid("rootfs-abc.partial"), None);
    }

    #[tokio::test]
    async fn the_first_complete_build_wins() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("thing");
        let done = dir.join(".complete");
        for (i, content) in ["first", "second"].iter().enumerate() {
            let staging = cache.path().join(format!("thing.{i}.partial"));
            std::fs::create_dir_all(&staging).unwrap();
            std::fs::write(staging.join("content"), content).unwrap();
            std::fs::write(staging.join(".complete"), "").unwrap();
            publish(&staging, &dir, &done).await.unwrap();
            assert!(!staging.exists());
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("content")).unwrap(),
            "first"
        );
        // A leftover of a dead build process is removed.
        let stale = cache.path().join("thing.4000000.partial");
        std::fs::create_dir_all(&stale).unwrap();
        remove_abandoned(cache.path());
        assert!(!stale.exists());
        assert!(dir.exists());
    }
}
