"""Health checks, each timed; the backend's is cached so probes never pile up on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from relay.backends.base import Backend
from relay.observability.timing import elapsed_ms
from relay.storage.base import Store

Status = Literal["ok", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's state; `name` and `kind` say which backend or limit store it is."""

    status: Literal["ok", "down"]
    latency_ms: float
    name: str | None = None
    kind: Literal["memory", "redis"] | None = None
    detail: str | None = None  # why it is down, when the dependency said (no secrets)


@dataclass(frozen=True, slots=True)
class Health:
    """`down` when the database is unreachable, `degraded` when anything else is."""

    status: Status
    database: Check
    backend: Check
    rate_limit_store: Check


# A dependency that has not answered by then is down: /health itself must answer promptly,
# even when the database host stops responding instead of refusing connections.
PROBE_TIMEOUT = 2.0
_abandoned: set[asyncio.Future[object]] = set()


async def _within(probe: Callable[[], Awaitable[object]], seconds: float) -> None:
    """Await `probe`, or raise TimeoutError after `seconds` without waiting for it to stop.

    A plain timeout is not enough: cancelling a query on a server that does not
    answer waits for the server to acknowledge the cancellation (asyncpg's pool
    does), so the probe is left to finish in the background instead.
    """
    task: asyncio.Future[object] = asyncio.ensure_future(probe())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        _abandoned.add(task)  # a strong reference until it ends, so it is not collected
        task.add_done_callback(_forget)
        raise TimeoutError("the probe did not answer in time")
    task.result()


def _forget(task: asyncio.Future[object]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # mark any late failure as seen


async def _timed(probe: Callable[[], Awaitable[object]]) -> Check:
    started = time.perf_counter()
    try:
        await _within(probe, PROBE_TIMEOUT)
    except Exception:  # any failure of a probe means the same thing: down
        return Check("down", elapsed_ms(started))
    return Check("ok", elapsed_ms(started))


class HealthService:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        backend_ttl: float,
        rate_limit_probe: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.backend_ttl = backend_ttl
        self.rate_limit_probe = rate_limit_probe
        self._backend_check: Check | None = None
        self._backend_checked_at = 0.0

    async def database(self) -> Check:
        return await _timed(self.store.ping)

    async def backend_check(self) -> Check:
        fresh = time.monotonic() - self._backend_checked_at < self.backend_ttl
        if self._backend_check is not None and fresh:
            return self._backend_check
        started = time.perf_counter()
        try:
            report = await self.backend.health()
            check = Check(
                report.status, report.latency_ms, name=self.backend.name, detail=report.detail
            )
        except Exception:  # a probe that raises is a backend that is down
            check = Check("down", elapsed_ms(started), name=self.backend.name)
        self._backend_check, self._backend_checked_at = check, time.monotonic()
        return check

    async def rate_limit_store(self) -> Check:
        if self.rate_limit_probe is None:
            return Check("ok", 0.0, kind="memory")
        return replace(await _timed(self.rate_limit_probe), kind="redis")

    async def report(self) -> Health:
        database = await self.database()
        backend = await self.backend_check()
        limits = await self.rate_limit_store()
        status: Status = "ok"
        if database.status == "down":
            status = "down"
        elif "down" in (backend.status, limits.status):
            status = "degraded"
        return Health(status, database, backend, limits)
