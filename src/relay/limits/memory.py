"""The moving window in this process's memory: per key, the times of its hits."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse

from relay.limits.decision import Decision


@dataclass(frozen=True, slots=True)
class Counter:
    """One moving window: its storage key, how many hits it holds, for how long."""

    key: str
    amount: int
    expiry: int


@lru_cache(maxsize=256)
def parse_rate(rate: str) -> RateLimitItem:
    return parse(rate)


def window_key(identity: tuple[str, ...]) -> str:
    """The key of one count (a limit kind and a client, say), whatever its rate.

    Neither the amount nor the period is part of it (as they are of `limits`'
    own keys), so a change of a client's rate keeps the hits counted so far:
    tightened from 5 to 4 a minute after 5 chats, the client is refused; raised
    to 10, it has 5 more. A new period counts the hits the store still holds
    within it: from a minute to an hour, at least the last minute's (the
    shorter window let older hits go); from an hour to a minute, the last minute's.
    """
    return "/".join(identity)


@lru_cache(maxsize=65_536)
def counter_for(rate: str, identifiers: tuple[str, ...]) -> Counter:
    """Built once per rate and client, looked up by strings (a RateLimitItem hashes in Python)."""
    item = parse_rate(rate)
    return Counter(window_key(identifiers), item.amount, item.get_expiry())


class InMemory:
    """A deque of hit times per key.

    Written here rather than taken from `limits`' memory storages, by
    measurement: its async storage hands expiry work to a thread on every
    request, its sync one starts a timer thread every few milliseconds of
    traffic; a deque per key costs a small fraction of either.
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
        now, amount = time.time(), counter.amount
        hits = self._window(counter, now)
        allowed = len(hits) < amount
        if allowed:
            self._append(hits, now)
        return Decision(allowed, amount, max(0, amount - len(hits)), _reset(hits, counter, now))

    def refusal(self, counter: Counter, *, reserved: int = 0) -> Decision | None:
        """The refusal a hit would get now, or None if it would pass; counts nothing.

        `reserved`: hits the caller knows are coming, counted as if already in the window.
        """
        now = time.time()
        hits = self._window(counter, now)
        if len(hits) + reserved < counter.amount:
            return None
        return Decision(False, counter.amount, 0, _reset(hits, counter, now))

    def forget(self, counter: Counter) -> None:
        """Take back the latest hit `decide` counted (another store refused the request)."""
        hits = self._hits.get(counter.key)
        if hits:
            hits.pop()

    def _window(self, counter: Counter, now: float) -> deque[float]:
        key, expiry = counter.key, counter.expiry
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        self._expiry[key] = expiry  # the latest rate's period: a client's rate can change
        while hits and hits[0] <= now - expiry:
            hits.popleft()
        return hits

    def _append(self, hits: deque[float], now: float) -> None:
        hits.append(now)
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget keys with no hit left in their window (an address seen once, say)."""
        self._until_sweep = self._sweep_every
        idle = [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self._expiry[k]
        ]
        for key in idle:
            del self._hits[key], self._expiry[key]


def _reset(hits: deque[float], counter: Counter, now: float) -> int:
    """Seconds until a request frees up: until the hit that fills the window leaves it.

    That is the oldest hit, unless the window holds more than the amount (the
    rate was lowered): then the one `amount` places from the newest.
    """
    if not hits:
        return 0
    oldest_that_counts = hits[max(0, len(hits) - counter.amount)]
    return max(0, math.ceil(oldest_that_counts + counter.expiry - now))
