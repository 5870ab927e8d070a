//! Durable state of ignis.
//!
//! [`Store`] is the seam: the SQLite implementation ([`SqliteStore`]) is the
//! embedded default; a PostgreSQL one would add an implementation and touch
//! nothing else. Every write is durable before the call returns.

mod blobs;
mod sqlite;

use async_trait::async_trait;
use ignis_core::auth::{AuditEntry, KeyRecord, NamespaceInfo, SessionRecord};
use ignis_core::{
    AsyncEvent, Function, FunctionConfig, FunctionId, FunctionVersion, InvocationRecord,
    InvocationStatus, Scope, TestEvent,
};
use ignis_package::Archive;

pub use blobs::BlobStore;
pub use sqlite::SqliteStore;

/// How many past versions of a function are kept (the current one included).
pub const KEPT_VERSIONS: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a function named `{0}` already exists")]
    NameTaken(String),
    #[error("route `{0}` is already used by another function")]
    RouteTaken(String),
    #[error("function `{0}` does not exist")]
    NotFound(String),
    #[error("namespace `{0}` does not exist")]
    NamespaceNotFound(String),
    #[error("namespace `{0}` already exists")]
    NamespaceTaken(String),
    #[error("namespace `{0}` still holds functions: delete them first")]
    NamespaceNotEmpty(String),
    #[error("function `{name}` changed concurrently (expected version {expected}); retry")]
    VersionMismatch { name: String, expected: u64 },
    #[error("function `{function}` has no version {version}")]
    VersionNotFound { function: String, version: u64 },
    #[error("version {version} of `{function}` is not published: publish it first")]
    NotPublished { function: String, version: u64 },
    #[error("function `{function}` has no alias `{alias}`")]
    AliasNotFound { function: String, alias: String },
    #[error("function `{function}` already has an alias `{alias}`")]
    AliasTaken { function: String, alias: String },
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    QueueFull(String),
    #[error("no asynchronous invocation `{0}`")]
    EventNotFound(String),
    #[error("code blob {0} is missing")]
    BlobMissing(String),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database could not be opened; it is left as it was.
    #[error("{0}")]
    Open(String),
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("code storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A write failed for want of space; it was not made (the transaction
    /// rolled back, a half-written code file removed).
    #[error("the disk of the data directory {dir} is full: nothing was stored; free space there and retry ({source})")]
    DiskFull {
        dir: String,
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// Whether this is SQLite's `SQLITE_FULL` or an I/O `ENOSPC`.
    fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// A write that failed for want of space in `dir`, as `DiskFull`; any
    /// other error as it is.
    pub fn out_of_space_in(self, dir: &std::path::Path) -> Self {
        if self.is_out_of_space() {
            StoreError::DiskFull {
                dir: dir.display().to_string(),
                source: Box::new(self),
            }
        } else {
            self
        }
    }
}

/// Bounds of the asynchronous queue: events not done yet.
#[derive(Debug, Clone, Copy)]
pub struct QueueCaps {
    pub per_function: u64,
    pub total: u64,
}

/// How an attempt of an asynchronous invocation ended.
#[derive(Debug, Clone)]
pub enum EventEnd {
    Succeeded {
        version: u64,
        result: String,
        stdout: String,
        stderr: String,
        invocation_id: String,
        at_ms: i64,
    },
    /// Failed; `retry_at_ms` when an attempt is left, else it is dead.
    Failed {
        version: Option<u64>,
        error_type: String,
        message: String,
        stdout: String,
        stderr: String,
        invocation_id: Option<String>,
        at_ms: i64,
        retry_at_ms: Option<i64>,
        dead_reason: String,
    },
    /// It could not run now (throttled, shutting down): back to the queue,
    /// the attempt not counted.
    Deferred { not_before_ms: i64 },
}

/// One function's asynchronous queue.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct QueueStat {
    pub namespace: String,
    pub function: String,
    /// Queued, or failed with a retry due.
    pub waiting: u64,
    pub running: u64,
    pub dead: u64,
    pub oldest_waiting_ms: Option<i64>,
}

