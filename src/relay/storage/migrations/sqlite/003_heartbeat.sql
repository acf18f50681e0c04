-- /health commits a write here: a database that answers reads but cannot commit
-- (a read-only file, a full disk, a writer that cannot start) is down.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at TEXT NOT NULL
);
