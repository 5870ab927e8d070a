//! Host resource use from /proc.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct HostUsage {
    /// CPU use since the previous sample, 0..1 of all cores.
    pub cpu_ratio: f64,
    pub cores: usize,
    pub memory_total_bytes: u64,
    /// Total minus available.
    pub memory_used_bytes: u64,
    pub load1: f64,
}

/// Samples host usage; CPU use is the change between two samples.
#[derive(Debug, Default)]
pub struct HostSampler {
    last: Option<(u64, u64)>,
}

impl HostSampler {
    pub fn sample(&mut self) -> HostUsage {
        let mut u = HostUsage {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ..Default::default()
        };
        if let Some((busy, total)) = cpu_times() {
            if let Some((b0, t0)) = self.last {
                let dt = total.saturating_sub(t0);
                if dt > 0 {
                    u.cpu_ratio = busy.saturating_sub(b0) as f64 / dt as f64;
                }
            }
            self.last = Some((busy, total));
        }
        if let Ok(mem) = std::fs::read_to_string("/proc/meminfo") {
            let field = |name: &str| ignis_core::proc_kib(&mem, name).map_or(0, |kb| kb * 1024);
            u.memory_total_bytes = field("MemTotal:");
            u.memory_used_bytes = u.memory_total_bytes.saturating_sub(field("MemAvailable:"));
        }
        u.load1 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        u
    }
}

/// (busy, total) jiffies over all CPUs.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}
