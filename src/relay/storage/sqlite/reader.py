"""One SQLite connection on a thread of its own: the store's reads, and calls.

Writes never come here: a child process makes them (writer.py). The thread
takes its own work from a queue and hands results back in one loop callback
per batch of jobs, cheaper than a future and a wake-up per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.storage.sqlite.writer_child import connect

T = TypeVar("T")
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(WRITE_VERBS)


def _fetch_all(db: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
    return db.execute(sql, args).fetchall()


@dataclass(slots=True)
class _Call:
    work: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


# What the thread hands back: the future, and its result or the exception it failed with.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(outcomes: list[_Outcome]) -> None:
    """On the loop: resolve each caller's future."""
    for future, result, error in outcomes:
        if future.done():  # its caller was cancelled; a write stands all the same
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class SQLiteThread:
    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = pragmas
        self._jobs: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._worker = threading.Thread(target=self._serve, name="relay-sqlite", daemon=True)
        self._worker.start()
        await self.call(self._connect)

    def _connect(self) -> None:
        db = connect(self.path, self.pragmas)
        db.row_factory = sqlite3.Row
        self._db = db

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def close(self) -> None:
        """Commit what is queued, close the connection, end the thread."""
        worker = self._worker
        if worker is None:
            return
        await self.call(self._disconnect)  # queued behind every write submitted so far
        self._worker = None
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, worker.join)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("the SQLite store is not open")
        return self._db

    async def call(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` on the connection's thread."""
        future = self._new_future()
        self._jobs.put(_Call(work, args, future))
        result: T = await future
        return result

    async def read(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        return await self.call(_fetch_all, self.db, sql, args)

    def _new_future(self) -> asyncio.Future[Any]:
        if self._worker is None or self._loop is None:
            raise sqlite3.OperationalError("the SQLite store is not open")
        return self._loop.create_future()

    def _serve(self) -> None:
        """The thread: take every job waiting, run them, hand their results back together."""
        while True:
            jobs = [self._jobs.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    jobs.append(self._jobs.get_nowait())
            calls = [job for job in jobs if isinstance(job, _Call)]
            if calls:
                self._hand_back([self._run_call(call) for call in calls])
            if any(job is None for job in jobs):  # close() put it last
                return

    def _hand_back(self, outcomes: list[_Outcome]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is waiting
            self._loop.call_soon_threadsafe(_settle, outcomes)

    @staticmethod
    def _run_call(call: _Call) -> _Outcome:
        try:
            return call.future, call.work(*call.args), None
        except Exception as exc:
            return call.future, None, exc
