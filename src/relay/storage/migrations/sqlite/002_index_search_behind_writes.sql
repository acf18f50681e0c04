-- Messages are indexed for search in batches behind the writes (storage/sqlite_search.py),
-- not one by one in the transaction that stores them. Every message up to
-- search_progress.seq is in messages_fts; none after it is. Every message stored
-- so far was indexed by the trigger this migration drops.
CREATE TABLE search_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO search_progress (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM messages;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

-- Only an indexed message has an entry to take out: deleting one that is not
-- there would corrupt an external-content FTS5 index.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.seq <= (SELECT seq FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.seq <= (SELECT seq FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
