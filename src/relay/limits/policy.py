"""Which limits a request counts against, and where the counts live.

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
import time
from collections.abc import Sequence
from typing import Literal, NoReturn

from relay.config import Settings
from relay.limits.decision import Decision, RateLimited
from relay.limits.memory import InMemory, counter_for
from relay.limits.redis import SharedWindow
from relay.observability.metrics import Metrics
from relay.storage.records import ClientRecord

logger = logging.getLogger("relay.limits")
REDIS_RETRY_SECONDS = 5.0
# A client's limits: `default` counts every request, `chat` each chat on top.
LimitKind = Literal["default", "chat"]


class RateLimiter:
    """Moving-window counts in Redis when configured, else (or while it fails) in memory."""

    def __init__(self, redis_url: str | None = None) -> None:
        self._memory = InMemory()
        self._redis = SharedWindow(redis_url) if redis_url else None
        self._redis_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def hit(self, rate: str, *identity: str) -> Decision:
        """Count one request against `rate` for `identity`, and say if it may pass."""
        counter = counter_for(rate, identity)
        shared = self._shared()
        if shared is not None:
            try:
                return await shared.decide(counter)
            except Exception as exc:  # the store failed: limit on this instance instead
                self._redis_failed(exc)
        return self._memory.decide(counter)

    async def is_blocked(self, rate: str, *identity: str) -> Decision | None:
        """A refusal if `identity` has used up `rate`, without counting anything."""
        counter = counter_for(rate, identity)
        shared = self._shared()
        if shared is not None:
            try:
                return await shared.refusal(counter)
            except Exception as exc:  # the store failed: check this instance's counters
                self._redis_failed(exc)
        return self._memory.refusal(counter)

    async def probe(self) -> None:
        """Raise unless the shared store answers (for /health)."""
        if self._redis is not None and not await self._redis.check():
            raise ConnectionError("the rate-limit store does not answer")

    def _shared(self) -> SharedWindow | None:
        """The Redis counts, unless there are none or they failed a moment ago."""
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            return self._redis
        return None

    def _redis_failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning(
            "rate-limit store unreachable; limiting per instance",
            extra={"error": type(exc).__name__},
        )


class Limits:
    """The limits Relay applies: per client on protected routes, per address on
    failed token exchanges. Refusals raise RateLimited and are counted in metrics."""

    def __init__(self, settings: Settings, limiter: RateLimiter, metrics: Metrics) -> None:
        self.settings = settings
        self.limiter = limiter
        self.metrics = metrics

    def rate_of(self, client: ClientRecord, kind: LimitKind) -> str:
        """The client's own rate for `kind`, or the global one."""
        return client.rate_limits.get(kind) or self.settings.default_rate(kind)

    async def admit(
        self, client: ClientRecord, kind: LimitKind, *, unless_full: Sequence[LimitKind] = ()
    ) -> Decision:
        """Count one request against the client's `kind` limit; RateLimited if it is full.

        `unless_full` names limits to be counted later (a chat's, once it is
        accepted for the backend) that refuse the request now if already full,
        so a request they will refuse does not use up `kind` first. (In memory
        a check and a count are one step; on Redis a request racing in between
        can still be counted by one limit and refused by the next.)
        """
        for later in unless_full:
            rate = self.rate_of(client, later)
            refusal = await self.limiter.is_blocked(rate, later, client.id)
            if refusal is not None:
                self._refuse(later, f"Too many requests; the {later} limit is {rate}.", refusal)
        rate = self.rate_of(client, kind)
        decision = await self.limiter.hit(rate, kind, client.id)
        if not decision.allowed:
            self._refuse(kind, f"Too many requests; the {kind} limit is {rate}.", decision)
        return decision

    async def check_address(self, address: str) -> None:
        """Refuse every exchange from an address past its failed-attempt limit."""
        rate = self.settings.rate_limit_auth_failures
        blocked = await self.limiter.is_blocked(rate, "auth_failures", address)
        if blocked is not None:
            message = "Too many failed attempts from this address; wait and retry."
            self._refuse("auth_failures", message, blocked)

    async def count_failure(self, address: str) -> None:
        """One more failed exchange from `address`."""
        await self.limiter.hit(self.settings.rate_limit_auth_failures, "auth_failures", address)

    def _refuse(self, kind: str, message: str, refusal: Decision) -> NoReturn:
        self.metrics.rate_limited.labels(kind).inc()
        raise RateLimited(refusal, message)
