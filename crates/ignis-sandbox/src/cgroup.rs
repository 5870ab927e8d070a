//! Control groups, v1 and v2, for the backends: a container's CPU time and
//! memory (read cheaply after every batch), and a CPU cap on a process (the
//! microVM's VMM). Everything takes the cgroup root (`/sys/fs/cgroup`) as
//! a parameter, so that it is tested against fixture trees of both layouts.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ResourceUsage;

/// Where the host mounts its cgroups.
pub const ROOT: &str = "/sys/fs/cgroup";

/// Which hierarchy a host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One controller per directory (`cpuacct/`, `memory/`, `cpu/`).
    V1,
    /// The unified hierarchy (`cgroup.controllers` at the root).
    V2,
    /// Neither is usable.
    None,
}

/// The layout under `root`.
pub fn detect(root: &Path) -> Layout {
    if root.join("cgroup.controllers").is_file() {
        Layout::V2
    } else if root.join("memory").is_dir() || root.join("cpuacct").is_dir() {
        Layout::V1
    } else {
        Layout::None
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Says once per process that cgroups do not work here (per-call CPU and
/// memory will be missing), instead of failing quietly on every call.
pub fn warn_unusable(why: &str) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            why,
            "cgroups are not usable on this host: per-call CPU and memory are not measured"
        );
    }
}

/// A container's accounting files, kept open: re-reading an open cgroup
/// file from offset 0 is one syscall.
#[derive(Debug)]
pub struct ContainerFiles {
    layout: Layout,
    cpu: File,
    memory: File,
    peak: Option<File>,
}

/// The directories a Docker container's cgroup may be in, by layout and
/// cgroup driver (cgroupfs or systemd).
fn docker_dirs(root: &Path, layout: Layout, id: &str) -> Vec<(PathBuf, PathBuf)> {
    match layout {
        // (memory dir, cpu accounting dir)
        Layout::V1 => vec![
            (
                root.join("memory/docker").join(id),
                root.join("cpuacct/docker").join(id),
            ),
            (
                root.join(format!("memory/system.slice/docker-{id}.scope")),
                root.join(format!("cpuacct/system.slice/docker-{id}.scope")),
            ),
        ],
        Layout::V2 => [
            root.join(format!("system.slice/docker-{id}.scope")),
            root.join("docker").join(id),
        ]
        .into_iter()
        .map(|d| (d.clone(), d))
        .collect(),
        Layout::None => Vec::new(),
    }
}

impl ContainerFiles {
    /// Opens the files of container `id`, or `None` when they are not
    /// there (the container is gone, or the host's layout is unusual).
    pub fn open(root: &Path, layout: Layout, id: &str) -> Option<Self> {
        for (mem, cpu) in docker_dirs(root, layout, id) {
            let files = match layout {
                Layout::V1 => (
                    File::open(cpu.join("cpuacct.usage")),
                    File::open(mem.join("memory.usage_in_bytes")),
                    File::open(mem.join("memory.max_usage_in_bytes")).ok(),
                ),
                Layout::V2 => (
                    File::open(cpu.join("cpu.stat")),
                    File::open(mem.join("memory.current")),
                    File::open(mem.join("memory.peak")).ok(),
                ),
                Layout::None => return None,
            };
            if let (Ok(cpu), Ok(memory), peak) = files {
                return Some(Self {
                    layout,
                    cpu,
                    memory,
                    peak,
                });
            }
        }
        None
    }

    /// CPU time since the container started, memory now and at its peak.
    pub fn read(&self) -> Option<ResourceUsage> {
        let mut buf = [0u8; 512];
        let mut read = |f: &File| -> Option<String> {
            let n = f.read_at(&mut buf, 0).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        let cpu_ms = match self.layout {
            Layout::V1 => read(&self.cpu)?.trim().parse::<u64>().ok()? as f64 / 1e6,
            _ => {
                let stat = read(&self.cpu)?;
                stat.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))?
                    .trim()
                    .parse::<u64>()
                    .ok()? as f64
                    / 1e3
            }
        };
        let memory: u64 = read(&self.memory)?.trim().parse().ok()?;
        let peak = self
            .peak
            .as_ref()
            .and_then(|f| read(f)?.trim().parse::<u64>().ok());
        Some(ResourceUsage {
            memory_bytes: memory,
            peak_memory_bytes: peak,
            cpu_time_ms: cpu_ms,
        })
    }
}

/// A CPU cap on one process: `cpus` cores, in a cgroup of its own that is
/// removed with [`CpuCap::remove`].
#[derive(Debug)]
pub struct CpuCap {
    dir: PathBuf,
}

