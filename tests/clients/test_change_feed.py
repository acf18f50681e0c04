"""The change feed against a Redis that does not answer: retried, and logged, ever less often."""

from __future__ import annotations

import asyncio
import logging

import pytest

from relay.clients.change_feed import RECONNECT_MAX_SECONDS, RedisFeed, reconnect_delay
from tests.support.ports import closed_port


def test_the_reconnect_delay_doubles_up_to_a_bound() -> None:
    delays = [reconnect_delay(n) for n in range(10)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays)
    assert max(delays) == RECONNECT_MAX_SECONDS
    assert reconnect_delay(10_000) == RECONNECT_MAX_SECONDS


async def test_an_unreachable_redis_is_not_logged_every_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.notify")
    feed = RedisFeed(f"redis://:feed-secret@127.0.0.1:{closed_port()}/0")
    await feed.start(lambda _client_id: None)  # waits up to 2 s for a subscription
    await asyncio.sleep(3.5)  # about 5.5 s in all
    await feed.stop()
    records = [r for r in caplog.records if r.name == "relay.notify"]
    # Attempts at 0, 1 and 3 s (the next at 7 s): three lines, where one a second gave six.
    assert 2 <= len(records) <= 3, [r.getMessage() for r in records]
    assert records[0].getMessage() == "change feed lost"
    assert all(r.getMessage() == "change feed still down" for r in records[1:])
    assert [r.__dict__["retry_in_s"] for r in records] == [1.0, 2.0, 4.0][: len(records)]
    assert "feed-secret" not in caplog.text
