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


@lru_cache(maxsize=65_536)
def counter_for(rate: str, identifiers: tuple[str, ...]) -> Counter:
    """Built once per rate and client, looked up by strings (a RateLimitItem hashes in Python)."""
    item = parse_rate(rate)
    return Counter(item.key_for(*identifiers), item.amount, item.get_expiry())


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

    def refusal(self, counter: Counter, *, reserved: int = 0) -> Decision | None:
        """The refusal a hit would get now, or None if it would pass; counts nothing.

        `reserved`: hits the caller knows are coming, counted as if already in the window.
        """
        now, expiry, amount = time.time(), counter.expiry, counter.amount
        hits = self._window(counter.key, expiry, now)
        if len(hits) + reserved < amount:
            return None
        reset = max(0, math.ceil(hits[0] + expiry - now)) if hits else 0
        return Decision(False, amount, 0, reset)

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
