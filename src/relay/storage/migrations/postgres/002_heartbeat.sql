-- /health commits a write here: a database that answers reads but cannot commit
-- (a read-only standby, a full disk) is down.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at TIMESTAMPTZ NOT NULL
);
