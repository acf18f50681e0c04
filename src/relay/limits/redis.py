"""The moving window in Redis, through the `limits` library: one count for every instance."""

from __future__ import annotations

import math
import time
from typing import Any

from limits.aio.storage import RedisStorage
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from relay.limits.decision import Decision
from relay.limits.memory import Counter


def redis_storage_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


def connection_options() -> dict[str, Any]:
    """What redis-py is told about its connections (passed on by RedisStorage).

    A broken connection is retried once, at once, on a new one: after Redis
    restarts, every connection pooled before is dead, and each would
    otherwise fail one request (and switch this instance to counting in
    memory) before it was replaced. A timeout is not retried: a Redis that
    hangs would make the request wait twice as long. (A dict because
    RedisStorage types its redis-py options as scalars.)
    """
    return {
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


class SharedWindow:
    """Hits counted in Redis; every call raises if Redis does not answer.

    Through the storage's own moving-window methods rather than `limits`'
    MovingWindowRateLimiter, whose keys hold the rate (amount and period):
    a counter's key is `memory.window_key`'s, so a change of rate keeps the count.
    """

    def __init__(self, redis_url: str) -> None:
        self._storage = RedisStorage(
            redis_storage_uri(redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            **connection_options(),
        )

    async def decide(self, counter: Counter) -> Decision:
        """Count a hit if it fits, and say where the window stands."""
        allowed = await self._storage.acquire_entry(counter.key, counter.amount, counter.expiry)
        return await self._stats(counter, allowed=allowed)

    async def refusal(self, counter: Counter, *, reserved: int = 0) -> Decision | None:
        """The refusal a hit would get now, or None if it would pass; counts nothing.

        `reserved`: hits the caller knows are coming, counted as if already in the window.
        """
        decision = await self._stats(counter, allowed=False)
        if decision.remaining > reserved:
            return None
        return Decision(False, decision.limit, 0, decision.reset_seconds)

    async def check(self) -> bool:
        """True when Redis answers."""
        return bool(await self._storage.check())

    async def _stats(self, counter: Counter, *, allowed: bool) -> Decision:
        start, count = await self._storage.get_moving_window(
            counter.key, counter.amount, counter.expiry
        )
        reset = max(0, math.ceil(start + counter.expiry - time.time()))
        return Decision(allowed, counter.amount, max(0, counter.amount - count), reset)