impl CpuCap {
    /// Creates `GROUP/NAME` under the CPU controller, caps it at `cpus` and
    /// moves `pid` into it.
    pub fn apply(
        root: &Path,
        layout: Layout,
        group: &str,
        name: &str,
        pid: u32,
        cpus: f64,
    ) -> io::Result<Self> {
        let period: u64 = 100_000;
        let quota = ((cpus * period as f64) as u64).max(1000);
        let dir = match layout {
            Layout::V1 => {
                let dir = root.join("cpu").join(group).join(name);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())?;
                std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                dir
            }
            Layout::V2 => {
                // The cpu controller must be enabled for the children of
                // every level above the group.
                let parent = root.join(group);
                std::fs::create_dir_all(&parent)?;
                enable_cpu(&root.join("cgroup.subtree_control"))?;
                enable_cpu(&parent.join("cgroup.subtree_control"))?;
                let dir = parent.join(name);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("cpu.max"), format!("{quota} {period}"))?;
                dir
            }
            Layout::None => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no cgroup hierarchy",
                ))
            }
        };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        Ok(Self { dir })
    }

    /// Removes the cgroup (its process must have exited).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir(&self.dir);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Adds `+cpu` to a `cgroup.subtree_control` unless it is there.
fn enable_cpu(control: &Path) -> io::Result<()> {
    let current = std::fs::read_to_string(control).unwrap_or_default();
    if current.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    std::fs::write(control, "+cpu")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: PathBuf, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn detects_each_layout() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v1.path().join("memory")).unwrap();
        assert_eq!(detect(v1.path()), Layout::V1);
        let v2 = tempfile::tempdir().unwrap();
        write(v2.path().join("cgroup.controllers"), "cpu memory pids\n");
        assert_eq!(detect(v2.path()), Layout::V2);
        let none = tempfile::tempdir().unwrap();
        assert_eq!(detect(none.path()), Layout::None);
    }

    #[test]
    fn reads_a_container_on_cgroup_v1() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r.join("cpuacct/docker/c1/cpuacct.usage"), "2500000000\n");
        write(
            r.join("memory/docker/c1/memory.usage_in_bytes"),
            "1048576\n",
        );
        write(
            r.join("memory/docker/c1/memory.max_usage_in_bytes"),
            "4194304\n",
        );
        let files = ContainerFiles::open(r, Layout::V1, "c1").unwrap();
        let u = files.read().unwrap();
        assert_eq!(u.cpu_time_ms, 2500.0);
        assert_eq!(u.memory_bytes, 1 << 20);
        assert_eq!(u.peak_memory_bytes, Some(4 << 20));
        // Read again after a change: the open file is re-read from 0.
        std::fs::write(r.join("cpuacct/docker/c1/cpuacct.usage"), "3000000000\n").unwrap();
        assert_eq!(files.read().unwrap().cpu_time_ms, 3000.0);
        assert!(ContainerFiles::open(r, Layout::V1, "gone").is_none());
    }

    #[test]
    fn reads_a_container_on_cgroup_v2_with_either_driver() {
        for dir in ["system.slice/docker-c2.scope", "docker/c2"] {
            let root = tempfile::tempdir().unwrap();
            let r = root.path();
            write(r.join("cgroup.controllers"), "cpu memory\n");
            write(
                r.join(dir).join("cpu.stat"),
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
            );
            write(r.join(dir).join("memory.current"), "2097152\n");
            write(r.join(dir).join("memory.peak"), "3145728\n");
            let files = ContainerFiles::open(r, detect(r), "c2").expect(dir);
            let u = files.read().unwrap();
            assert_eq!(u.cpu_time_ms, 1.5, "{dir}");
            assert_eq!(u.memory_bytes, 2 << 20);
            assert_eq!(u.peak_memory_bytes, Some(3 << 20));
        }
    }

    #[test]
    fn caps_a_process_on_either_layout() {
        let v1 = tempfile::tempdir().unwrap();
        let cap = CpuCap::apply(v1.path(), Layout::V1, "ignis-microvm", "sb-1", 42, 0.5).unwrap();
        let d = v1.path().join("cpu/ignis-microvm/sb-1");
        assert_eq!(cap.dir(), d);
        assert_eq!(
            std::fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap(),
            "50000"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("cpu.cfs_period_us")).unwrap(),
            "100000"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("cgroup.procs")).unwrap(),
            "42"
        );

        let v2 = tempfile::tempdir().unwrap();
        write(v2.path().join("cgroup.subtree_control"), "memory\n");
        let cap = CpuCap::apply(v2.path(), Layout::V2, "ignis-microvm", "sb-2", 7, 1.5).unwrap();
        let d = v2.path().join("ignis-microvm/sb-2");
        assert_eq!(cap.dir(), d);
        assert_eq!(
            std::fs::read_to_string(d.join("cpu.max")).unwrap(),
            "150000 100000"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("cgroup.procs")).unwrap(),
            "7"
        );
        // In a real cgroupfs the write adds a controller; here it replaces
        // the file, which is what was asked for.
        assert_eq!(
            std::fs::read_to_string(v2.path().join("cgroup.subtree_control")).unwrap(),
            "+cpu"
        );
        assert!(CpuCap::apply(v2.path(), Layout::None, "g", "n", 1, 1.0).is_err());
    }
}
