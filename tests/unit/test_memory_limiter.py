"""The in-memory moving window: exact counts, reset times, and no unbounded growth."""

from __future__ import annotations

import time

from limits import parse

from relay.limits.policy import InMemory, counter_for


async def test_exactly_the_limit_passes_within_the_window() -> None:
    limiter, item = InMemory(), parse("3/minute")
    assert [await limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    assert not await limiter.test(item, "k")
    stats = await limiter.get_window_stats(item, "k")
    assert stats.remaining == 0
    assert 59 <= stats.reset_time - time.time() <= 60
    assert await limiter.hit(item, "other")  # keys are counted apart


async def test_hits_leave_the_window_one_by_one() -> None:
    limiter, item = InMemory(), parse("2/second")
    assert await limiter.hit(item, "k")
    time.sleep(0.6)
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    time.sleep(0.5)  # the first hit has left the moving window, the second has not
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")


async def test_keys_without_hits_in_their_window_are_swept() -> None:
    limiter, item = InMemory(sweep_every=10), parse("5/second")
    for n in range(10):
        await limiter.hit(item, f"address-{n}")
    assert len(limiter._hits) <= 10
    time.sleep(1.1)
    busy = parse("100/second")
    for _ in range(10):
        await limiter.hit(busy, "busy")
    assert set(limiter._hits) == {busy.key_for("busy")}


async def test_decide_answers_what_hit_and_window_stats_answer() -> None:
    """The one-pass decision the hot path uses agrees with limits' two calls."""
    fast, slow, item = InMemory(), InMemory(), parse("3/minute")
    for _ in range(5):
        decision = fast.decide(counter_for("3/minute", ("k",)))
        allowed = await slow.hit(item, "k")
        stats = await slow.get_window_stats(item, "k")
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
