"""SQLite indexes search behind the writes, yet every search sees every committed message."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.history.search_query import parse
from relay.storage import SQLiteStore
from relay.storage.records import ConversationRecord, MessageRecord, new_id, utc_now
from relay.storage.sql import load_migrations
from tests.support.records import client_record


async def opened(path: Path, index_delay: float = 3600) -> SQLiteStore:
    """A store whose writes wait an hour to be indexed, unless the test says otherwise."""
    store = SQLiteStore(f"sqlite:///{path}", index_delay=index_delay)
    await store.open()
    await store.migrate()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = await opened(tmp_path / "relay.db")
    try:
        yield store
    finally:
        await store.close()


async def new_client(store: SQLiteStore) -> str:
    client = client_record()
    await store.create_client(client)
    return client.id


async def stored(store: SQLiteStore, client_id: str, *texts: str) -> list[MessageRecord]:
    conversation = ConversationRecord(new_id("conv"), client_id, utc_now())
    messages = [
        MessageRecord(
            new_id("msg"), conversation.id, client_id, "user", text, "complete", utc_now()
        )
        for text in texts
    ]
    return await store.add_messages(messages, new_conversation=conversation)


async def found(store: SQLiteStore, client_id: str, query: str) -> list[str]:
    hits = await store.search_messages(
        client_id, parse(query), conversation_id=None, limit=50, offset=0
    )
    return sorted(m.content for m in hits)


def progress(path: Path) -> tuple[int, int]:
    """(the search watermark, the last message's seq), read by another connection."""
    with sqlite3.connect(path) as db:
        (watermark,) = db.execute("SELECT seq FROM search_progress").fetchone()
        (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()
    return watermark, last


def assert_index_whole(path: Path) -> None:
    """FTS5's own check, rank 1: the index holds every message, as it is, and nothing else.

    Only true once the index has caught up; "malformed" otherwise.
    """
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


async def test_a_write_is_not_indexed_in_its_own_transaction_but_a_search_finds_it(
    store: SQLiteStore,
) -> None:
    path = Path(store.path)
    client_id = await new_client(store)
    await stored(store, client_id, "the heron waits", "a quiet river")
    watermark, last = progress(path)
    assert watermark < last  # the chat's commit wrote no index
    assert await found(store, client_id, "heron") == ["the heron waits"]
    assert progress(path) == (last, last)
    assert_index_whole(path)


async def test_written_messages_get_indexed_without_any_search(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    store = await opened(path, index_delay=0.05)
    try:
        await stored(store, await new_client(store), "indexed in the background")
        deadline = time.monotonic() + 10
        while (state := progress(path))[0] < state[1] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert state[0] == state[1] > 0
    finally:
        await store.close()
    assert_index_whole(path)


async def test_messages_another_process_left_unindexed_are_found(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    store = await opened(path)
    client_id = await new_client(store)
    await store.close()
    with sqlite3.connect(path) as db:  # a process that stored these and died at once
        insert_raw(db, client_id, "orphan lantern", "orphan kettle")
    store = await opened(path)
    try:
        assert await found(store, client_id, "orphan") == ["orphan kettle", "orphan lantern"]
    finally:
        await store.close()
    assert_index_whole(path)


async def test_edits_and_deletes_of_indexed_and_unindexed_messages_keep_the_index_whole(
    store: SQLiteStore,
) -> None:
    path = Path(store.path)
    client_id, other_id = await new_client(store), await new_client(store)
    (indexed,) = await stored(store, client_id, "draft alpha")
    await stored(store, other_id, "leaving soon")
    assert await found(store, client_id, "draft") == ["draft alpha"]  # indexes both
    (pending,) = await stored(store, client_id, "draft beta")
    (gone,) = await stored(store, other_id, "leaving unindexed")
    assert progress(path)[0] < gone.seq  # these two are not indexed yet

    await store.finish_message(indexed.id, content="final alpha", status="complete")
    await store.finish_message(pending.id, content="final beta", status="complete")
    assert await store.delete_client(other_id)  # its messages go, indexed or not
    assert await found(store, client_id, "draft") == []
    assert await found(store, client_id, "final") == ["final alpha", "final beta"]
    assert await found(store, other_id, "leaving") == []
    assert_index_whole(path)


def insert_raw(db: sqlite3.Connection, client_id: str, *texts: str) -> None:
    """Rows as a process (of this release or an older one) writes them, by plain SQL."""
    conversation = new_id("conv")
    created = "2026-01-01T00:00:00+00:00"
    db.execute("INSERT INTO conversations VALUES (?, ?, ?)", (conversation, client_id, created))
    for text in texts:
        db.execute(
            "INSERT INTO messages (id, conversation_id, client_id, role, content, status,"
            " created_at) VALUES (?, ?, ?, 'user', ?, 'complete', ?)",
            (new_id("msg"), conversation, client_id, text, created),
        )


async def test_upgrade_keeps_what_the_old_trigger_indexed(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    (first_version, first_script), *_ = load_migrations("sqlite")
    client = client_record()
    with sqlite3.connect(path) as db:  # a database of the release before this one
        db.executescript(
            "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY);"
            f"INSERT INTO schema_migrations VALUES ('{first_version}');{first_script}"
        )
        db.execute(
            "INSERT INTO clients (id, name, scopes, key_prefix, key_hash, created_at,"
            " updated_at) VALUES (?, 'old', '[]', 'rly_old', 'h', 't', 't')",
            (client.id,),
        )
        insert_raw(db, client.id, "ancient scroll", "ancient map")  # indexed by its trigger
    store = await opened(path)  # migrates
    try:
        watermark, last = progress(path)
        assert watermark == last > 0
        await stored(store, client.id, "ancient coin")
        assert await found(store, client.id, "ancient") == [
            "ancient coin",
            "ancient map",
            "ancient scroll",
        ]
    finally:
        await store.close()
    assert_index_whole(path)
