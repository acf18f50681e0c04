"""Group commit on the event loop: writes that queue while a batch commits go in the next.

A durable commit is the dear part of a write (a round trip and a WAL flush).
Concurrent requests share one instead of paying
one each, and each still waits for the commit that holds its own write, so
nothing acknowledged can be lost. A write arriving while nothing is committing
goes at once: a lone request never waits for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

W = TypeVar("W")
R = TypeVar("R")


class GroupCommit(Generic[W, R]):
    """Feeds queued writes to `commit`, one batch at a time.

    `commit` stores a batch in one transaction and answers one result per write,
    in order: the write's result, or the exception that only that write failed
    with. If it raises, every write of the batch fails with that exception.
    """

    def __init__(self, commit: Callable[[list[W]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._commit = commit
        self._pending: list[tuple[W, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, write: W) -> R:
        """Queue `write`; return its result once the transaction holding it committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait until every queued write is committed (or failed)."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._commit([write for write, _ in batch])
            except Exception as exc:  # the whole batch failed (database down, disk full)
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its request was cancelled; the write stands
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
