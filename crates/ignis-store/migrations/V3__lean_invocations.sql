-- Invocation records are written at the rate calls finish: keep their
-- table lean. One index (function, time) serves the listing; the record id
-- needs no index of its own (nothing looks a record up by id), and
-- retention deletes by time or by rowid with a scan every few minutes.
CREATE TABLE invocations_lean (
    id                 TEXT NOT NULL,
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
INSERT INTO invocations_lean SELECT id, function, version, backend, trigger, started_at_ms,
    queue_ms, init_ms, exec_ms, total_ms, start_kind, batch_size, status, error_type,
    error_message, response_bytes, peak_memory_bytes, cpu_ms, stdout, stderr, logs_truncated,
    sandbox_id FROM invocations ORDER BY started_at_ms;
DROP TABLE invocations;
ALTER TABLE invocations_lean RENAME TO invocations;
CREATE INDEX invocations_by_function ON invocations (function, started_at_ms);
