-- Published versions and aliases, asynchronous invocations, AWS credentials.

-- A published version is frozen: never pruned, invocable as `name:N`.
ALTER TABLE function_versions ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
ALTER TABLE function_versions ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- The SHA-256 of the zip as uploaded (Lambda's CodeSha256, which infrastructure
-- tools compare with the file they sent); the stored archive is normalized.
ALTER TABLE function_versions ADD COLUMN source_sha256 TEXT;
ALTER TABLE functions ADD COLUMN source_sha256 TEXT;

CREATE TABLE aliases (
    namespace   TEXT NOT NULL,
    function    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    -- More versions and the share of calls each gets, JSON {"4": 0.1}.
    weights     TEXT NOT NULL DEFAULT '{}',
    description TEXT NOT NULL DEFAULT '',
    revision    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, name),
    FOREIGN KEY (namespace, function) REFERENCES functions(namespace, name) ON DELETE CASCADE
);

-- Events accepted for asynchronous invocation: stored before the 202.
CREATE TABLE async_events (
    id              TEXT PRIMARY KEY,
    namespace       TEXT NOT NULL,
    function        TEXT NOT NULL,
    qualifier       TEXT,                    -- alias or version; NULL: $LATEST
    event           TEXT NOT NULL,
    -- queued, running, failed (an attempt failed, a retry is due at
    -- not_before), succeeded, dead (out of attempts or too old).
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_retries     INTEGER NOT NULL,
    enqueued_at     INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    not_before      INTEGER NOT NULL,
    lease_until     INTEGER,
    version         INTEGER,                 -- the version the last attempt ran
    result          TEXT,
    error_type      TEXT,
    error_message   TEXT,
    stdout          TEXT,
    stderr          TEXT,
    last_invocation TEXT,                    -- the last attempt's invocation record
    started_at      INTEGER,
    finished_at     INTEGER,
    dead_reason     TEXT
);
CREATE INDEX async_due ON async_events (status, not_before);
CREATE INDEX async_by_function ON async_events (namespace, function, status);

-- SigV4 credentials of API keys: the secret is derived from the server's
-- signing secret (aws-signing.key in the data directory) and the access
-- key id, never stored.
CREATE TABLE aws_credentials (
    access_key_id TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
