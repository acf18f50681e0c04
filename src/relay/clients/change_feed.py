"""Client changes told to every instance, so each drops its cached state at once.

PostgreSQL's LISTEN/NOTIFY when the store is PostgreSQL, else Redis pub/sub
when REDIS_URL is set, else (SQLite alone) a poll of the database file that
notices another process's change (the CLI's, another worker's) within a
fraction of a second. A listener that loses its connection forgets the whole
cache when it is back, since it may have missed changes; the cache's bounded
lifetime covers the gap meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
import redis.asyncio as redis

from relay.storage import SQLiteStore, Store

logger = logging.getLogger("relay.notify")
CHANNEL = "relay_client_changes"
# How often an SQLite instance without Redis looks for client changes made by others.
POLL_SECONDS = 0.25
# The count moves with a create or delete, the latest updated_at with any change,
# the generations' total with every revocation (even one stamped by a clock set back).
CLIENTS_SUMMARY = "SELECT count(*), max(updated_at), total(key_generation) FROM clients"
RECONNECT_SECONDS = 1.0  # the first retry; each failure in a row doubles it
RECONNECT_MAX_SECONDS = 60.0

# Called with a client id, or with None for "forget every client".
OnChange = Callable[[str | None], None]


class ChangeFeed(Protocol):
    async def publish(self, client_id: str) -> None: ...
    async def start(self, on_change: OnChange) -> None: ...
    async def stop(self) -> None: ...


class NoFeed:
    async def publish(self, client_id: str) -> None:
        return None

    async def start(self, on_change: OnChange) -> None:
        return None

    async def stop(self) -> None:
        return None


class _ListeningFeed:
    """The reconnect loop both real feeds share; subclasses supply `_listen`."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, on_change: OnChange) -> None:
        self._task = asyncio.create_task(self._run(on_change))
        # Wait briefly for the first subscription, so changes right after start are seen.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=2.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, on_change: OnChange) -> None:
        connected_before = False
        failures = 0  # in a row: a service that stays down is retried, and logged, ever less often
        while True:
            self._ready.clear()
            error = "closed"
            try:
                await self._listen(on_change, forget_all=connected_before)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect after a pause
                error = type(exc).__name__
            if self._ready.is_set():
                failures = 0  # it had connected: a new loss, not the same one going on
            delay = reconnect_delay(failures)
            failures += 1
            logger.warning(
                "change feed lost" if failures == 1 else "change feed still down",
                extra={"error": error, "failures": failures, "retry_in_s": delay},
            )
            connected_before = True
            await asyncio.sleep(delay)

    async def _listen(self, on_change: OnChange, *, forget_all: bool) -> None:
        raise NotImplementedError


def reconnect_delay(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row: 1, 2, 4 ... 60."""
    return min(RECONNECT_SECONDS * 2.0 ** min(failures, 16), RECONNECT_MAX_SECONDS)


class PostgresFeed(_ListeningFeed):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.database_url = database_url

    async def publish(self, client_id: str) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, client_id)
        finally:
            await conn.close()

    async def _listen(self, on_change: OnChange, *, forget_all: bool) -> None:
        conn = await asyncpg.connect(self.database_url)
        closed = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: closed.set())
            await conn.add_listener(CHANNEL, lambda *args: on_change(str(args[-1])))
            if forget_all:
                on_change(None)
            self._ready.set()
            while not closed.is_set():
                # A quiet connection can die without telling us: check it now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), timeout=5.0)
                if not closed.is_set():
                    await conn.fetchval("SELECT 1")
        finally:
            if not conn.is_closed():
                await conn.close()


class RedisFeed(_ListeningFeed):
    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self.client: Any = redis.from_url(redis_url, socket_connect_timeout=1.0)

    async def publish(self, client_id: str) -> None:
        await self.client.publish(CHANNEL, client_id)

    async def _listen(self, on_change: OnChange, *, forget_all: bool) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            if forget_all:
                on_change(None)
            self._ready.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if message is not None:
                    data = message["data"]
                    on_change(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            await pubsub.aclose()

    async def stop(self) -> None:
        await super().stop()
        await self.client.aclose()


class SQLitePoll:
    """Client changes made by other processes on the same SQLite file, polled.

    Every POLL_SECONDS, `PRAGMA data_version` on the store's reader connection:
    it moves when another connection commits (this process's own writer, another
    worker, the CLI) and reads no page. Only when it moved is CLIENTS_SUMMARY read;
    when that differs, every cached client is forgotten and read again on its next
    request. Requests themselves never wait on this: it runs in the background.
    """

    def __init__(self, store: SQLiteStore, *, every: float = POLL_SECONDS) -> None:
        self.store = store
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._version: object = None  # data_version at the last look
        self._summary: object = None  # CLIENTS_SUMMARY at the last look

    async def publish(self, client_id: str) -> None:
        return None  # the change is in the file, where every instance looks

    async def start(self, on_change: OnChange) -> None:
        with contextlib.suppress(Exception):  # the poll reports failures; start regardless
            await self._clients_changed()  # the state later changes are measured from
        self._task = asyncio.create_task(self._run(on_change))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, on_change: OnChange) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.every)
            try:
                if await self._clients_changed():
                    on_change(None)
            except Exception as exc:  # the store is down: look again, and say so once
                if not failing:
                    logger.warning("client change poll failed", extra={"error": type(exc).__name__})
                failing, self._version = True, None
            else:
                failing = False

    async def _clients_changed(self) -> bool:
        """Whether the clients table changed since the last look (False on the first)."""
        thread = self.store.thread
        (version,) = await thread.read("PRAGMA data_version", ())
        if tuple(version) == self._version:
            return False
        self._version = tuple(version)
        (summary,) = await thread.read(CLIENTS_SUMMARY, ())
        known, self._summary = self._summary, tuple(summary)
        return known is not None and known != self._summary


def make_feed(database_url: str, redis_url: str | None, *, store: Store) -> ChangeFeed:
    if database_url.startswith(("postgresql://", "postgres://")):
        return PostgresFeed(database_url)
    if redis_url:
        return RedisFeed(redis_url)
    if isinstance(store, SQLiteStore):
        return SQLitePoll(store)
    return NoFeed()
