-- ignis schema, version 1. Timestamps are Unix milliseconds.

-- Content-addressed code archives; the bytes live in DATA_DIR/code/.
CREATE TABLE code_blobs (
    sha256      TEXT PRIMARY KEY,
    size_bytes  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE functions (
    name            TEXT PRIMARY KEY,
    version         INTEGER NOT NULL,
    route           TEXT UNIQUE,
    config          TEXT NOT NULL,           -- JSON FunctionConfig
    code_sha256     TEXT NOT NULL REFERENCES code_blobs(sha256),
    code_size_bytes INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Every version a function had (the most recent ones are kept), so that
-- calls in flight and records can refer to a version after an update.
CREATE TABLE function_versions (
    function     TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    config       TEXT NOT NULL,
    code_sha256  TEXT NOT NULL REFERENCES code_blobs(sha256),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (function, version)
);

-- The last version number handed out per name, kept after a delete so that
-- a re-created function never reuses a version number.
CREATE TABLE version_counters (
    name          TEXT PRIMARY KEY,
    last_version  INTEGER NOT NULL
);

CREATE TABLE invocations (
    id                 TEXT PRIMARY KEY,
    function           TEXT NOT NULL,
    version            INTEGER NOT NULL,
    backend            TEXT NOT NULL,
    trigger            TEXT NOT NULL,
    started_at_ms      INTEGER NOT NULL,
    queue_ms           REAL NOT NULL,
    init_ms            REAL,
    exec_ms            REAL NOT NULL,
    total_ms           REAL NOT NULL,
    start_kind         TEXT,
    batch_size         INTEGER NOT NULL,
    status             TEXT NOT NULL,
    error_type         TEXT,
    error_message      TEXT,
    response_bytes     INTEGER NOT NULL,
    peak_memory_bytes  INTEGER,
    cpu_ms             REAL,
    stdout             TEXT NOT NULL,
    stderr             TEXT NOT NULL,
    logs_truncated     INTEGER NOT NULL,
    sandbox_id         TEXT
);
CREATE INDEX invocations_by_function ON invocations (function, started_at_ms DESC);
CREATE INDEX invocations_by_time ON invocations (started_at_ms);

-- Per-minute aggregates per function ('' = system-wide), kept for charts.
CREATE TABLE metric_rollups (
    function      TEXT NOT NULL,
    minute        INTEGER NOT NULL,          -- Unix minute
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    timeouts      INTEGER NOT NULL,
    throttles     INTEGER NOT NULL,
    cold_starts   INTEGER NOT NULL,
    total_ms_sum  REAL NOT NULL,
    total_ms_max  REAL NOT NULL,
    histogram     BLOB,                      -- serialized latency histogram
    PRIMARY KEY (function, minute)
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,      -- sha256 of the secret; the secret is never stored
    scopes        TEXT NOT NULL,             -- JSON array
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
