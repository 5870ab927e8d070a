//! The microVM backend: every sandbox is a QEMU `microvm` machine (no PCI,
//! no option ROMs, virtio-mmio devices, direct kernel boot: Firecracker's
//! design on a VMM that Debian ships), booting Debian's kernel and the same
//! root filesystem and bootstraps as the Docker image, read-only.
//!
//! - The channel is a virtio-serial port named `ignis`, backed by a host
//!   Unix socket; the guest init announces itself with one line, then the
//!   bootstrap speaks the usual protocol on the port.
//! - No network device; guest RAM = `memory_mb`; one vCPU; the QEMU process
//!   is capped at `cpus` with a CPU cgroup where the host allows it.
//! - KVM is used when `/dev/kvm` exists and a probe boot answers within a
//!   few seconds; otherwise TCG (software emulation), said in the log and in
//!   `GET /api/v1/health`.

//! - Sandboxes start by restoring a snapshot of a template VM (see
//!   [`snapshot`]) when snapshots are on, booting otherwise.

mod backend;
pub mod snapshot;

pub use backend::{Accel, MicroVmBackend, MicroVmConfig};
pub use ignis_image::microvm as image;
pub use snapshot::SnapshotMode;
