"""Which limits a request counts against, and where the counts live.

Moving window: a client can never send more than its limit in any window,
including across the edge between two fixed windows.

With REDIS_URL set, every instance shares one count, and also keeps its own
count in memory of the requests it let through (see RateLimiter). If Redis
stops answering, that count limits on its own (so a client gets at most its
limit per instance) and Redis is tried again every REDIS_RETRY_SECONDS;
/health reports `rate_limit_store: down` meanwhile. A request never fails
because Redis did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from relay.config import Settings
from relay.limits.decision import Decision, RateLimited
from relay.limits.memory import InMemory, counter_for
from relay.limits.redis import SharedWindow
from relay.observability.metrics import Metrics
from relay.storage.records import ClientRecord

logger = logging.getLogger("relay.limits")
# While Redis fails, one request (or /health probe) this often tries it again.
REDIS_RETRY_SECONDS = 1.0
# A client's limits: `default` counts every request, `chat` each chat on top.
LimitKind = Literal["default", "chat"]


class RateLimiter:
    """Moving-window counts in Redis when configured, else (or while it fails) in memory.

    With Redis, every request this instance lets through is counted in its
    memory too, whichever store decided, and memory is asked first: a client
    that has used up its limit on this instance alone is refused without
    asking Redis (the shared count holds at least as many), and a request
    Redis refuses is taken back. So while Redis fails, the count in memory goes
    on from this instance's share instead of from zero, and once Redis is
    back (empty, after a restart that lost its data) the requests counted in
    memory meanwhile still count on this instance.

    The bound, with N instances: while Redis answers, the limit in any window,
    all instances together; in a window that holds a failure of Redis, or its
    return without its data, the limit per instance (N times the limit); in
    a window that starts once every instance counts in Redis again, the limit.

    While Redis fails, requests are counted in memory without waiting on it,
    and one request (or /health probe) every REDIS_RETRY_SECONDS tries it.
    """

    def __init__(self, redis_url: str | None = None) -> None:
        self._memory = InMemory()
        self._redis = SharedWindow(redis_url) if redis_url else None
        self._failing = False
        self._retry_at = 0.0

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def hit(self, rate: str, *identity: str) -> Decision:
        """Count one request against `rate` for `identity`, and say if it may pass."""
        counter = counter_for(rate, identity)
        own = self._memory.decide(counter)  # all there is without Redis
        shared = self._shared() if own.allowed else None
        if shared is None:
            return own
        try:
            decision = await shared.decide(counter)
        except Exception as exc:  # the store failed: this instance's count decides
            self._failed(exc)
            return own
        self._answered()
        if not decision.allowed:
            self._memory.forget(counter)
        return decision

    async def is_blocked(self, rate: str, *identity: str, reserved: int = 0) -> Decision | None:
        """A refusal if `identity` has used up `rate`, without counting anything.

        `reserved`: hits on their way, counted as if already made.
        """
        counter = counter_for(rate, identity)
        own = self._memory.refusal(counter, reserved=reserved)
        shared = self._shared() if own is None else None
        if shared is None:
            return own
        try:
            refusal = await shared.refusal(counter, reserved=reserved)
        except Exception as exc:  # the store failed: this instance's count said no refusal
            self._failed(exc)
            return None
        self._answered()
        return refusal

    async def probe(self) -> None:
        """Raise unless the shared store answers and requests are counted in it (for /health).

        While Redis fails, this is down without asking it, except when it is
        time to try it again: then a ping that answers puts requests back on it.
        """
        if self._redis is None:
            return
        if self._failing and not self._retry_due():
            raise ConnectionError("the rate-limit store failed; counting per instance")
        if not await self._redis.check():
            self._failed(ConnectionError("no answer to a ping"))
            raise ConnectionError("the rate-limit store does not answer")
        self._answered()

    def _shared(self) -> SharedWindow | None:
        """The Redis counts, unless there are none or they are failing (and no retry is due)."""
        if self._failing and not self._retry_due():
            return None
        return self._redis

    def _retry_due(self) -> bool:
        """True for the one caller whose turn it is to try a failing Redis again."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + REDIS_RETRY_SECONDS
        return True

    def _failed(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        if not self._failing:
            self._failing = True
            logger.warning(
                "rate-limit store unreachable; limiting per instance",
                extra={"error": type(exc).__name__},
            )

    def _answered(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("rate-limit store answers again; limits are shared")


class Limits:
    """The limits Relay applies: per client on protected routes, per address on
    failed token exchanges. Refusals raise RateLimited and are counted in metrics."""

    def __init__(self, settings: Settings, limiter: RateLimiter, metrics: Metrics) -> None:
        self.settings = settings
        self.limiter = limiter
        self.metrics = metrics
        self._exchanges: dict[str, _Exchanges] = {}  # per address, while it has some running

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

    @asynccontextmanager
    async def exchange_attempt(self, address: str) -> AsyncIterator[ExchangeAttempt]:
        """One token exchange from `address`, admitted for the block; RateLimited if full.

        An exchange counts as failed until it is known not to be: the address's
        failures in the window plus its exchanges still running may not reach
        RATE_LIMIT_AUTH_FAILURES, so concurrent guesses cannot all pass before
        any of them is counted. `attempt.failed()` counts it for good; one that
        ends otherwise gives its place back (a successful exchange costs nothing).
        """
        entry = self._exchanges.setdefault(address, _Exchanges())
        entry.users += 1
        try:
            async with entry.lock:  # the window read on Redis awaits: keep it and `running` in step
                rate = self.settings.rate_limit_auth_failures
                blocked = await self.limiter.is_blocked(
                    rate, "auth_failures", address, reserved=entry.running
                )
                if blocked is not None:
                    message = "Too many failed attempts from this address; wait and retry."
                    self._refuse("auth_failures", message, blocked)
                entry.running += 1
            attempt = ExchangeAttempt(self, address, entry)
            try:
                yield attempt
            finally:
                if not attempt.counted:
                    entry.running -= 1
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._exchanges[address]

    def _refuse(self, kind: str, message: str, refusal: Decision) -> NoReturn:
        self.metrics.rate_limited.labels(kind).inc()
        raise RateLimited(refusal, message)


@dataclass(slots=True)
class _Exchanges:
    """One address's token exchanges: those running, and who holds or awaits the entry."""

    running: int = 0
    users: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ExchangeAttempt:
    """One admitted token exchange, counted as running until it ends or `failed()`."""

    def __init__(self, limits: Limits, address: str, entry: _Exchanges) -> None:
        self._limits = limits
        self._address = address
        self._entry = entry
        self.counted = False

    async def failed(self) -> None:
        """Count this exchange as a failure from its address, in place of its running one."""
        limits, entry = self._limits, self._entry
        async with entry.lock:  # no admission reads the window between the hit and the release
            rate = limits.settings.rate_limit_auth_failures
            await limits.limiter.hit(rate, "auth_failures", self._address)
            entry.running -= 1
            self.counted = True
