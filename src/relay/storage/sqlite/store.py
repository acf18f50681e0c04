"""The embedded store: one SQLite file in WAL mode, on one host.

Reads run on a thread of this process (reader.py); writes are group committed
by a child process (writer.py), away from the event loop's GIL; the full-text
index is written behind the writes (search_index.py). SQLite cannot be shared
by instances on different machines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.jsonutil import dumps
from relay.storage.base import StoreUnavailable
from relay.storage.records import ConversationRecord, KeptAnswer, MessageRecord, SearchQuery
from relay.storage.sql import (
    PREFIXED_MESSAGE_COLUMNS,
    Row,
    SqlStore,
    load_migrations,
    with_seq,
)
from relay.storage.sqlite.reader import SQLiteThread, is_write
from relay.storage.sqlite.search_index import INDEX_DELAY_SECONDS, SearchIndex, fts5_query
from relay.storage.sqlite.writer import WriterProcess
from relay.storage.sqlite.writer_child import Changed, Statements

# WAL lets readers run beside the writer; FULL sync keeps every commit on disk.
PRAGMAS = ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON", "busy_timeout = 10000")
INSERT_CONVERSATION = "INSERT INTO conversations (id, client_id, created_at) VALUES (?, ?, ?)"
# No RETURNING: the new seq is the rowid the thread reads back (sqlite_thread.Changed).
INSERT_MESSAGE = (
    "INSERT INTO messages (id, conversation_id, client_id, role, content, status, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
KEEP_ANSWER = (
    "UPDATE idempotency_keys SET response = ?, lease_until = NULL"
    " WHERE client_id = ? AND key = ? AND owner = ?"
)


# What one write did wrong (a constraint, a value or statement SQLite refuses): that
# write fails, the store goes on. Any other sqlite3.Error (locked, disk full, I/O,
# a read-only or corrupt file, no writer process) is the store being unavailable.
BAD_WRITE = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
    sqlite3.InterfaceError,
)


@contextmanager
def translated() -> Iterator[None]:
    """SQLite's errors as the store being unavailable; a bad write's own error as it is."""
    try:
        yield
    except BAD_WRITE:
        raise
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"SQLite: {exc}") from exc


def _new_rowid(inserted: Changed) -> int:
    if inserted.last_id is None:  # cannot happen after an INSERT; never store a wrong seq
        raise sqlite3.InterfaceError("SQLite gave no rowid for an inserted message")
    return inserted.last_id


def sqlite_path(database_url: str) -> str:
    return str(Path(database_url.removeprefix("sqlite:///")).expanduser())


class SQLiteStore(SqlStore):
    dialect = "sqlite"
    search_sql = (
        f"SELECT {PREFIXED_MESSAGE_COLUMNS}, bm25(messages_fts) AS rank,"
        " snippet(messages_fts, 0, '<mark>', '</mark>', '…', 16) AS snippet"
        " FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid"
        " WHERE messages_fts MATCH ? AND {where} ORDER BY rank, m.seq DESC LIMIT ? OFFSET ?"
    )

    def __init__(self, database_url: str, *, index_delay: float = INDEX_DELAY_SECONDS) -> None:
        self.path = sqlite_path(database_url)
        self.index_delay = index_delay  # how long written messages wait to be indexed
        self._thread: SQLiteThread | None = None
        self._writer: WriterProcess | None = None
        self._search_index: SearchIndex | None = None

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        thread = SQLiteThread(self.path, PRAGMAS)
        writer = WriterProcess(self.path, PRAGMAS)
        try:
            await thread.open()
            await writer.open()
        except (sqlite3.Error, OSError) as exc:
            await thread.close()
            raise StoreUnavailable(f"cannot open SQLite database: {exc}") from exc
        self._thread, self._writer = thread, writer
        self._search_index = SearchIndex(thread, writer, self.index_delay)

    async def close(self) -> None:
        if self._search_index is not None:
            await self._search_index.close()
            self._search_index = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        if self._thread is not None:
            await self._thread.close()
            self._thread = None

    @property
    def thread(self) -> SQLiteThread:
        if self._thread is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._thread

    @property
    def writer(self) -> WriterProcess:
        if self._writer is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._writer

    async def migrate(self) -> list[str]:
        return await self.thread.call(self._migrate)

    def _migrate(self) -> list[str]:
        """On the thread: each missing migration in its own write transaction."""
        db = self.thread.db
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)")
        applied: list[str] = []
        for version, script in load_migrations(self.dialect):
            if db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                continue
            # Claiming the version first, inside the write lock, makes a racing
            # instance fail on the key instead of half-applying the script.
            try:
                db.executescript(
                    "BEGIN IMMEDIATE;"
                    f"INSERT INTO schema_migrations (version) VALUES ('{version}');"
                    f"{script}\nCOMMIT;"
                )
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                continue
            except sqlite3.Error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied

    async def _fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        if is_write(sql):  # a write with RETURNING goes through the group commit
            (rows,) = await self._write_all([(sql, args)])
            return rows  # type: ignore[no-any-return]
        with translated():  # locked past busy_timeout, disk full, I/O
            return await self.thread.read(sql, args)  # type: ignore[return-value]

    async def _execute(self, sql: str, *args: Any) -> int:
        changed: Changed
        (changed,) = await self._write_all([(sql, args)])
        return changed.rows

    async def _write_all(self, statements: Statements) -> list[Any]:
        """Writes in one transaction, in order; what fails the writer, as the store being down."""
        with translated():  # locked, disk full, I/O, read-only, no writer process
            return await self.writer.write_all(statements)

    async def add_messages(
        self,
        messages: Sequence[MessageRecord],
        *,
        new_conversation: ConversationRecord | None = None,
        answer: KeptAnswer | None = None,
    ) -> list[MessageRecord]:
        # Queued together, so they land in one batch (one transaction), in order.
        # The args come adapted for the driver (_message_args converts the time).
        statements: list[tuple[str, Sequence[Any]]] = []
        if new_conversation is not None:
            statements.append((INSERT_CONVERSATION, self._conversation_args(new_conversation)))
        first = len(statements)
        statements += [(INSERT_MESSAGE, self._message_args(m)) for m in messages]
        if answer is not None:
            response = self._param(answer.response)
            statements.append((KEEP_ANSWER, [response, answer.client_id, answer.key, answer.owner]))
        results = await self._write_all(statements)
        if self._search_index is not None:
            self._search_index.written()
        inserted: list[Changed] = results[first : first + len(messages)]
        return [with_seq(m, _new_rowid(r)) for m, r in zip(messages, inserted, strict=True)]

    def _message_args(self, message: MessageRecord) -> list[Any]:
        return [
            message.id,
            message.conversation_id,
            message.client_id,
            message.role,
            message.content,
            message.status,
            self._param(message.created_at),
        ]

    def _conversation_args(self, conversation: ConversationRecord) -> list[Any]:
        return [conversation.id, conversation.client_id, self._param(conversation.created_at)]

    async def _ready_to_search(self) -> None:
        if self._search_index is None:
            return
        with translated():
            await self._search_index.catch_up()  # a search sees every committed message

    def _param(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict | list):
            return dumps(value).decode()
        if isinstance(value, bool):
            return int(value)
        return value

    def _search_expression(self, query: SearchQuery) -> str | None:
        return fts5_query(query)
