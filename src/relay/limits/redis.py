"""The moving window in Redis, through the `limits` library: one count for every instance."""

from __future__ import annotations

import math
import time

from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from relay.limits.decision import Decision
from relay.limits.memory import parse_rate


def redis_storage_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class SharedWindow:
    """Hits counted in Redis; every call raises if Redis does not answer."""

    def __init__(self, redis_url: str) -> None:
        self._storage = RedisStorage(
            redis_storage_uri(redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def decide(self, rate: str, identity: tuple[str, ...]) -> Decision:
        """Count a hit if it fits, and say where the window stands."""
        item = parse_rate(rate)
        allowed = await self._limiter.hit(item, *identity)
        return await self._stats(rate, identity, allowed=allowed)

    async def refusal(
        self, rate: str, identity: tuple[str, ...], *, reserved: int = 0
    ) -> Decision | None:
        """The refusal a hit would get now, or None if it would pass; counts nothing.

        `reserved`: hits the caller knows are coming, counted as if already in the window.
        """
        if await self._limiter.test(parse_rate(rate), *identity, cost=reserved + 1):
            return None
        return await self._stats(rate, identity, allowed=False)

    async def check(self) -> bool:
        """True when Redis answers."""
        return bool(await self._storage.check())

    async def _stats(self, rate: str, identity: tuple[str, ...], *, allowed: bool) -> Decision:
        item = parse_rate(rate)
        stats = await self._limiter.get_window_stats(item, *identity)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), reset)
