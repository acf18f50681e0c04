CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes JSONB NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    rate_limits JSONB NOT NULL DEFAULT '{}',
    token_ttl INTEGER,
    -- JSON, not JSONB: operators' metadata is kept exactly as sent (JSONB refuses \u0000).
    metadata JSON NOT NULL DEFAULT '{}',
    key_prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    key_generation INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_client ON conversations (client_id);

CREATE TABLE messages (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- 'simple' (no stemming) so that search answers as SQLite's unicode61 FTS5 does.
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED
);
CREATE INDEX messages_client_seq ON messages (client_id, seq);
CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq);
CREATE INDEX messages_search ON messages USING GIN (search);

CREATE TABLE idempotency_keys (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, key)
);
