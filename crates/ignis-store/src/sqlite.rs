//! The SQLite implementation of [`Store`]: one WAL-mode database file and a
//! blob directory under the data directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ignis_core::auth::{AuditEntry, KeyRecord, NamespaceInfo, SessionRecord};
use ignis_core::{
    now_ms, AsyncEvent, ErrorKind, Function, FunctionConfig, FunctionId, FunctionVersion,
    InvocationRecord, InvocationStatus, Scope, StartKind, TestEvent, Timestamp, Trigger,
};
use ignis_package::Archive;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{BlobStore, EventEnd, QueueCaps, QueueStat, Rollup, Store, StoreError, KEPT_VERSIONS};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// SQLite-backed store. Calls run on tokio's blocking pool; one connection
/// serializes writes, which SQLite does anyway.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    blobs: BlobStore,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when missing) `DATA_DIR/ignis.db` and `DATA_DIR/code/`,
    /// runs migrations and removes code left behind by an interrupted write.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("ignis.db");
        let opened = (|| -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a transaction is on disk when COMMIT returns, so an
            // acknowledged write survives a crash of the machine, not only
            // of the process.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })();
        let mut conn = opened.map_err(|e| {
            let hint = match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                    "it is corrupt or not an ignis database; it was left as it is: restore it from a backup, or move it away to start empty"
                }
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "another process holds it locked (another ignis serve on this data directory?)"
                }
                _ => "it was left as it is",
            };
            StoreError::Open(format!("cannot open {}: {e}: {hint}", path.display()))
        })?;
        let report = embedded::migrations::runner().run(&mut conn)?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "applied database migration");
        }
        let blobs = BlobStore::open(data_dir.join("code"))?;
        let store = Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                blobs,
                path,
            }),
        };
        let removed = store.inner.with_conn(|conn, blobs| {
            let mut removed = collect(conn, blobs, &HashSet::new())?;
            // Files whose row never committed (crash between write and commit).
            let known: std::collections::HashSet<String> = conn
                .prepare("SELECT sha256 FROM code_blobs")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for sha in blobs.list()? {
                if !known.contains(&sha) {
                    blobs.remove(&sha)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })?;
        if removed > 0 {
            tracing::info!(removed, "removed unreferenced code archives");
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &BlobStore) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.with_conn(f).map_err(|e| match inner.path.parent() {
                Some(dir) => e.out_of_space_in(dir),
                None => e,
            })
        })
        .await?
    }
}

impl Inner {
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection, &BlobStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is usable.
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn, &self.blobs)
    }
}

