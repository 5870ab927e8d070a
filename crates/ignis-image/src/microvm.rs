//! The microVM packaging of the runtime root filesystem: kernel, initramfs
//! and a read-only ext4 image, built by `images/microvm.sh` from the same
//! recipe and bootstraps as the Docker image, cached by their hash and the
//! kernel's.

use std::path::{Path, PathBuf};

use crate::{
    ensure_rootfs, input_hash, publish, ImageError, GUEST_INIT, MICROVM_PACKAGER as PACKAGER,
    NODE_BOOTSTRAP, PYTHON_BOOTSTRAP, RECIPE,
};

/// The files a microVM boots from.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub rootfs: PathBuf,
}

impl Artifacts {
    fn in_dir(dir: &Path) -> Self {
        Self {
            kernel: dir.join("vmlinuz"),
            initramfs: dir.join("initramfs.cpio.gz"),
            rootfs: dir.join("rootfs.ext4"),
        }
    }

    pub fn exist(&self) -> bool {
        self.kernel.exists() && self.initramfs.exists() && self.rootfs.exists()
    }
}

/// The newest installed kernel, `/boot/vmlinuz-VERSION`.
pub fn installed_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// Hash of everything in the microVM packaging, kernel version included.
pub fn microvm_hash() -> String {
    let kernel = installed_kernel()
        .map(|k| k.display().to_string())
        .unwrap_or_default();
    input_hash(&[
        RECIPE.as_bytes(),
        PYTHON_BOOTSTRAP.as_bytes(),
        NODE_BOOTSTRAP.as_bytes(),
        PACKAGER.as_bytes(),
        GUEST_INIT.as_bytes(),
        kernel.as_bytes(),
    ])
}

/// Removes the packagings (and their snapshots) of older recipes or
/// kernels: ~0.5 GiB each. Left alone: an in-progress build (`.partial`) and
/// any packaging a running QEMU uses (another server sharing the directory).
fn remove_stale(cache_dir: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let in_use: Vec<String> = ignis_sandbox::host::processes()
        .into_iter()
        .map(|(_, cmdline)| cmdline)
        .filter(|c| c.contains("qemu"))
        .collect();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let stale = name.starts_with("microvm-")
            && !name.ends_with(".partial")
            && e.path() != current
            && e.path().is_dir()
            && !in_use
                .iter()
                .any(|c| c.contains(&e.path().display().to_string()));
        if stale {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Builds the microVM artifacts under `CACHE/microvm-HASH/` unless there.
pub async fn ensure_microvm_image(
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Artifacts, ImageError> {
    let dir = cache_dir.join(format!("microvm-{}", microvm_hash()));
    let artifacts = Artifacts::in_dir(&dir);
    if artifacts.exist() {
        progress("microvm image: cached");
        return Ok(artifacts);
    }
    let rootfs = ensure_rootfs(cache_dir, progress).await?;
    progress("microvm image: packing kernel, initramfs and ext4 root");
    // Inputs and output under names of this build alone: the cache is
    // shared by every server on the machine.
    let pid = std::process::id();
    let boot = cache_dir.join(format!("microvm-boot.{pid}.partial"));
    tokio::fs::create_dir_all(&boot).await?;
    tokio::fs::write(boot.join("bootstrap.py"), PYTHON_BOOTSTRAP).await?;
    tokio::fs::write(boot.join("bootstrap.js"), NODE_BOOTSTRAP).await?;
    tokio::fs::write(boot.join("guest-init"), GUEST_INIT).await?;
    tokio::fs::write(boot.join("microvm.sh"), PACKAGER).await?;
    let staging = cache_dir.join(format!("microvm-{}.{pid}.partial", microvm_hash()));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let out = tokio::process::Command::new("bash")
        .arg(boot.join("microvm.sh"))
        .arg(&rootfs)
        .arg(&boot)
        .arg(&staging)
        .output()
        .await;
    let _ = tokio::fs::remove_dir_all(&boot).await;
    let out = out?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        progress(line);
    }
    if !out.status.success() {
        progress(&String::from_utf8_lossy(&out.stderr));
        let _ = tokio::fs::remove_dir_all(&staging).await;
        return Err(ImageError::Recipe {
            status: out.status.to_string(),
        });
    }
    publish(&staging, &dir, &artifacts.rootfs).await?;
    remove_stale(cache_dir, &dir);
    Ok(artifacts)
}
