"""One SQLite connection on its own thread, with group commit.

Every commit with `synchronous = FULL` waits for an fsync, and SQLite has one
writer at a time. So writes queue up and the thread commits all that are
waiting in one transaction (see group_commit.py). Reads run on the same thread
between batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from relay.storage.group_commit import GroupCommit

T = TypeVar("T")
Statements = Sequence[tuple[str, Sequence[Any]]]
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# What fails one write and not the database: a constraint, or a value the driver
# cannot bind (UnicodeEncodeError for a lone surrogate is a ValueError).
BAD_WRITE = (sqlite3.Error, ValueError)


def is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(WRITE_VERBS)


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
        self._writes: GroupCommit[Statements, list[Any]] = GroupCommit(self._commit_batch)

    async def open(self) -> None:
        await self.call(self._connect)

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        for pragma in self.pragmas:
            db.execute(f"PRAGMA {pragma}")
        self._db = db

    async def close(self) -> None:
        await self._writes.drain()
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

    async def write_all(self, statements: Statements) -> list[Any]:
        """Queue writes together: they share a transaction, in this order, all or none."""
        return await self._writes.submit(statements)

    async def _commit_batch(self, batch: list[Statements]) -> list[list[Any] | Exception]:
        return await self.call(self._commit, batch)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """On the thread: `work(db)` in one write transaction, rolled back if it raises."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _commit(self, batch: list[Statements]) -> list[list[Any] | Exception]:
        """On the thread: all writes in one transaction; alone, if one of them fails."""

        def run_all(db: sqlite3.Connection) -> list[list[Any] | Exception]:
            return [[_run_one(db, sql, args) for sql, args in writes] for writes in batch]

        try:
            return self._in_transaction(run_all)
        except BAD_WRITE:
            if len(batch) == 1:
                raise
        # Rare: retry one by one, so one bad write fails only its own request.
        return [self._commit_alone(statements) for statements in batch]

    def _commit_alone(self, statements: Statements) -> list[Any] | Exception:
        try:
            return self._commit([statements])[0]
        except BAD_WRITE as exc:
            return exc
