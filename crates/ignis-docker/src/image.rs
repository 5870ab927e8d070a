//! The runtime image, built from Debian packages with the recipe in
//! `images/rootfs.sh` (no registry is needed) and imported into the Engine
//! (`docker import`). Tagged by a hash of the recipe and the bootstraps, so
//! that it is rebuilt only when one of them changes. The root filesystem
//! directory is cached separately (by the recipe's hash alone) and is what
//! the microVM backend packs into a disk image.

use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures::StreamExt;

/// The root filesystem recipe.
pub const RECIPE: &str = include_str!("../../../images/rootfs.sh");
/// The Python bootstrap, installed as `/opt/ignis/bootstrap.py`.
pub const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");
/// The Node.js bootstrap, installed as `/opt/ignis/bootstrap.js`.
pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.js");
/// Repository name of the runtime image.
pub const IMAGE_REPO: &str = "ignis-runtime";

/// Hex sha256 of `parts`, each length-prefixed so that moving bytes from
/// one part to the next changes the hash.
fn hash_hex(parts: &[&str]) -> String {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend_from_slice(&(p.len() as u64).to_le_bytes());
        joined.extend_from_slice(p.as_bytes());
    }
    ignis_package::sha256_hex(&joined)
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("root filesystem recipe failed ({status}); its output is above")]
    Recipe { status: String },
    #[error("image build I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
}

/// Hash of the root filesystem recipe alone.
pub fn rootfs_hash() -> String {
    hash_hex(&[RECIPE])[..16].to_string()
}

/// Hash of everything inside the image.
pub fn image_hash() -> String {
    hash_hex(&[RECIPE, PYTHON_BOOTSTRAP, NODE_BOOTSTRAP])[..16].to_string()
}

/// The tag of the image this build of ignis runs.
pub fn image_tag() -> String {
    format!("{IMAGE_REPO}:{}", image_hash())
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
    // The cache is shared by every server on the machine: each build has
    // its own staging names, and the first complete one wins.
    let staging = cache_dir.join(format!(
        "rootfs-{}.{}.partial",
        rootfs_hash(),
        std::process::id()
    ));
    let script = cache_dir.join(format!("rootfs.{}.sh", std::process::id()));
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
        let Some(pid) = name
            .strip_suffix(".partial")
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
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

/// Whether the image of this build is in the Engine.
pub async fn image_exists(docker: &Docker) -> Result<bool, ImageError> {
    match docker.inspect_image(&image_tag()).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure the runtime image exists in the Engine, building it when
/// missing (or always, with `force`). Returns its tag.
pub async fn ensure_docker_image(
    docker: &Docker,
    cache_dir: &Path,
    force: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, ImageError> {
    let tag = image_tag();
    if !force && image_exists(docker).await? {
        progress(&format!("image {tag}: up to date"));
        return Ok(tag);
    }
    let rootfs = ensure_rootfs(cache_dir, progress).await?;
    progress("image: packing the root filesystem and the bootstraps");
    let archive = tokio::task::spawn_blocking(move || pack(&rootfs))
        .await
        .map_err(std::io::Error::other)??;
    progress(&format!(
        "image: importing {} MiB into the engine",
        archive.len() >> 20
    ));
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(IMAGE_REPO.into()),
        tag: Some(image_hash()),
        ..Default::default()
    };
    let mut stream = docker.create_image(
        Some(options),
        Some(bollard::body_full(archive.into())),
        None,
    );
    while let Some(info) = stream.next().await {
        let info = info?;
        if let Some(status) = info.status {
            progress(&format!("image: {status}"));
        }
    }
    progress(&format!("image {tag}: ready"));
    Ok(tag)
}

/// A tar of the root filesystem plus the bootstraps under `/opt/ignis`.
fn pack(rootfs: &Path) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::with_capacity(256 << 20));
    tar.follow_symlinks(false);
    for entry in std::fs::read_dir(rootfs)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".complete" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            tar.append_dir_all(&name, &path)?;
        } else {
            tar.append_path_with_name(&path, &name)?;
        }
    }
    for (name, content) in [
        ("opt/ignis/bootstrap.py", PYTHON_BOOTSTRAP),
        ("opt/ignis/bootstrap.js", NODE_BOOTSTRAP),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, content.as_bytes())?;
    }
    tar.into_inner()
}
