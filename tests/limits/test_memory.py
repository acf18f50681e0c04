"""The in-memory moving window: exact counts, reset times, and no unbounded growth."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from relay.limits.memory import InMemory, counter_for


def hits(limiter: InMemory, rate: str, key: str, times: int) -> list[bool]:
    counter = counter_for(rate, (key,))
    return [limiter.decide(counter).allowed for _ in range(times)]


def test_exactly_the_limit_passes_within_the_window() -> None:
    limiter = InMemory()
    assert hits(limiter, "3/minute", "k", 4) == [True, True, True, False]
    refusal = limiter.refusal(counter_for("3/minute", ("k",)))
    assert refusal is not None and refusal.remaining == 0
    assert 59 <= refusal.reset_seconds <= 60
    assert hits(limiter, "3/minute", "other", 1) == [True]  # keys are counted apart


def test_hits_leave_the_window_one_by_one() -> None:
    limiter = InMemory()
    assert hits(limiter, "2/second", "k", 1) == [True]
    time.sleep(0.6)
    assert hits(limiter, "2/second", "k", 2) == [True, False]
    time.sleep(0.5)  # the first hit has left the moving window, the second has not
    assert hits(limiter, "2/second", "k", 2) == [True, False]


def test_keys_without_hits_in_their_window_are_swept() -> None:
    limiter = InMemory(sweep_every=10)
    for n in range(10):
        hits(limiter, "5/second", f"address-{n}", 1)
    assert len(limiter._hits) <= 10
    time.sleep(1.1)
    hits(limiter, "100/second", "busy", 10)
    assert set(limiter._hits) == {counter_for("100/second", ("busy",)).key}


async def test_decide_agrees_with_the_limits_librarys_moving_window() -> None:
    """The one-pass decision answers what `limits`' hit() and get_window_stats() answer."""
    ours, reference, item = InMemory(), MovingWindowRateLimiter(MemoryStorage()), parse("3/minute")
    for _ in range(5):
        decision = ours.decide(counter_for("3/minute", ("k",)))
        allowed = await reference.hit(item, "k")
        stats = await reference.get_window_stats(item, "k")
        assert decision.allowed == allowed
        assert decision.limit == 3
        assert decision.remaining == stats.remaining
        assert abs(decision.reset_seconds - (stats.reset_time - time.time())) <= 1
    assert (decision.allowed, decision.remaining) == (False, 0)
    assert 59 <= decision.reset_seconds <= 60


def test_a_refusal_is_told_without_counting() -> None:
    limiter, counter = InMemory(), counter_for("2/minute", ("client",))
    assert limiter.refusal(counter) is None
    assert limiter.decide(counter).allowed
    assert limiter.refusal(counter) is None  # one left; asking took none of it
    assert limiter.decide(counter).remaining == 0
    refusal = limiter.refusal(counter)
    assert refusal is not None
    assert (refusal.allowed, refusal.limit, refusal.remaining) == (False, 2, 0)
    assert 59 <= refusal.reset_seconds <= 60
    assert not limiter.decide(counter).allowed


def test_the_count_outlives_a_change_of_rate() -> None:
    """One key per kind and client, whatever the rate: a new rate counts the hits held."""
    key = counter_for("5/minute", ("chat", "c1")).key
    assert counter_for("4/hour", ("chat", "c1")).key == key
    assert counter_for("5/minute", ("chat", "c2")).key != key
    assert counter_for("5/minute", ("default", "c1")).key != key
    limiter = InMemory()
    assert hits(limiter, "3/2 seconds", "k", 1) == [True]
    time.sleep(1.0)
    assert hits(limiter, "3/2 seconds", "k", 2) == [True, True]
    # Lowered to 2: refused, with nothing remaining (not -1), and a request frees up when
    # the second-newest hit leaves the window (in about 2 s), not the oldest (about 1 s).
    refused = limiter.decide(counter_for("2/2 seconds", ("k",)))
    assert (refused.allowed, refused.limit, refused.remaining) == (False, 2, 0)
    assert refused.reset_seconds == 2
    # Raised to 5: the 3 hits still count.
    assert hits(limiter, "5/2 seconds", "k", 3) == [True, True, False]
