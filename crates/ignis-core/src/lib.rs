//! Domain types shared by every part of ignis: the function model and its
//! validation, invocation records, and the error vocabulary that the API maps
//! to status codes. This crate does no I/O.

pub mod error;
pub mod function;
pub mod invocation;

pub use error::{ErrorKind, IgnisError};
pub use function::{
    validate_name, validate_route, BackendKind, Function, FunctionConfig, FunctionPatch, Runtime,
    Timestamp,
};
pub use invocation::{InvocationRecord, InvocationStatus, StartKind, Trigger};

/// Current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
