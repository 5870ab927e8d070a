//! The Docker backend: every sandbox is a hardened container whose bootstrap
//! listens on a Unix socket in a bind-mounted per-sandbox directory.
//!
//! - Talks to the Engine API with `bollard` over its Unix socket.
//! - Watches the Engine's event stream (filtered by this instance's label)
//!   for `oom` and `die`: that is how an OOM kill is told apart from a crash,
//!   also for a container that is already gone.
//! - Reads resource use from the container's cgroup files (a one-shot stats
//!   call would wait for the Engine's 1 s sampling tick).

mod backend;
mod events;
pub mod image;

pub use backend::{command, create_body, run_flags, DockerBackend, DockerConfig};
