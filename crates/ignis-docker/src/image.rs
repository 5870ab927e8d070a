//! The runtime image: the root filesystem of `ignis-image` (built from
//! Debian packages) plus the bootstraps under `/opt/ignis`, imported into
//! the Engine (`docker import`). Tagged by the hash of its inputs, so that it
//! is rebuilt only when the recipe or a bootstrap changes.

use std::path::Path;

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures::StreamExt;
use ignis_image::{bootstraps, docker_image_hash, ensure_rootfs};

/// Repository name of the runtime image.
pub const IMAGE_REPO: &str = "ignis-runtime";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Build(#[from] ignis_image::ImageError),
    #[error("image build I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
}

/// The tag of the image this build of ignis runs.
pub fn image_tag() -> String {
    format!("{IMAGE_REPO}:{}", docker_image_hash())
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
        tag: Some(docker_image_hash()),
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
    for (name, content) in bootstraps() {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, content.as_bytes())?;
    }
    tar.into_inner()
}
