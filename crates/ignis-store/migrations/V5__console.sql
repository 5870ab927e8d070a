-- What the web console needs beyond the API of before.

-- Per-call CPU time and peak memory in the rollups, so that charts of
-- windows longer than the 15 minutes kept in memory show them too.
ALTER TABLE metric_rollups ADD COLUMN cpu_ms_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE metric_rollups ADD COLUMN cpu_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metric_rollups ADD COLUMN memory_bytes_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE metric_rollups ADD COLUMN memory_count INTEGER NOT NULL DEFAULT 0;

-- Saved test events, per function, shared by everyone who can see it.
CREATE TABLE test_events (
    namespace   TEXT NOT NULL,
    function    TEXT NOT NULL,
    name        TEXT NOT NULL,
    event       TEXT NOT NULL,               -- JSON
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, name),
    FOREIGN KEY (namespace, function) REFERENCES functions(namespace, name) ON DELETE CASCADE
);

-- The stack trace of a failed call, for the console's invocations tab.
ALTER TABLE invocations ADD COLUMN error_stack TEXT;
