"""The change feed: against a Redis that does not answer, retried and logged ever less
often; on SQLite alone, another process's client change noticed by polling the file,
and nothing else taken for one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from relay.clients.change_feed import (
    POLL_SECONDS,
    RECONNECT_MAX_SECONDS,
    RedisFeed,
    SQLitePoll,
    reconnect_delay,
)
from relay.storage import SQLiteStore
from relay.storage.records import ConversationRecord, MessageRecord, new_id, utc_now
from tests.support.ports import closed_port
from tests.support.records import client_record


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


@asynccontextmanager
async def sqlite_store(path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


async def changes_within(seen: list[str | None], seconds: float) -> list[str | None]:
    deadline = time.monotonic() + seconds
    while not seen and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return seen


async def test_sqlite_poll_sees_client_changes_of_another_process_only(tmp_path: Path) -> None:
    """The second store stands for the CLI: another connection, another writer process."""
    path = tmp_path / "relay.db"
    async with sqlite_store(path) as served, sqlite_store(path) as other:
        client = client_record()
        await other.create_client(client)
        seen: list[str | None] = []
        poll = SQLitePoll(served)
        await poll.start(seen.append)
        try:
            # Writes that change no client (a chat, a token exchange) forget nothing.
            conversation = ConversationRecord(new_id("cv"), client.id, utc_now())
            message = MessageRecord(
                new_id("msg"), conversation.id, client.id, "user", "hi", "complete", utc_now()
            )
            await other.add_messages([message], new_conversation=conversation)
            await other.touch_client(client.id, utc_now())
            assert await changes_within(seen, POLL_SECONDS * 4) == []

            await other.update_client(client.id, {"active": False}, bump_generation=True)
            assert await changes_within(seen, 1.0) == [None]  # every cached client re-read
            seen.clear()
            await other.delete_client(client.id)
            assert await changes_within(seen, 1.0) == [None]
        finally:
            await poll.stop()
