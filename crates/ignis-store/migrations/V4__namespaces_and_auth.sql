-- Namespaces, API keys, console sessions, the audit log.
--
-- Every function now belongs to a namespace; existing functions, their
-- versions, version counters and invocation records move into `default`
-- with nothing lost. Names are unique within a namespace; routes stay
-- unique across the server.

CREATE TABLE namespaces (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
INSERT INTO namespaces (name, created_at)
    VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

CREATE TABLE functions_ns (
    namespace       TEXT NOT NULL REFERENCES namespaces(name),
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    route           TEXT UNIQUE,
    config          TEXT NOT NULL,           -- JSON FunctionConfig
    code_sha256     TEXT NOT NULL REFERENCES code_blobs(sha256),
    code_size_bytes INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
INSERT INTO functions_ns SELECT 'default', name, version, route, config, code_sha256,
    code_size_bytes, created_at, updated_at FROM functions;

CREATE TABLE function_versions_ns (
    namespace    TEXT NOT NULL,
    function     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    config       TEXT NOT NULL,
    code_sha256  TEXT NOT NULL REFERENCES code_blobs(sha256),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, version),
    FOREIGN KEY (namespace, function) REFERENCES functions_ns(namespace, name) ON DELETE CASCADE
);
INSERT INTO function_versions_ns SELECT 'default', function, version, config, code_sha256,
    created_at FROM function_versions;

CREATE TABLE version_counters_ns (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    last_version  INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
INSERT INTO version_counters_ns SELECT 'default', name, last_version FROM version_counters;

DROP TABLE function_versions;
DROP TABLE functions;
DROP TABLE version_counters;
ALTER TABLE functions_ns RENAME TO functions;
ALTER TABLE function_versions_ns RENAME TO function_versions;
ALTER TABLE version_counters_ns RENAME TO version_counters;

ALTER TABLE invocations ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
DROP INDEX invocations_by_function;
CREATE INDEX invocations_by_function ON invocations (namespace, function, started_at_ms);

-- The unused placeholder of version 1.
DROP TABLE api_keys;
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,       -- key-...
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,          -- admin | developer | viewer | invoker
    namespaces       TEXT NOT NULL,          -- JSON: "*" or a list of names
    prefix           TEXT NOT NULL,          -- first characters of the secret, for display
    digest           TEXT NOT NULL UNIQUE,   -- sha256 of the secret; the secret is never stored
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    last_used_at     INTEGER,
    revoked_at       INTEGER
);

CREATE TABLE sessions (
    digest        TEXT PRIMARY KEY,          -- sha256 of the cookie value
    key_id        TEXT NOT NULL REFERENCES api_keys(id),
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL           -- absolute expiry
);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    key_id     TEXT,
    key_name   TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL
);
