"""One SQLite connection on its own thread, with group commit.

Every commit with `synchronous = FULL` waits for an fsync (about 0.45 ms on the
reference machine), and SQLite has one writer at a time. So writes queue up
and the thread commits all that are waiting in one transaction: concurrent
requests share one fsync, and each still waits for the commit that holds its
own write, so nothing acknowledged can be lost. Reads run on the same thread
between batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(WRITE_VERBS)


@dataclass(slots=True)
class _Write:
    """Statements that stand or fall together, and where their results go."""

    statements: Sequence[tuple[str, Sequence[Any]]]
    future: asyncio.Future[list[Any]]


def _run_one(db: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Any:
    """Rows for a statement that returns some (RETURNING), else the rows changed."""
    cursor = db.execute(sql, args)
    rows = cursor.fetchall()
    return rows if cursor.description is not None else cursor.rowcount


class SQLiteThread:
    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = pragmas
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-sqlite")
        self._db: sqlite3.Connection | None = None
        self._pending: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self.call(self._connect)

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        for pragma in self.pragmas:
            db.execute(f"PRAGMA {pragma}")
        self._db = db

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._db is not None:
            await self.call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("the SQLite store is not open")
        return self._db

    async def call(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` on the connection's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, *args)

    async def read(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = await self.call(_run_one, self.db, sql, args)
        return rows

    async def write(self, sql: str, args: Sequence[Any]) -> Any:
        """Queue a write; return its result once the transaction holding it committed."""
        (result,) = await self.write_all([(sql, args)])
        return result

    async def write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Queue writes together: they share a transaction, in this order, all or none."""
        write = _Write(statements, asyncio.get_running_loop().create_future())
        self._pending.append(write)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await write.future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self.call(self._commit, batch)
            except Exception as exc:  # the whole batch failed (disk full, I/O error, closed)
                results = [exc] * len(batch)
            for write, result in zip(batch, results, strict=True):
                if write.future.done():  # its request was cancelled; the write stands
                    continue
                if isinstance(result, Exception):
                    write.future.set_exception(result)
                else:
                    write.future.set_result(result)

    def _commit(self, batch: list[_Write]) -> list[Any]:
        """On the thread: all writes in one transaction; alone, if one of them fails."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            results = [[_run_one(db, sql, args) for sql, args in w.statements] for w in batch]
            db.execute("COMMIT")
            return results
        except sqlite3.Error:
            db.execute("ROLLBACK")
            if len(batch) == 1:
                raise
        # Rare: retry one by one, so one bad write fails only its own request.
        return [self._commit_alone(w) for w in batch]

    def _commit_alone(self, write: _Write) -> Any:
        try:
            return self._commit([write])[0]
        except sqlite3.Error as exc:
            return exc
