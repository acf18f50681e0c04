"""Moving-window rate limits on the `limits` library, with a fallback when Redis fails.

Moving window: a client can never send more than its limit in any window,
including across the edge between two fixed windows.

With REDIS_URL set, every instance shares one count. If Redis stops answering,
each instance keeps limiting on its own in-memory counters (so a client gets
at most its limit per instance) and retries Redis after a short pause; /health
reports `rate_limit_store: down` meanwhile. A request never fails because
Redis did.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

logger = logging.getLogger("relay.limits")
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a request frees up

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class Limiter(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def test(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class InMemory:
    """The moving window in this process's memory: per key, the times of its hits.

    Written here rather than taken from `limits`' memory storages, by
    measurement: its async storage hands expiry work to a thread on every
    request (67 us a hit), its sync one starts a timer thread every 10 ms of
    traffic (90 us a hit on average). This is a deque per key (about 2 us).
    """

    def __init__(self, *, sweep_every: int = 10_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._expiry: dict[str, int] = {}
        self._sweep_every = sweep_every  # hits between sweeps of keys nobody uses any more
        self._until_sweep = sweep_every

    def decide(self, counter: Counter) -> Decision:
        """Count a hit if it fits, and say where the window stands, in one pass.

        What `limits`' hit() then get_window_stats() answer, without their two
        awaits and second walk of the window (the hot path: every protected request).
        """
        now, expiry, amount = time.time(), counter.expiry, counter.amount
        hits = self._window(counter.key, expiry, now)
        allowed = len(hits) < amount
        if allowed:
            hits.append(now)
            self._until_sweep -= 1
            if self._until_sweep <= 0:
                self._sweep(now)
        reset = max(0, math.ceil(hits[0] + expiry - now)) if hits else 0
        return Decision(allowed, amount, amount - len(hits), reset)

    def refusal(self, counter: Counter) -> Decision | None:
        """The refusal a hit would get now, or None if it would pass; counts nothing."""
        now, expiry, amount = time.time(), counter.expiry, counter.amount
        hits = self._window(counter.key, expiry, now)
        if len(hits) < amount:
            return None
        return Decision(False, amount, 0, max(0, math.ceil(hits[0] + expiry - now)))

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            self._expiry[key] = expiry
        while hits and hits[0] <= now - expiry:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        """Forget keys with no hit left in their window (an address seen once, say)."""
        self._until_sweep = self._sweep_every
        idle = [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self._expiry[k]
        ]
        for key in idle:
            del self._hits[key], self._expiry[key]


@dataclass(frozen=True, slots=True)
class Counter:
    """One moving window: its storage key, how many hits it holds, for how long."""

    key: str
    amount: int
    expiry: int


@lru_cache(maxsize=65_536)
def counter_for(rate: str, identifiers: tuple[str, ...]) -> Counter:
    """Built once per rate and client, looked up by strings (a RateLimitItem hashes in Python)."""
    item = parse_rate(rate)
    return Counter(item.key_for(*identifiers), item.amount, item.get_expiry())


@lru_cache(maxsize=256)
def parse_rate(rate: str) -> RateLimitItem:
    return parse(rate)


def redis_storage_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self._memory = InMemory()
        self._redis: Limiter | None = None
        self._redis_storage: Storage | None = None
        if redis_url:
            self._redis_storage = RedisStorage(
                redis_storage_uri(redis_url),
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
            self._redis = MovingWindowRateLimiter(self._redis_storage)
        self._redis_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def hit(self, rate: str, *identity: str) -> Decision:
        """Count one request against `rate` for `identity`, and say if it may pass."""
        shared = self._shared()
        if shared is not None:
            try:
                return await _decide(shared, parse_rate(rate), identity)
            except Exception as exc:  # the store failed: limit on this instance instead
                self._redis_failed(exc)
        return self._memory.decide(counter_for(rate, identity))

    async def is_blocked(self, rate: str, *identity: str) -> Decision | None:
        """A refusal if `identity` has used up `rate`, without counting anything."""
        shared = self._shared()
        if shared is not None:
            item = parse_rate(rate)
            try:
                if await shared.test(item, *identity):
                    return None
                return await _stats(shared, item, identity, allowed=False)
            except Exception as exc:  # the store failed: check this instance's counters
                self._redis_failed(exc)
        return self._memory.refusal(counter_for(rate, identity))

    async def probe(self) -> None:
        """Raise unless the shared store answers (for /health)."""
        if self._redis_storage is not None and not await self._redis_storage.check():
            raise ConnectionError("the rate-limit store does not answer")

    def _shared(self) -> Limiter | None:
        """The Redis limiter, unless there is none or it failed a moment ago."""
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            return self._redis
        return None

    def _redis_failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning(
            "rate-limit store unreachable; limiting per instance",
            extra={"error": type(exc).__name__},
        )


async def _decide(limiter: Limiter, item: RateLimitItem, identity: tuple[str, ...]) -> Decision:
    allowed = await limiter.hit(item, *identity)
    return await _stats(limiter, item, identity, allowed=allowed)


async def _stats(
    limiter: Limiter,
    item: RateLimitItem,
    identity: tuple[str, ...],
    *,
    allowed: bool,
) -> Decision:
    stats = await limiter.get_window_stats(item, *identity)
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    return Decision(allowed, item.amount, max(0, stats.remaining), reset)
