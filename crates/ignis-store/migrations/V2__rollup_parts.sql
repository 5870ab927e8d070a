-- Per-minute rollups are written by each server run as its own part, so
-- that a minute split by a restart is the sum of its parts, never a loss.
DROP TABLE metric_rollups;
CREATE TABLE metric_rollups (
    function        TEXT NOT NULL,           -- '' = system-wide
    minute          INTEGER NOT NULL,        -- Unix minute
    part            TEXT NOT NULL,           -- the writing server run
    requests        INTEGER NOT NULL,
    success         INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    timeouts        INTEGER NOT NULL,
    throttles       INTEGER NOT NULL,
    cold_starts     INTEGER NOT NULL,
    stem_starts     INTEGER NOT NULL,
    init_ms_sum     REAL NOT NULL,
    init_count      INTEGER NOT NULL,
    total_ms_sum    REAL NOT NULL,
    total_ms_max    REAL NOT NULL,
    errors_by_type  TEXT NOT NULL,           -- JSON object
    histogram       BLOB NOT NULL,           -- ignis-metrics Histogram bytes
    PRIMARY KEY (function, minute, part)
);
CREATE INDEX metric_rollups_by_minute ON metric_rollups (minute);
