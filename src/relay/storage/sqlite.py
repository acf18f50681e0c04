"""The embedded store: one SQLite file in WAL mode through aiosqlite.

Single host only: SQLite cannot be shared by instances on different machines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from relay.jsonutil import dumps
from relay.storage.base import StoreUnavailable
from relay.storage.search import fts5_query
from relay.storage.sql import PREFIXED_MESSAGE_COLUMNS, Row, SqlStore, load_migrations


def sqlite_path(database_url: str) -> str:
    path = database_url.removeprefix("sqlite:///")
    return path if path == ":memory:" else str(Path(path).expanduser())


class SQLiteStore(SqlStore):
    dialect = "sqlite"
    search_sql = (
        f"SELECT {PREFIXED_MESSAGE_COLUMNS}, bm25(messages_fts) AS rank,"
        " snippet(messages_fts, 0, '<mark>', '</mark>', '…', 16) AS snippet"
        " FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid"
        " WHERE messages_fts MATCH ? AND {where} ORDER BY rank, m.seq DESC LIMIT ? OFFSET ?"
    )

    def __init__(self, database_url: str) -> None:
        self.path = sqlite_path(database_url)
        self._conn: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        # WAL lets readers run beside the writer; FULL sync keeps every commit on disk.
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            "busy_timeout = 10000",
        ):
            await conn.execute(f"PRAGMA {pragma}")
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._conn

    async def migrate(self) -> list[str]:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)"
        )
        applied: list[str] = []
        for version, script in load_migrations(self.dialect):
            if await self._fetchrow("SELECT 1 FROM schema_migrations WHERE version = ?", version):
                continue
            # Claiming the version first, inside the write lock, makes a racing
            # instance fail on the key instead of half-applying the script.
            try:
                await self.conn.executescript(
                    "BEGIN IMMEDIATE;"
                    f"INSERT INTO schema_migrations (version) VALUES ('{version}');"
                    f"{script}\nCOMMIT;"
                )
            except sqlite3.IntegrityError:
                await self.conn.execute("ROLLBACK")
                continue
            except sqlite3.Error:
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied

    async def _fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        try:
            async with self.conn.execute(sql, args) as cursor:
                rows: Sequence[Row] = list(await cursor.fetchall())  # type: ignore[arg-type]
                return rows
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk full, I/O
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    async def _execute(self, sql: str, *args: Any) -> int:
        try:
            async with self.conn.execute(sql, args) as cursor:
                return cursor.rowcount
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    def _param(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict | list):
            return dumps(value).decode()
        if isinstance(value, bool):
            return int(value)
        return value

    def _search_expression(self, query: str) -> str | None:
        return fts5_query(query)