fn insert_records(conn: &mut Connection, records: &[InvocationRecord]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(INSERT_INVOCATION)?;
        for r in records {
            stmt.execute(params![
                r.id,
                r.function,
                r.version as i64,
                r.backend.as_str(),
                r.trigger.as_str(),
                r.started_at_ms,
                r.queue_ms,
                r.init_ms,
                r.exec_ms,
                r.total_ms,
                r.start.map(StartKind::as_str),
                r.batch_size as i64,
                r.status.as_str(),
                r.error_type.map(ErrorKind::as_str),
                r.error_message,
                r.response_bytes as i64,
                r.peak_memory_bytes.map(|v| v as i64),
                r.cpu_ms,
                r.stdout,
                r.stderr,
                r.logs_truncated as i64,
                r.sandbox_id,
                r.namespace,
                r.error_stack,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn ts(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn function_from_row(row: &Row<'_>) -> rusqlite::Result<Function> {
    let config: String = row.get("config")?;
    let config = serde_json::from_str(&config).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Function {
        namespace: row.get("namespace")?,
        name: row.get("name")?,
        version: row.get::<_, i64>("version")? as u64,
        config,
        code_sha256: row.get("code_sha256")?,
        code_size_bytes: row.get::<_, i64>("code_size_bytes")? as u64,
        created_at: ts(row.get("created_at")?),
        updated_at: ts(row.get("updated_at")?),
        source_sha256: row.get("source_sha256")?,
        published: false,
    })
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<AsyncEvent> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let raw = |text: String, i: usize| {
        serde_json::value::RawValue::from_string(text).map_err(|e| bad(i, e.to_string()))
    };
    let status: String = r.get("status")?;
    Ok(AsyncEvent {
        id: r.get("id")?,
        namespace: r.get("namespace")?,
        function: r.get("function")?,
        qualifier: r.get("qualifier")?,
        event: raw(r.get("event")?, 4)?,
        status: ignis_core::AsyncStatus::parse(&status)
            .ok_or_else(|| bad(5, format!("unknown status {status}")))?,
        attempts: r.get::<_, i64>("attempts")? as u32,
        max_retries: r.get::<_, i64>("max_retries")? as u32,
        enqueued_at_ms: r.get("enqueued_at")?,
        expires_at_ms: r.get("expires_at")?,
        not_before_ms: r.get("not_before")?,
        version: r.get::<_, Option<i64>>("version")?.map(|v| v as u64),
        result: r
            .get::<_, Option<String>>("result")?
            .map(|t| raw(t, 0))
            .transpose()?,
        error_type: r.get("error_type")?,
        error_message: r.get("error_message")?,
        stdout: r.get::<_, Option<String>>("stdout")?.unwrap_or_default(),
        stderr: r.get::<_, Option<String>>("stderr")?.unwrap_or_default(),
        last_invocation_id: r.get("last_invocation")?,
        started_at_ms: r.get("started_at")?,
        finished_at_ms: r.get("finished_at")?,
        dead_reason: r.get("dead_reason")?,
    })
}

fn version_from_row(r: &Row<'_>) -> rusqlite::Result<FunctionVersion> {
    let config: String = r.get(1)?;
    Ok(FunctionVersion {
        version: r.get::<_, i64>(0)? as u64,
        config: serde_json::from_str(&config).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
        code_sha256: r.get(2)?,
        created_at: ts(r.get(3)?),
        published: r.get::<_, i64>(4)? != 0,
        description: r.get(5)?,
    })
}

/// An alias from columns `name, version, weights, description, revision,
/// created_at, updated_at` starting at `first`.
fn alias_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<ignis_core::Alias> {
    let weights: String = r.get(first + 2)?;
    Ok(ignis_core::Alias {
        name: r.get(first)?,
        version: r.get::<_, i64>(first + 1)? as u64,
        weights: serde_json::from_str(&weights).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                first + 2,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        })?,
        description: r.get(first + 3)?,
        revision_id: r.get(first + 4)?,
        created_at_ms: r.get(first + 5)?,
        updated_at_ms: r.get(first + 6)?,
    })
}

fn alias_of(
    conn: &Connection,
    id: &FunctionId,
    name: &str,
) -> Result<Option<ignis_core::Alias>, StoreError> {
    conn.query_row(
        "SELECT name, version, weights, description, revision, created_at, updated_at
         FROM aliases WHERE namespace = ?1 AND function = ?2 AND name = ?3",
        params![id.namespace, id.name, name],
        |r| alias_from_row(r, 0),
    )
    .optional()
    .map_err(Into::into)
}

fn aliases_of(conn: &Connection, id: &FunctionId) -> Result<Vec<ignis_core::Alias>, StoreError> {
    let rows = conn
        .prepare(
            "SELECT name, version, weights, description, revision, created_at, updated_at
             FROM aliases WHERE namespace = ?1 AND function = ?2 ORDER BY name",
        )?
        .query_map(params![id.namespace, id.name], |r| alias_from_row(r, 0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn get(conn: &Connection, id: &FunctionId) -> Result<Option<Function>, StoreError> {
    conn.query_row(
        "SELECT * FROM functions WHERE namespace = ?1 AND name = ?2",
        params![id.namespace, id.name],
        function_from_row,
    )
    .optional()
    .map_err(Into::into)
}

/// Maps a constraint violation to what it is about.
fn conflict(e: rusqlite::Error, id: &FunctionId, config: &FunctionConfig) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e {
        if err.code == rusqlite::ErrorCode::ConstraintViolation {
            if msg.contains("functions.route") {
                return StoreError::RouteTaken(config.route.clone().unwrap_or_default());
            }
            if msg.contains("functions.namespace, functions.name") {
                return StoreError::NameTaken(id.to_string());
            }
            if msg.contains("FOREIGN KEY") {
                return StoreError::NamespaceNotFound(id.namespace.clone());
            }
        }
    }
    e.into()
}

fn put_code(conn: &Connection, blobs: &BlobStore, code: &Archive) -> Result<(), StoreError> {
    blobs.put(&code.sha256, &code.bytes)?;
    conn.execute(
        "INSERT OR IGNORE INTO code_blobs (sha256, size_bytes, created_at) VALUES (?1, ?2, ?3)",
        params![code.sha256, code.bytes.len() as i64, now_ms()],
    )?;
    Ok(())
}

fn config_json(config: &FunctionConfig) -> Result<String, StoreError> {
    serde_json::to_string(config).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// How a scope is stored in `metric_rollups.function`: the system as an
/// empty string (no function has that name).
fn scope_column(scope: &Scope) -> &str {
    match scope {
        Scope::System => "",
        Scope::Function(f) => f,
    }
}

/// Deletes blobs no function or kept version refers to, except those in
/// `keep` (code that work in flight still needs).
fn collect(
    conn: &Connection,
    blobs: &BlobStore,
    keep: &HashSet<String>,
) -> Result<usize, StoreError> {
    let dead: Vec<String> = conn
        .prepare(
            "SELECT sha256 FROM code_blobs WHERE sha256 NOT IN
                (SELECT code_sha256 FROM functions UNION SELECT code_sha256 FROM function_versions)",
        )?
        .query_map([], |r| r.get::<_, String>(0))?
        .filter(|sha| sha.as_ref().map_or(true, |sha| !keep.contains(sha)))
        .collect::<Result<_, _>>()?;
    for sha in &dead {
        conn.execute("DELETE FROM code_blobs WHERE sha256 = ?1", [sha])?;
        blobs.remove(sha)?;
    }
    Ok(dead.len())
}

fn next_version(conn: &Connection, id: &FunctionId) -> Result<i64, StoreError> {
    let v: i64 = conn.query_row(
        "INSERT INTO version_counters (namespace, name, last_version) VALUES (?1, ?2, 1)
         ON CONFLICT(namespace, name) DO UPDATE SET last_version = last_version + 1
         RETURNING last_version",
        params![id.namespace, id.name],
        |r| r.get(0),
    )?;
    Ok(v)
}

const INSERT_INVOCATION: &str = "INSERT INTO invocations (
    id, function, version, backend, trigger, started_at_ms, queue_ms, init_ms, exec_ms, total_ms,
    start_kind, batch_size, status, error_type, error_message, response_bytes, peak_memory_bytes,
    cpu_ms, stdout, stderr, logs_truncated, sandbox_id, namespace, error_stack)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

fn invocation_from_row(row: &Row<'_>) -> rusqlite::Result<InvocationRecord> {
    let text = |col: &str| -> rusqlite::Result<String> { row.get(col) };
    let backend = text("backend")?.parse().unwrap_or_default();
    let trigger = match text("trigger")?.as_str() {
        "http" => Trigger::Http,
        "async" => Trigger::Async,
        _ => Trigger::Api,
    };
    let start = row
        .get::<_, Option<String>>("start_kind")?
        .and_then(|s| match s.as_str() {
            "cold" => Some(StartKind::Cold),
            "stem" => Some(StartKind::Stem),
            "warm" => Some(StartKind::Warm),
            _ => None,
        });
    let status = match text("status")?.as_str() {
        "success" => InvocationStatus::Success,
        "timeout" => InvocationStatus::Timeout,
        "throttled" => InvocationStatus::Throttled,
        _ => InvocationStatus::Error,
    };
    Ok(InvocationRecord {
        id: text("id")?,
        namespace: text("namespace")?,
        function: text("function")?,
        version: row.get::<_, i64>("version")? as u64,
        backend,
        trigger,
        started_at_ms: row.get("started_at_ms")?,
        queue_ms: row.get("queue_ms")?,
        init_ms: row.get("init_ms")?,
        exec_ms: row.get("exec_ms")?,
        total_ms: row.get("total_ms")?,
        start,
        batch_size: row.get::<_, i64>("batch_size")? as u32,
        status,
        error_type: row
            .get::<_, Option<String>>("error_type")?
            .and_then(|s| ErrorKind::parse(&s)),
        error_message: row.get("error_message")?,
        error_stack: row.get("error_stack")?,
        response_bytes: row.get::<_, i64>("response_bytes")? as u64,
        peak_memory_bytes: row
            .get::<_, Option<i64>>("peak_memory_bytes")?
            .map(|v| v as u64),
        cpu_ms: row.get("cpu_ms")?,
        stdout: text("stdout")?,
        stderr: text("stderr")?,
        logs_truncated: row.get::<_, i64>("logs_truncated")? != 0,
        sandbox_id: row.get("sandbox_id")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_function(
        &self,
        id: &FunctionId,
        config: &FunctionConfig,
        code: &Archive,
    ) -> Result<Function, StoreError> {
        let (id, config, code) = (id.clone(), config.clone(), code.clone());
        self.run(move |conn, blobs| {
            let json = config_json(&config)?;
            let tx = conn.transaction()?;
            if get(&tx, &id)?.is_some() {
                return Err(StoreError::NameTaken(id.to_string()));
            }
            let ns_exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM namespaces WHERE name = ?1)",
                [&id.namespace],
                |r| r.get(0),
            )?;
            if !ns_exists {
                return Err(StoreError::NamespaceNotFound(id.namespace.clone()));
            }
            put_code(&tx, blobs, &code)?;
            let version = next_version(&tx, &id)?;
            let now = now_ms();
            let source = code.source_sha256.clone().unwrap_or_else(|| code.sha256.clone());
            tx.execute(
                "INSERT INTO functions (namespace, name, version, route, config, code_sha256, code_size_bytes, created_at, updated_at, source_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
                params![id.namespace, id.name, version, config.route, json, code.sha256, code.bytes.len() as i64, now, source],
            )
            .map_err(|e| conflict(e, &id, &config))?;
            tx.execute(
                "INSERT INTO function_versions (namespace, function, version, config, code_sha256, created_at, source_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id.namespace, id.name, version, json, code.sha256, now, source],
            )?;
            let f = get(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            tx.commit()?;
            Ok(f)
        })
        .await
    }

    async fn update_function(
        &self,
        id: &FunctionId,
        expected_version: u64,
        config: &FunctionConfig,
        code: Option<&Archive>,
    ) -> Result<Function, StoreError> {
        let (id, config, code) = (id.clone(), config.clone(), code.cloned());
        self.run(move |conn, blobs| {
            let json = config_json(&config)?;
            let tx = conn.transaction()?;
            let current = get(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if current.version != expected_version {
                return Err(StoreError::VersionMismatch {
                    name: id.to_string(),
                    expected: expected_version,
                });
            }
            let (sha, size, source) = match &code {
                Some(code) => {
                    put_code(&tx, blobs, code)?;
                    (
                        code.sha256.clone(),
                        code.bytes.len() as u64,
                        code.source_sha256.clone().unwrap_or_else(|| code.sha256.clone()),
                    )
                }
                None => (
                    current.code_sha256.clone(),
                    current.code_size_bytes,
                    current
                        .source_sha256
                        .clone()
                        .unwrap_or_else(|| current.code_sha256.clone()),
                ),
            };
            let version = next_version(&tx, &id)?;
            let now = now_ms();
            tx.execute(
                "UPDATE functions SET version = ?3, route = ?4, config = ?5, code_sha256 = ?6,
                        code_size_bytes = ?7, updated_at = ?8, source_sha256 = ?9
                 WHERE namespace = ?1 AND name = ?2",
                params![id.namespace, id.name, version, config.route, json, sha, size as i64, now, source],
            )
            .map_err(|e| conflict(e, &id, &config))?;
            tx.execute(
                "INSERT INTO function_versions (namespace, function, version, config, code_sha256, created_at, source_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id.namespace, id.name, version, json, sha, now, source],
            )?;
            // Published versions are kept whatever their age.
            tx.execute(
                "DELETE FROM function_versions WHERE namespace = ?1 AND function = ?2 AND version <= ?3
                    AND published = 0",
                params![id.namespace, id.name, version - KEPT_VERSIONS],
            )?;
            let f = get(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            tx.commit()?;
            Ok(f)
        })
        .await
    }

    async fn get_function(&self, id: &FunctionId) -> Result<Option<Function>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| get(conn, &id)).await
    }

    async fn list_functions(&self) -> Result<Vec<Function>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare("SELECT * FROM functions ORDER BY namespace, name")?
                .query_map([], function_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_function(&self, id: &FunctionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM functions WHERE namespace = ?1 AND name = ?2",
                params![id.namespace, id.name],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    /// Reads the file without the database's lock: a cold start never
    /// waits behind a batch of record inserts.
    async fn read_code(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let sha = sha256.to_string();
        let blobs = self.inner.blobs.clone();
        tokio::task::spawn_blocking(move || {
            blobs.get(&sha).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StoreError::BlobMissing(sha),
                _ => e.into(),
            })
        })
        .await?
    }

    async fn insert_invocations(&self, records: Vec<InvocationRecord>) -> Result<(), StoreError> {
        self.run(move |conn, _| {
            // Records are telemetry, not acknowledged writes: their commit
            // does not wait for the disk (NORMAL, in WAL mode: a crash of
            // the process loses nothing, a power loss at most the records
            // since the last FULL commit or checkpoint). Every other write
            // on this connection stays FULL, and its fsync of the log
            // carries the records written before it.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let written = insert_records(conn, &records);
            conn.pragma_update(None, "synchronous", "FULL")?;
            written
        })
        .await
    }

    async fn list_invocations(
        &self,
        function: &FunctionId,
        limit: u32,
        status: Option<InvocationStatus>,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let function = function.clone();
        self.run(move |conn, _| {
            let rows = conn
                .prepare_cached(
                    "SELECT * FROM invocations WHERE namespace = ?1 AND function = ?2
                        AND (?4 IS NULL OR status = ?4)
                     ORDER BY started_at_ms DESC, rowid DESC LIMIT ?3",
                )?
                .query_map(
                    params![
                        function.namespace,
                        function.name,
                        limit,
                        status.map(InvocationStatus::as_str)
                    ],
                    invocation_from_row,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn collect_garbage(&self, keep: &HashSet<String>) -> Result<usize, StoreError> {
        let keep = keep.clone();
        self.run(move |conn, blobs| collect(conn, blobs, &keep))
            .await
    }

    async fn write_rollups(&self, rollups: &[Rollup]) -> Result<(), StoreError> {
        let rollups = rollups.to_vec();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO metric_rollups (function, minute, part, requests, success,
                        errors, timeouts, throttles, cold_starts, stem_starts, init_ms_sum, init_count,
                        total_ms_sum, total_ms_max, errors_by_type, histogram, cpu_ms_sum, cpu_count,
                        memory_bytes_sum, memory_count)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                        ?17, ?18, ?19, ?20)",
                )?;
                for r in &rollups {
                    stmt.execute(params![
                        scope_column(&r.scope),
                        r.minute,
                        r.part,
                        r.requests as i64,
                        r.success as i64,
                        r.errors as i64,
                        r.timeouts as i64,
                        r.throttles as i64,
                        r.cold_starts as i64,
                        r.stem_starts as i64,
                        r.init_ms_sum,
                        r.init_count as i64,
                        r.total_ms_sum,
                        r.total_ms_max,
                        r.errors_by_type,
                        r.histogram,
                        r.cpu_ms_sum,
                        r.cpu_count as i64,
                        r.memory_bytes_sum,
                        r.memory_count as i64,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn read_rollups(
        &self,
        scope: &Scope,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<Rollup>, StoreError> {
        let function = scope_column(scope).to_string();
        self.run(move |conn, _| {
            let rows = conn
                .prepare_cached(
                    "SELECT * FROM metric_rollups WHERE function = ?1 AND minute >= ?2 AND minute < ?3
                     ORDER BY minute",
                )?
                .query_map(params![function, from_minute, to_minute], |row| {
                    let u = |c: &str| row.get::<_, i64>(c).map(|v| v as u64);
                    let function: String = row.get("function")?;
                    Ok(Rollup {
                        scope: if function.is_empty() {
                            Scope::System
                        } else {
                            Scope::Function(function)
                        },
                        minute: row.get("minute")?,
                        part: row.get("part")?,
                        requests: u("requests")?,
                        success: u("success")?,
                        errors: u("errors")?,
                        timeouts: u("timeouts")?,
                        throttles: u("throttles")?,
                        cold_starts: u("cold_starts")?,
                        stem_starts: u("stem_starts")?,
                        init_ms_sum: row.get("init_ms_sum")?,
                        init_count: u("init_count")?,
                        total_ms_sum: row.get("total_ms_sum")?,
                        total_ms_max: row.get("total_ms_max")?,
                        errors_by_type: row.get("errors_by_type")?,
                        histogram: row.get("histogram")?,
                        cpu_ms_sum: row.get("cpu_ms_sum")?,
                        cpu_count: u("cpu_count")?,
                        memory_bytes_sum: row.get("memory_bytes_sum")?,
                        memory_count: u("memory_count")?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn prune(
        &self,
        rollups_before_minute: i64,
        invocations_before_ms: i64,
        max_invocations: u64,
    ) -> Result<(u64, u64), StoreError> {
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let rollups = tx.execute(
                "DELETE FROM metric_rollups WHERE minute < ?1",
                [rollups_before_minute],
            )?;
            // Records are appended as calls finish, so rowid order is time
            // order but for calls that ran long: the old records are a
            // prefix of the table. Its end is the first young record in
            // rowid order, found by walking only the prefix, where a
            // `WHERE started_at_ms < ?` read the whole table on every run
            // (53 MB every 10 s in the soak). An old record written after a
            // young one goes once the records before it are old too: kept
            // longer by at most its call's duration, never deleted early.
            let first_young: Option<i64> = tx
                .query_row(
                    "SELECT rowid FROM invocations WHERE started_at_ms >= ?1
                     ORDER BY rowid LIMIT 1",
                    [invocations_before_ms],
                    |row| row.get(0),
                )
                .optional()?;
            let mut invocations = match first_young {
                Some(rowid) => tx.execute("DELETE FROM invocations WHERE rowid < ?1", [rowid])?,
                None => tx.execute("DELETE FROM invocations", [])?,
            };
            // The record bound: the newest `max_invocations` are kept.
            invocations += tx.execute(
                "DELETE FROM invocations WHERE rowid <= (SELECT max(rowid) FROM invocations) - ?1",
                [max_invocations as i64],
            )?;
            tx.commit()?;
            Ok((rollups as u64, invocations as u64))
        })
        .await
    }

    async fn get_invocation(
        &self,
        function: &FunctionId,
        id: &str,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let (function, id) = (function.clone(), id.to_string());
        self.run(move |conn, _| {
            conn.query_row(
                "SELECT * FROM invocations WHERE namespace = ?1 AND function = ?2 AND id = ?3",
                params![function.namespace, function.name, id],
                invocation_from_row,
            )
            .optional()
            .map_err(Into::into)
        })
        .await
    }

    async fn last_invocation_ms(&self, function: &FunctionId) -> Result<Option<i64>, StoreError> {
        let function = function.clone();
        self.run(move |conn, _| {
            // The (namespace, function, started_at_ms) index answers this
            // without a scan.
            conn.query_row(
                "SELECT MAX(started_at_ms) FROM invocations WHERE namespace = ?1 AND function = ?2",
                params![function.namespace, function.name],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map_err(Into::into)
        })
        .await
    }

    async fn enqueue_event(&self, event: &AsyncEvent, caps: QueueCaps) -> Result<(), StoreError> {
        let e = event.clone();
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let total: i64 = tx.query_row(
                "SELECT COUNT(*) FROM async_events WHERE status IN ('queued', 'failed', 'running')",
                [],
                |r| r.get(0),
            )?;
            if total as u64 >= caps.total {
                return Err(StoreError::QueueFull(format!(
                    "the asynchronous queue holds {total} events (at most {})",
                    caps.total
                )));
            }
            let mine: i64 = tx.query_row(
                "SELECT COUNT(*) FROM async_events WHERE namespace = ?1 AND function = ?2
                    AND status IN ('queued', 'failed', 'running')",
                params![e.namespace, e.function],
                |r| r.get(0),
            )?;
            if mine as u64 >= caps.per_function {
                return Err(StoreError::QueueFull(format!(
                    "{mine} asynchronous events of `{}` are waiting (at most {})",
                    ignis_core::qualified(&e.namespace, &e.function),
                    caps.per_function
                )));
            }
            tx.execute(
                "INSERT INTO async_events (id, namespace, function, qualifier, event, status, attempts,
                    max_retries, enqueued_at, expires_at, not_before)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?7, ?8, ?9)",
                params![
                    e.id,
                    e.namespace,
                    e.function,
                    e.qualifier,
                    e.event.get(),
                    e.max_retries,
                    e.enqueued_at_ms,
                    e.expires_at_ms,
                    e.not_before_ms
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn lease_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError> {
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let rows: Vec<AsyncEvent> = tx
                .prepare_cached(
                    "UPDATE async_events SET status = 'running', attempts = attempts + 1,
                        started_at = ?1, lease_until = ?1
                     WHERE id IN (SELECT id FROM async_events
                        WHERE status IN ('queued', 'failed') AND not_before <= ?1
                        ORDER BY not_before, enqueued_at LIMIT ?2)
                     RETURNING *",
                )?
                .query_map(params![now_ms, limit as i64], event_from_row)?
                .collect::<Result<_, _>>()?;
            tx.commit()?;
            Ok(rows)
        })
        .await
    }

    async fn finish_event(&self, id: &str, end: &EventEnd) -> Result<(), StoreError> {
        let (id, end) = (id.to_string(), end.clone());
        self.run(move |conn, _| {
            match end {
                EventEnd::Succeeded {
                    version,
                    result,
                    stdout,
                    stderr,
                    invocation_id,
                    at_ms,
                } => conn.execute(
                    "UPDATE async_events SET status = 'succeeded', version = ?2, result = ?3,
                        stdout = ?4, stderr = ?5, last_invocation = ?6, finished_at = ?7,
                        error_type = NULL, error_message = NULL, lease_until = NULL
                     WHERE id = ?1 AND status = 'running'",
                    params![id, version as i64, result, stdout, stderr, invocation_id, at_ms],
                )?,
                EventEnd::Failed {
                    version,
                    error_type,
                    message,
                    stdout,
                    stderr,
                    invocation_id,
                    at_ms,
                    retry_at_ms,
                    dead_reason,
                } => conn.execute(
                    "UPDATE async_events SET status = CASE WHEN ?8 IS NULL THEN 'dead' ELSE 'failed' END,
                        not_before = coalesce(?8, not_before), version = ?2, error_type = ?3,
                        error_message = ?4, stdout = ?5, stderr = ?6, last_invocation = ?7,
                        finished_at = ?9, lease_until = NULL,
                        dead_reason = CASE WHEN ?8 IS NULL THEN ?10 ELSE NULL END
                     WHERE id = ?1 AND status = 'running'",
                    params![
                        id,
                        version.map(|v| v as i64),
                        error_type,
                        message,
                        stdout,
                        stderr,
                        invocation_id,
                        retry_at_ms,
                        at_ms,
                        dead_reason
                    ],
                )?,
                EventEnd::Deferred { not_before_ms } => conn.execute(
                    "UPDATE async_events SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'queued' END,
                        attempts = attempts - 1, not_before = ?2, lease_until = NULL
                     WHERE id = ?1 AND status = 'running'",
                    params![id, not_before_ms],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn requeue_running_events(&self) -> Result<usize, StoreError> {
        self.run(|conn, _| {
            let n = conn.execute(
                "UPDATE async_events SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'queued' END,
                    attempts = attempts - 1, lease_until = NULL
                 WHERE status = 'running'",
                [],
            )?;
            Ok(n)
        })
        .await
    }

    async fn expire_events(&self, now_ms: i64) -> Result<Vec<AsyncEvent>, StoreError> {
        self.run(move |conn, _| {
            let rows = conn
                .prepare_cached(
                    "UPDATE async_events SET status = 'dead', dead_reason = 'max age', finished_at = ?1
                     WHERE status IN ('queued', 'failed') AND expires_at <= ?1
                     RETURNING *",
                )?
                .query_map([now_ms], event_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn kill_events_of(&self, id: &FunctionId, now_ms: i64) -> Result<usize, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let n = conn.execute(
                "UPDATE async_events SET status = 'dead', dead_reason = 'function deleted', finished_at = ?3
                 WHERE namespace = ?1 AND function = ?2 AND status IN ('queued', 'failed')",
                params![id.namespace, id.name, now_ms],
            )?;
            Ok(n)
        })
        .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<AsyncEvent>, StoreError> {
        let id = id.to_string();
        self.run(move |conn, _| {
            conn.query_row(
                "SELECT * FROM async_events WHERE id = ?1",
                [&id],
                event_from_row,
            )
            .optional()
            .map_err(Into::into)
        })
        .await
    }

    async fn list_events(
        &self,
        id: &FunctionId,
        status: Option<ignis_core::AsyncStatus>,
        limit: u32,
    ) -> Result<Vec<AsyncEvent>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let rows = conn
                .prepare_cached(
                    "SELECT * FROM async_events WHERE namespace = ?1 AND function = ?2
                        AND (?3 IS NULL OR status = ?3)
                     ORDER BY enqueued_at DESC, id LIMIT ?4",
                )?
                .query_map(
                    params![id.namespace, id.name, status.map(|s| s.as_str()), limit],
                    event_from_row,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn redrive_event(
        &self,
        id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<AsyncEvent, StoreError> {
        let id = id.to_string();
        self.run(move |conn, _| {
            let e = conn
                .query_row(
                    "UPDATE async_events SET status = 'queued', attempts = 0, not_before = ?2,
                        enqueued_at = ?2, expires_at = ?3, dead_reason = NULL, finished_at = NULL
                     WHERE id = ?1 AND status = 'dead' RETURNING *",
                    params![id, now_ms, expires_at_ms],
                    event_from_row,
                )
                .optional()?;
            e.ok_or(StoreError::EventNotFound(id))
        })
        .await
    }

    async fn delete_event(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |conn, _| {
            let n = conn.execute(
                "DELETE FROM async_events WHERE id = ?1 AND status = 'dead'",
                [&id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare_cached(
                    "SELECT namespace, function,
                        SUM(status IN ('queued', 'failed')), SUM(status = 'running'), SUM(status = 'dead'),
                        MIN(CASE WHEN status IN ('queued', 'failed') THEN enqueued_at END)
                     FROM async_events WHERE status IN ('queued', 'failed', 'running', 'dead')
                     GROUP BY namespace, function ORDER BY namespace, function",
                )?
                .query_map([], |r| {
                    Ok(QueueStat {
                        namespace: r.get(0)?,
                        function: r.get(1)?,
                        waiting: r.get::<_, i64>(2)? as u64,
                        running: r.get::<_, i64>(3)? as u64,
                        dead: r.get::<_, i64>(4)? as u64,
                        oldest_waiting_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn list_versions(&self, id: &FunctionId) -> Result<Vec<FunctionVersion>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let rows = conn
                .prepare(
                    "SELECT version, config, code_sha256, created_at, published, description
                     FROM function_versions
                     WHERE namespace = ?1 AND function = ?2 ORDER BY version DESC",
                )?
                .query_map(params![id.namespace, id.name], version_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn publish_version(
        &self,
        id: &FunctionId,
        expected_version: Option<u64>,
        description: &str,
    ) -> Result<FunctionVersion, StoreError> {
        let (id, description) = (id.clone(), description.to_string());
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let current = get(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if let Some(expected) = expected_version {
                if expected != current.version {
                    return Err(StoreError::VersionMismatch {
                        name: id.to_string(),
                        expected,
                    });
                }
            }
            tx.execute(
                "UPDATE function_versions SET published = 1,
                    description = CASE WHEN published = 1 THEN description ELSE ?4 END
                 WHERE namespace = ?1 AND function = ?2 AND version = ?3",
                params![id.namespace, id.name, current.version as i64, description],
            )?;
            let v = tx.query_row(
                "SELECT version, config, code_sha256, created_at, published, description
                 FROM function_versions WHERE namespace = ?1 AND function = ?2 AND version = ?3",
                params![id.namespace, id.name, current.version as i64],
                version_from_row,
            )?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    async fn get_version(
        &self,
        id: &FunctionId,
        version: u64,
    ) -> Result<Option<Function>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            conn.query_row(
                "SELECT v.namespace, v.function, v.version, v.config, v.code_sha256, v.created_at,
                        v.published, v.source_sha256, b.size_bytes
                 FROM function_versions v JOIN code_blobs b ON b.sha256 = v.code_sha256
                 WHERE v.namespace = ?1 AND v.function = ?2 AND v.version = ?3",
                params![id.namespace, id.name, version as i64],
                |r| {
                    let config: String = r.get(3)?;
                    let config = serde_json::from_str(&config).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            3,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?;
                    let at = ts(r.get(5)?);
                    Ok(Function {
                        namespace: r.get(0)?,
                        name: r.get(1)?,
                        version: r.get::<_, i64>(2)? as u64,
                        config,
                        code_sha256: r.get(4)?,
                        code_size_bytes: r.get::<_, i64>(8)? as u64,
                        created_at: at,
                        updated_at: at,
                        source_sha256: r.get(7)?,
                        published: r.get::<_, i64>(6)? != 0,
                    })
                },
            )
            .optional()
            .map_err(Into::into)
        })
        .await
    }

    async fn delete_version(&self, id: &FunctionId, version: u64) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let current = get(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if current.version == version {
                return Err(StoreError::InUse(format!(
                    "version {version} is the current version of `{id}`: it cannot be deleted"
                )));
            }
            for a in aliases_of(&tx, &id)? {
                if a.version == version || a.weights.contains_key(&version) {
                    return Err(StoreError::InUse(format!(
                        "alias `{}` routes to version {version}: change or delete it first",
                        a.name
                    )));
                }
            }
            let n = tx.execute(
                "DELETE FROM function_versions WHERE namespace = ?1 AND function = ?2 AND version = ?3
                    AND published = 1",
                params![id.namespace, id.name, version as i64],
            )?;
            if n == 0 {
                return Err(StoreError::VersionNotFound {
                    function: id.to_string(),
                    version,
                });
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn put_alias(
        &self,
        id: &FunctionId,
        alias: &ignis_core::Alias,
        create: bool,
    ) -> Result<ignis_core::Alias, StoreError> {
        let (id, alias) = (id.clone(), alias.clone());
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            if get(&tx, &id)?.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            for v in std::iter::once(&alias.version).chain(alias.weights.keys()) {
                let published: Option<i64> = tx
                    .query_row(
                        "SELECT published FROM function_versions
                         WHERE namespace = ?1 AND function = ?2 AND version = ?3",
                        params![id.namespace, id.name, *v as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                match published {
                    None => {
                        return Err(StoreError::VersionNotFound {
                            function: id.to_string(),
                            version: *v,
                        })
                    }
                    Some(0) => {
                        return Err(StoreError::NotPublished {
                            function: id.to_string(),
                            version: *v,
                        })
                    }
                    Some(_) => {}
                }
            }
            let existing = alias_of(&tx, &id, &alias.name)?;
            let weights = serde_json::to_string(&alias.weights)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            match (create, existing) {
                (true, Some(_)) => {
                    return Err(StoreError::AliasTaken {
                        function: id.to_string(),
                        alias: alias.name.clone(),
                    })
                }
                (false, None) => {
                    return Err(StoreError::AliasNotFound {
                        function: id.to_string(),
                        alias: alias.name.clone(),
                    })
                }
                (true, None) => {
                    tx.execute(
                        "INSERT INTO aliases (namespace, function, name, version, weights, description,
                            revision, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            id.namespace,
                            id.name,
                            alias.name,
                            alias.version as i64,
                            weights,
                            alias.description,
                            alias.revision_id,
                            alias.created_at_ms,
                            alias.updated_at_ms
                        ],
                    )?;
                }
                (false, Some(_)) => {
                    tx.execute(
                        "UPDATE aliases SET version = ?4, weights = ?5, description = ?6, revision = ?7,
                            updated_at = ?8
                         WHERE namespace = ?1 AND function = ?2 AND name = ?3",
                        params![
                            id.namespace,
                            id.name,
                            alias.name,
                            alias.version as i64,
                            weights,
                            alias.description,
                            alias.revision_id,
                            alias.updated_at_ms
                        ],
                    )?;
                }
            }
            let stored = alias_of(&tx, &id, &alias.name)?.ok_or_else(|| StoreError::AliasNotFound {
                function: id.to_string(),
                alias: alias.name.clone(),
            })?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    async fn get_alias(
        &self,
        id: &FunctionId,
        name: &str,
    ) -> Result<Option<ignis_core::Alias>, StoreError> {
        let (id, name) = (id.clone(), name.to_string());
        self.run(move |conn, _| alias_of(conn, &id, &name)).await
    }

    async fn list_aliases(&self, id: &FunctionId) -> Result<Vec<ignis_core::Alias>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| aliases_of(conn, &id)).await
    }

    async fn list_all_aliases(&self) -> Result<Vec<(FunctionId, ignis_core::Alias)>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare(
                    "SELECT namespace, function, name, version, weights, description, revision,
                        created_at, updated_at FROM aliases ORDER BY namespace, function, name",
                )?
                .query_map([], |r| {
                    Ok((
                        FunctionId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                        alias_from_row(r, 2)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_alias(&self, id: &FunctionId, name: &str) -> Result<bool, StoreError> {
        let (id, name) = (id.clone(), name.to_string());
        self.run(move |conn, _| {
            let n = conn.execute(
                "DELETE FROM aliases WHERE namespace = ?1 AND function = ?2 AND name = ?3",
                params![id.namespace, id.name, name],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_test_events(&self, id: &FunctionId) -> Result<Vec<TestEvent>, StoreError> {
        let id = id.clone();
        self.run(move |conn, _| {
            let rows = conn
                .prepare(
                    "SELECT name, event, updated_at FROM test_events
                     WHERE namespace = ?1 AND function = ?2 ORDER BY name",
                )?
                .query_map(params![id.namespace, id.name], |r| {
                    let text: String = r.get(1)?;
                    Ok(TestEvent {
                        name: r.get(0)?,
                        event: serde_json::from_str(&text).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                1,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?,
                        updated_at_ms: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn put_test_event(&self, id: &FunctionId, event: &TestEvent) -> Result<(), StoreError> {
        let (id, event) = (id.clone(), event.clone());
        self.run(move |conn, _| {
            let text = serde_json::to_string(&event.event)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            conn.execute(
                "INSERT INTO test_events (namespace, function, name, event, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(namespace, function, name) DO UPDATE
                    SET event = excluded.event, updated_at = excluded.updated_at",
                params![id.namespace, id.name, event.name, text, event.updated_at_ms],
            )
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(err, _)
                    if err.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::NotFound(id.to_string())
                }
                _ => e.into(),
            })?;
            Ok(())
        })
        .await
    }

    async fn delete_test_event(&self, id: &FunctionId, name: &str) -> Result<bool, StoreError> {
        let (id, name) = (id.clone(), name.to_string());
        self.run(move |conn, _| {
            let n = conn.execute(
                "DELETE FROM test_events WHERE namespace = ?1 AND function = ?2 AND name = ?3",
                params![id.namespace, id.name, name],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare("SELECT name, created_at FROM namespaces ORDER BY name")?
                .query_map([], |r| {
                    Ok(NamespaceInfo {
                        name: r.get(0)?,
                        created_at_ms: r.get(1)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn create_namespace(&self, name: &str) -> Result<NamespaceInfo, StoreError> {
        let name = name.to_string();
        self.run(move |conn, _| {
            let now = now_ms();
            let n = conn.execute(
                "INSERT OR IGNORE INTO namespaces (name, created_at) VALUES (?1, ?2)",
                params![name, now],
            )?;
            if n == 0 {
                return Err(StoreError::NamespaceTaken(name));
            }
            Ok(NamespaceInfo {
                name,
                created_at_ms: now,
            })
        })
        .await
    }

    async fn delete_namespace(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let used: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM functions WHERE namespace = ?1)",
                [&name],
                |r| r.get(0),
            )?;
            if used {
                return Err(StoreError::NamespaceNotEmpty(name));
            }
            let n = tx.execute("DELETE FROM namespaces WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |conn, _| {
            let namespaces = serde_json::to_string(&key.namespaces)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            conn.execute(
                "INSERT INTO api_keys (id, name, role, namespaces, prefix, digest, created_at,
                    expires_at, last_used_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    key.id,
                    key.name,
                    key.role.as_str(),
                    namespaces,
                    key.prefix,
                    key.digest,
                    key.created_at_ms,
                    key.expires_at_ms,
                    key.last_used_at_ms,
                    key.revoked_at_ms,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare("SELECT * FROM api_keys ORDER BY created_at, id")?
                .query_map([], |r| {
                    let corrupt = |e: String| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            e.into(),
                        )
                    };
                    let role: String = r.get("role")?;
                    let namespaces: String = r.get("namespaces")?;
                    Ok(KeyRecord {
                        id: r.get("id")?,
                        name: r.get("name")?,
                        role: role
                            .parse()
                            .map_err(|e: ignis_core::IgnisError| corrupt(e.message))?,
                        namespaces: serde_json::from_str(&namespaces)
                            .map_err(|e| corrupt(e.to_string()))?,
                        prefix: r.get("prefix")?,
                        digest: r.get("digest")?,
                        created_at_ms: r.get("created_at")?,
                        expires_at_ms: r.get("expires_at")?,
                        last_used_at_ms: r.get("last_used_at")?,
                        revoked_at_ms: r.get("revoked_at")?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, at_ms],
            )?;
            tx.execute("DELETE FROM sessions WHERE key_id = ?1", [&id])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_aws_credential(
        &self,
        credential: &ignis_core::auth::AwsCredentialRecord,
    ) -> Result<(), StoreError> {
        let c = credential.clone();
        self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO aws_credentials (access_key_id, key_id, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![c.access_key_id, c.key_id, c.created_at_ms, c.revoked_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_aws_credentials(
        &self,
    ) -> Result<Vec<ignis_core::auth::AwsCredentialRecord>, StoreError> {
        self.run(|conn, _| {
            let rows = conn
                .prepare(
                    "SELECT access_key_id, key_id, created_at, revoked_at FROM aws_credentials
                     ORDER BY created_at, access_key_id",
                )?
                .query_map([], |r| {
                    Ok(ignis_core::auth::AwsCredentialRecord {
                        access_key_id: r.get(0)?,
                        key_id: r.get(1)?,
                        created_at_ms: r.get(2)?,
                        revoked_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_aws_credential(
        &self,
        access_key_id: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let id = access_key_id.to_string();
        self.run(move |conn, _| {
            let n = conn.execute(
                "UPDATE aws_credentials SET revoked_at = ?2 WHERE access_key_id = ?1 AND revoked_at IS NULL",
                params![id, at_ms],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        let used = used.to_vec();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
                )?;
                for (id, at) in &used {
                    stmt.execute(params![id, at])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let s = session.clone();
        self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO sessions (digest, key_id, csrf, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.digest,
                    s.key_id,
                    s.csrf,
                    s.created_at_ms,
                    s.last_seen_ms,
                    s.expires_at_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionRecord>, StoreError> {
        self.run(move |conn, _| {
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_ms])?;
            let rows = conn
                .prepare("SELECT * FROM sessions")?
                .query_map([], |r| {
                    Ok(SessionRecord {
                        digest: r.get("digest")?,
                        key_id: r.get("key_id")?,
                        csrf: r.get("csrf")?,
                        created_at_ms: r.get("created_at")?,
                        last_seen_ms: r.get("last_seen_at")?,
                        expires_at_ms: r.get("expires_at")?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        let digest = digest.to_string();
        self.run(move |conn, _| {
            conn.execute("DELETE FROM sessions WHERE digest = ?1", [digest])?;
            Ok(())
        })
        .await
    }

    async fn touch_sessions(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        let seen = seen.to_vec();
        self.run(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE digest = ?1",
                )?;
                for (digest, at) in &seen {
                    stmt.execute(params![digest, at])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO audit_log (at_ms, key_id, key_name, action, target, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.at_ms, e.key_id, e.key_name, e.action, e.target, e.outcome],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |conn, _| {
            let rows = conn
                .prepare("SELECT * FROM audit_log ORDER BY seq DESC LIMIT ?1")?
                .query_map([limit], |r| {
                    Ok(AuditEntry {
                        at_ms: r.get("at_ms")?,
                        key_id: r.get("key_id")?,
                        key_name: r.get("key_name")?,
                        action: r.get("action")?,
                        target: r.get("target")?,
                        outcome: r.get("outcome")?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ignis_core::{FunctionPatch, Runtime};
    use std::collections::BTreeMap;

    fn config(route: Option<&str>) -> FunctionConfig {
        FunctionPatch {
            runtime: Some(Runtime::Python3),
            handler: Some("main.handler".into()),
            route: Some(route.map(str::to_string)),
            ..Default::default()
        }
        .into_new_config()
        .unwrap()
    }

    fn id(name: &str) -> FunctionId {
        FunctionId::default_ns(name)
    }

    fn code(src: &str) -> Archive {
        let files: BTreeMap<_, _> = [("main.py".to_string(), src.to_string())].into();
        ignis_package::from_files(&files, 1 << 20).unwrap()
    }

    fn record(id: &str, started_at_ms: i64) -> InvocationRecord {
        InvocationRecord::success("f", id, started_at_ms, 1.0)
    }

    async fn stored_ids(store: &SqliteStore) -> Vec<String> {
        let mut ids: Vec<String> = store
            .list_invocations(&id("f"), 1000, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn retention_deletes_the_old_prefix_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Written in the order calls finished: "c" ran long, so it started
        // before the cutoff but was written after a young record.
        let written = [("a", 10), ("b", 20), ("y1", 100), ("c", 30), ("y2", 110)];
        let records = written.iter().map(|(i, t)| record(i, *t)).collect();
        store.insert_invocations(records).await.unwrap();
        // Nothing old: nothing goes.
        assert_eq!(store.prune(0, 5, 1000).await.unwrap(), (0, 0));
        assert_eq!(stored_ids(&store).await.len(), 5);
        // The old prefix goes; the late old record waits for the next run
        // after the records before it are old too, never a young one.
        assert_eq!(store.prune(0, 50, 1000).await.unwrap(), (0, 2));
        assert_eq!(stored_ids(&store).await, ["c", "y1", "y2"]);
        assert_eq!(store.prune(0, 105, 1000).await.unwrap(), (0, 2));
        assert_eq!(stored_ids(&store).await, ["y2"]);
        // All old: the table empties.
        assert_eq!(store.prune(0, 1000, 1000).await.unwrap(), (0, 1));
        assert!(stored_ids(&store).await.is_empty());
        // The bound keeps the newest records, whatever their times.
        let records = (0..10).map(|i| record(&format!("n{i}"), 500 + i)).collect();
        store.insert_invocations(records).await.unwrap();
        assert_eq!(store.prune(0, 0, 4).await.unwrap(), (0, 6));
        assert_eq!(stored_ids(&store).await, ["n6", "n7", "n8", "n9"]);
    }

    #[tokio::test]
    async fn crud_versions_conflicts_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = store
            .create_function(&id("a"), &config(Some("/a")), &code("1"))
            .await
            .unwrap();
        assert_eq!(a.version, 1);
        assert!(matches!(
            store
                .create_function(&id("a"), &config(None), &code("1"))
                .await,
            Err(StoreError::NameTaken(_))
        ));
        assert!(matches!(
            store
                .create_function(&id("b"), &config(Some("/a")), &code("1"))
                .await,
            Err(StoreError::RouteTaken(_))
        ));
        // Same code for a second function: stored once.
        store
            .create_function(&id("b"), &config(Some("/b")), &code("1"))
            .await
            .unwrap();
        assert_eq!(
            BlobStore::open(dir.path().join("code"))
                .unwrap()
                .list()
                .unwrap()
                .len(),
            1
        );

        let a2 = store
            .update_function(&id("a"), 1, &config(Some("/a")), Some(&code("2")))
            .await
            .unwrap();
        assert_eq!(a2.version, 2);
        assert!(matches!(
            store
                .update_function(&id("a"), 1, &config(None), None)
                .await,
            Err(StoreError::VersionMismatch { .. })
        ));
        assert!(store.delete_function(&id("a")).await.unwrap());
        assert!(!store.delete_function(&id("a")).await.unwrap());
        // A delete collects nothing by itself: calls in flight may still
        // need the code. What they need is kept; the rest goes.
        let blobs = BlobStore::open(dir.path().join("code")).unwrap();
        assert_eq!(blobs.list().unwrap().len(), 2);
        let in_flight: HashSet<String> = [code("2").sha256].into();
        assert_eq!(store.collect_garbage(&in_flight).await.unwrap(), 0);
        store.read_code(&code("2").sha256).await.unwrap();
        // Code "2" was only used by `a`: collected once nothing needs it.
        // Code "1" is still used by `b`.
        assert_eq!(store.collect_garbage(&HashSet::new()).await.unwrap(), 1);
        assert_eq!(blobs.list().unwrap(), vec![code("1").sha256]);
        // Re-creating `a` continues its version numbers.
        let a3 = store
            .create_function(&id("a"), &config(None), &code("3"))
            .await
            .unwrap();
        assert_eq!(a3.version, 3);
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.list_functions().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn namespaces_keys_sessions_audit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let team = FunctionId::new("team", "f");
        assert!(matches!(
            store
                .create_function(&team, &config(None), &code("1"))
                .await,
            Err(StoreError::NamespaceNotFound(_))
        ));
        store.create_namespace("team").await.unwrap();
        assert!(matches!(
            store.create_namespace("team").await,
            Err(StoreError::NamespaceTaken(_))
        ));
        // The same name in two namespaces; routes unique across all.
        store
            .create_function(&team, &config(Some("/r")), &code("1"))
            .await
            .unwrap();
        store
            .create_function(&id("f"), &config(None), &code("1"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_function(&id("g"), &config(Some("/r")), &code("1"))
                .await,
            Err(StoreError::RouteTaken(_))
        ));
        assert_eq!(store.list_functions().await.unwrap().len(), 2);
        assert!(matches!(
            store.delete_namespace("team").await,
            Err(StoreError::NamespaceNotEmpty(_))
        ));
        assert!(store.delete_function(&team).await.unwrap());
        assert!(store.delete_namespace("team").await.unwrap());
        let names: Vec<String> = store
            .list_namespaces()
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["default"]);

        let key = KeyRecord {
            id: "key-1".into(),
            name: "ci".into(),
            role: ignis_core::auth::Role::Developer,
            namespaces: ignis_core::auth::Namespaces::Only(["default".to_string()].into()),
            prefix: "ign_abc".into(),
            digest: "d1".into(),
            created_at_ms: 1,
            expires_at_ms: Some(10),
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        store.insert_key(&key).await.unwrap();
        store.touch_keys(&[("key-1".into(), 5)]).await.unwrap();
        let session = SessionRecord {
            digest: "s1".into(),
            key_id: "key-1".into(),
            csrf: "c".into(),
            created_at_ms: 1,
            last_seen_ms: 1,
            expires_at_ms: 100,
        };
        store.insert_session(&session).await.unwrap();
        store.touch_sessions(&[("s1".into(), 7)]).await.unwrap();
        assert_eq!(store.list_sessions(50).await.unwrap()[0].last_seen_ms, 7);
        assert!(store.revoke_key("key-1", 6).await.unwrap());
        assert!(!store.revoke_key("key-1", 6).await.unwrap());
        // Revoking a key ends its sessions.
        assert!(store.list_sessions(50).await.unwrap().is_empty());
        let keys = store.list_keys().await.unwrap();
        assert_eq!(keys[0].last_used_at_ms, Some(5));
        assert_eq!(keys[0].revoked_at_ms, Some(6));
        assert_eq!(keys[0].namespaces, key.namespaces);

        for (i, action) in ["a", "b", "c"].iter().enumerate() {
            store
                .append_audit(&AuditEntry {
                    at_ms: i as i64,
                    key_id: None,
                    key_name: None,
                    action: action.to_string(),
                    target: "t".into(),
                    outcome: "ok".into(),
                })
                .await
                .unwrap();
        }
        let audit = store.list_audit(2).await.unwrap();
        assert_eq!(
            audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["c", "b"]
        );
    }
}