/// Persistent state: namespaces, functions with their versions and code,
/// invocation records, metric rollups, API keys, sessions, the audit log.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a function at a fresh version. Fails with `NameTaken`,
    /// `RouteTaken` or `NamespaceNotFound`.
    async fn create_function(
        &self,
        id: &FunctionId,
        config: &FunctionConfig,
        code: &Archive,
    ) -> Result<Function, StoreError>;

    /// Replaces a function's config and, when given, its code, if its current
    /// version is still `expected_version`; bumps the version.
    async fn update_function(
        &self,
        id: &FunctionId,
        expected_version: u64,
        config: &FunctionConfig,
        code: Option<&Archive>,
    ) -> Result<Function, StoreError>;

    async fn get_function(&self, id: &FunctionId) -> Result<Option<Function>, StoreError>;

    /// Every function of every namespace, by namespace and name.
    async fn list_functions(&self) -> Result<Vec<Function>, StoreError>;

    /// Deletes a function (and its kept versions). Returns whether it
    /// existed. Its code stays until [`Store::collect_garbage`] runs.
    async fn delete_function(&self, id: &FunctionId) -> Result<bool, StoreError>;

    /// The bytes of a code archive.
    async fn read_code(&self, sha256: &str) -> Result<Vec<u8>, StoreError>;

    /// Appends invocation records in one transaction.
    async fn insert_invocations(&self, records: Vec<InvocationRecord>) -> Result<(), StoreError>;

    /// Most recent invocations of a function, newest first, optionally of
    /// one status only.
    async fn list_invocations(
        &self,
        function: &FunctionId,
        limit: u32,
        status: Option<InvocationStatus>,
    ) -> Result<Vec<InvocationRecord>, StoreError>;

    /// One invocation record of a function.
    async fn get_invocation(
        &self,
        function: &FunctionId,
        id: &str,
    ) -> Result<Option<InvocationRecord>, StoreError>;

    /// When the function's newest kept invocation started (Unix ms).
    async fn last_invocation_ms(&self, function: &FunctionId) -> Result<Option<i64>, StoreError>;

    /// Publishes the function's current version (frozen, never pruned),
    /// with a description; an already published one is returned as it is.
    async fn publish_version(
        &self,
        id: &FunctionId,
        expected_version: Option<u64>,
        description: &str,
    ) -> Result<FunctionVersion, StoreError>;

    /// One version as a function to run: its configuration and code.
    async fn get_version(
        &self,
        id: &FunctionId,
        version: u64,
    ) -> Result<Option<Function>, StoreError>;

    /// Deletes a published version (not the current one, nor one an alias
    /// routes to).
    async fn delete_version(&self, id: &FunctionId, version: u64) -> Result<(), StoreError>;

    async fn put_alias(
        &self,
        id: &FunctionId,
        alias: &ignis_core::Alias,
        create: bool,
    ) -> Result<ignis_core::Alias, StoreError>;
    async fn get_alias(
        &self,
        id: &FunctionId,
        name: &str,
    ) -> Result<Option<ignis_core::Alias>, StoreError>;
    async fn list_aliases(&self, id: &FunctionId) -> Result<Vec<ignis_core::Alias>, StoreError>;
    async fn list_all_aliases(&self) -> Result<Vec<(FunctionId, ignis_core::Alias)>, StoreError>;
    async fn delete_alias(&self, id: &FunctionId, name: &str) -> Result<bool, StoreError>;

    /// Stores an asynchronous invocation (durably, before it is
    /// acknowledged), unless the queue of its function or the whole queue
    /// holds `caps` events that are not done.
    async fn enqueue_event(&self, event: &AsyncEvent, caps: QueueCaps) -> Result<(), StoreError>;

    /// Leases up to `limit` due events (queued, or failed with a retry due
    /// at `now_ms`): they become `running` with an attempt counted.
    async fn lease_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError>;

    /// Writes an attempt's end.
    async fn finish_event(&self, id: &str, end: &EventEnd) -> Result<(), StoreError>;

    /// After a restart: events left `running` by the previous run go back
    /// to the queue (their attempt does not count). Returns how many.
    async fn requeue_running_events(&self) -> Result<usize, StoreError>;

    /// Events not done by their deadline become dead letters. Returns them.
    async fn expire_events(&self, now_ms: i64) -> Result<Vec<AsyncEvent>, StoreError>;

    /// A deleted function's waiting events become dead letters.
    async fn kill_events_of(&self, id: &FunctionId, now_ms: i64) -> Result<usize, StoreError>;

    async fn get_event(&self, id: &str) -> Result<Option<AsyncEvent>, StoreError>;

    /// A function's events of one status, newest first.
    async fn list_events(
        &self,
        id: &FunctionId,
        status: Option<ignis_core::AsyncStatus>,
        limit: u32,
    ) -> Result<Vec<AsyncEvent>, StoreError>;

    /// A dead letter goes back to the queue with its attempts reset.
    async fn redrive_event(
        &self,
        id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<AsyncEvent, StoreError>;

    /// Deletes a dead letter.
    async fn delete_event(&self, id: &str) -> Result<bool, StoreError>;

    /// Per function: events waiting (queued or failed), running, dead, and
    /// when the oldest waiting one was accepted.
    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError>;

    /// The kept versions of a function, newest first.
    async fn list_versions(&self, id: &FunctionId) -> Result<Vec<FunctionVersion>, StoreError>;

    /// Saved test events of a function, by name.
    async fn list_test_events(&self, id: &FunctionId) -> Result<Vec<TestEvent>, StoreError>;
    /// Saves (creates or replaces) a test event; `NotFound` without the function.
    async fn put_test_event(&self, id: &FunctionId, event: &TestEvent) -> Result<(), StoreError>;
    /// Returns whether it existed.
    async fn delete_test_event(&self, id: &FunctionId, name: &str) -> Result<bool, StoreError>;

    /// Removes code blobs no function version refers to, except the ones in
    /// `keep`: code that calls in flight still need (a cold start reads the
    /// code of the version its call was accepted for). Returns how many.
    async fn collect_garbage(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<usize, StoreError>;

    /// Writes per-minute rollups (replacing rows of the same part).
    async fn write_rollups(&self, rollups: &[Rollup]) -> Result<(), StoreError>;

    /// Rollups of `scope` for minutes in `[from, to)`.
    async fn read_rollups(
        &self,
        scope: &Scope,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<Rollup>, StoreError>;

    /// Retention: deletes rollups before `rollups_before_minute`, and
    /// invocation records older than `invocations_before_ms` or beyond the
    /// newest `max_invocations`. Returns (rollups, invocations) deleted.
    async fn prune(
        &self,
        rollups_before_minute: i64,
        invocations_before_ms: i64,
        max_invocations: u64,
    ) -> Result<(u64, u64), StoreError>;

    /// Namespaces, by name (`default` always exists).
    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError>;
    async fn create_namespace(&self, name: &str) -> Result<NamespaceInfo, StoreError>;
    /// Fails with `NamespaceNotEmpty` while functions are in it; returns
    /// whether it existed.
    async fn delete_namespace(&self, name: &str) -> Result<bool, StoreError>;

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks a key revoked (and ends its sessions); returns whether it
    /// existed and was not revoked yet.
    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError>;
    /// Records when keys were last used (coalesced, written in one go).
    async fn insert_aws_credential(
        &self,
        credential: &ignis_core::auth::AwsCredentialRecord,
    ) -> Result<(), StoreError>;
    async fn list_aws_credentials(
        &self,
    ) -> Result<Vec<ignis_core::auth::AwsCredentialRecord>, StoreError>;
    /// Revokes one access key id; false when it was not active.
    async fn revoke_aws_credential(
        &self,
        access_key_id: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), StoreError>;

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// Sessions that have not expired by `now_ms` (expired ones are deleted).
    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionRecord>, StoreError>;
    async fn delete_session(&self, digest: &str) -> Result<(), StoreError>;
    async fn touch_sessions(&self, seen: &[(String, i64)]) -> Result<(), StoreError>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The newest `limit` entries, newest first.
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Aggregates of one function (or the system) over one minute, as written
/// by one server run (`part`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub scope: Scope,
    pub minute: i64,
    pub part: String,
    pub requests: u64,
    pub success: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub stem_starts: u64,
    pub init_ms_sum: f64,
    pub init_count: u64,
    pub total_ms_sum: f64,
    pub total_ms_max: f64,
    /// JSON object: error type to count.
    pub errors_by_type: String,
    pub histogram: Vec<u8>,
    pub cpu_ms_sum: f64,
    pub cpu_count: u64,
    pub memory_bytes_sum: f64,
    pub memory_count: u64,
}
