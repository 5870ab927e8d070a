//! Domain types shared by every part of ignis: the function model and its
//! validation, invocation records, and the error vocabulary that the API maps
//! to status codes. This crate does no I/O.

pub mod auth;
pub mod error;
pub mod function;
pub mod http;
pub mod invocation;

pub use error::{ErrorKind, IgnisError};
pub use function::{
    qualified, validate_alias_name, validate_name, validate_namespace, validate_route,
    validate_weights, Alias, BackendKind, CodeInput, CreateFunctionRequest, Function,
    FunctionConfig, FunctionId, FunctionPatch, FunctionVersion, HttpAuth, Qualifier, Runtime,
    TestEvent, Timestamp, UpdateFunctionRequest, ALIAS_PATTERN, DEFAULT_NAMESPACE, NAME_PATTERN,
};
pub use invocation::{
    AsyncEvent, AsyncStatus, InvocationRecord, InvocationStatus, StartKind, Trigger,
};

/// The value of a `Key:   123 kB` line in the text of a /proc file
/// (`/proc/meminfo`, `/proc/PID/status`, `smaps_rollup`), in KiB. `key`
/// includes the colon. Parsing only: the caller reads the file.
pub fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What a metrics window, series or rollup is of: the whole system, or
/// one function (by its label, `name` or `namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    System,
    Function(String),
}

impl Scope {
    pub fn function(label: impl Into<String>) -> Self {
        Scope::Function(label.into())
    }
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_kib_reads_a_field() {
        let text = "MemTotal:       24576000 kB\nMemAvailable:    1234 kB\nPss:  7 kB\n";
        assert_eq!(super::proc_kib(text, "MemAvailable:"), Some(1234));
        assert_eq!(super::proc_kib(text, "Pss:"), Some(7));
        assert_eq!(super::proc_kib(text, "VmRSS:"), None);
    }
}
