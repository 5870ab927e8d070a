//! Host-side helpers every backend needs, once: finding processes, waiting
//! for a socket to appear, clearing a run directory, sending a signal. All
//! file-system polling and `/proc` reading happens off the async runtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// Every process's pid and command line (arguments joined by spaces): how
/// VMs are found without a registry (orphans, packagings in use).
pub fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// [`processes`], on the blocking pool.
pub async fn processes_async() -> Vec<(u32, String)> {
    tokio::task::spawn_blocking(processes)
        .await
        .unwrap_or_default()
}

/// Why waiting for a path ended without it.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The deadline passed.
    Timeout,
    /// `gave_up` said to stop (the sandbox died meanwhile).
    GaveUp,
}

/// Waits until `path` exists, polling with a back-off from 0.5 ms to
/// 10 ms, until `deadline`, or until `gave_up()` is true.
pub async fn wait_for_path(
    path: &Path,
    deadline: Instant,
    mut gave_up: impl FnMut() -> bool,
) -> Result<(), WaitError> {
    let mut pause = Duration::from_micros(500);
    loop {
        if tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Ok(());
        }
        if gave_up() {
            return Err(WaitError::GaveUp);
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Removes everything inside `dir` (the run directory of a previous server).
pub async fn clear_dir(dir: &Path) {
    let dir: PathBuf = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    })
    .await;
}

/// SIGKILL to `pid` (an orphaned VMM of a crashed server).
pub fn kill(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_a_path_gives_up_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let p2 = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::fs::write(p2, "").unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(wait_for_path(&path, deadline, || false).await, Ok(()));
        let missing = dir.path().join("never");
        assert_eq!(
            wait_for_path(&missing, deadline, || true).await,
            Err(WaitError::GaveUp)
        );
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(
            wait_for_path(&missing, soon, || false).await,
            Err(WaitError::Timeout)
        );
    }

    #[tokio::test]
    async fn clears_a_directory_but_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        clear_dir(dir.path()).await;
        assert!(dir.path().exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn finds_this_process_and_kills_a_child() {
        let me = std::process::id();
        assert!(processes().iter().any(|(pid, _)| *pid == me));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        kill(child.id()).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
}
