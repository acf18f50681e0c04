"""One contract for every Store: the same tests over SQLiteStore and PostgresStore."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from relay.storage import PostgresStore, SQLiteStore, Store, make_store
from relay.storage.records import new_id, utc_now
from relay.storage.sql import load_migrations
from tests.support import services
from tests.support.records import client_record


async def open_store(database_url: str) -> Store:
    opened = make_store(database_url, pool_size=4)
    await opened.open()
    return opened


def test_make_store_picks_the_dialect(tmp_path: Path) -> None:
    sqlite = make_store(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(sqlite, SQLiteStore)
    assert sqlite.dialect == "sqlite"
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        postgres = make_store(url)
        assert isinstance(postgres, PostgresStore)
        assert postgres.dialect == "postgres"


async def test_clients_create_get_and_prefix_lookup(store: Store) -> None:
    record = client_record(token_ttl=300)
    await store.create_client(record)
    assert await store.get_client(record.id) == record
    assert await store.get_client_by_prefix(record.key_prefix) == record
    assert await store.get_client("cl_unknown") is None
    assert await store.get_client_by_prefix("rly_ffffffffff") is None
    assert await store.get_client_by_prefix(record.key_prefix + "0") is None
    # Prefixes are unique: a second client cannot take one already in use.
    with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error
        await store.create_client(client_record(key_prefix=record.key_prefix))
    assert await store.get_client_by_prefix(record.key_prefix) == record

    empty = client_record(scopes=(), rate_limits={}, metadata={}, active=False)
    await store.create_client(empty)
    assert await store.get_client(empty.id) == empty


async def test_update_with_and_without_generation_bump(store: Store) -> None:
    record = client_record()
    await store.create_client(record)

    renamed = await store.update_client(record.id, {"name": "renamed"}, bump_generation=False)
    assert renamed is not None
    assert renamed.name == "renamed"
    assert renamed.key_generation == 1
    assert renamed.updated_at >= record.updated_at
    assert dataclasses.replace(renamed, updated_at=record.updated_at) == dataclasses.replace(
        record, name="renamed"
    )

    changes = {
        "scopes": ("admin",),
        "active": False,
        "rate_limits": {},
        "token_ttl": 60,
        "metadata": {"k": "v"},
        "key_prefix": "rly_aaaaaaaaaa",
        "key_hash": "$2b$04$" + "z" * 53,
    }
    bumped = await store.update_client(record.id, changes, bump_generation=True)
    assert bumped is not None
    assert bumped.key_generation == 2
    assert bumped.scopes == ("admin",)
    assert bumped.active is False
    assert (bumped.rate_limits, bumped.token_ttl, bumped.metadata) == ({}, 60, {"k": "v"})
    assert (bumped.key_prefix, bumped.key_hash) == ("rly_aaaaaaaaaa", changes["key_hash"])
    assert await store.get_client(record.id) == bumped
    assert await store.get_client_by_prefix(record.key_prefix) is None
    assert await store.get_client_by_prefix("rly_aaaaaaaaaa") == bumped

    # No change but the bump still counts, and the bump adds up.
    again = await store.update_client(record.id, {}, bump_generation=True)
    assert again is not None
    assert again.key_generation == 3
    cleared = await store.update_client(
        record.id, {"token_ttl": None, "active": True}, bump_generation=False
    )
    assert cleared is not None
    assert (cleared.token_ttl, cleared.active, cleared.key_generation) == (None, True, 3)

    assert await store.update_client("cl_unknown", {"name": "x"}, bump_generation=True) is None
    with pytest.raises(ValueError, match="key_generation"):
        await store.update_client(record.id, {"key_generation": 9}, bump_generation=False)
    with pytest.raises(ValueError, match="id"):
        await store.update_client(record.id, {"id": "cl_other"}, bump_generation=False)
    assert (await store.get_client(record.id)) == cleared


async def test_list_filter_and_pagination(store: Store) -> None:
    records = [client_record(f"c{i}", active=i % 2 == 0) for i in range(6)]
    for record in records:
        await store.create_client(record)
        await asyncio.sleep(0.001)  # ids are time-ordered to the microsecond
    newest_first = [r.id for r in reversed(records)]
    assert newest_first == sorted(newest_first, reverse=True)

    async def ids(active: bool | None, limit: int, before: str | None) -> list[str]:
        return [c.id for c in await store.list_clients(active=active, limit=limit, before=before)]

    assert await ids(None, 100, None) == newest_first
    assert await ids(None, 2, None) == newest_first[:2]
    assert await ids(None, 2, newest_first[1]) == newest_first[2:4]
    assert await ids(None, 100, newest_first[-1]) == []
    assert await ids(None, 100, "cl_~") == newest_first  # a cursor after every id

    active = [r.id for r in reversed(records) if r.active]
    inactive = [r.id for r in reversed(records) if not r.active]
    assert await ids(True, 100, None) == active
    assert await ids(False, 100, None) == inactive
    assert await ids(True, 1, active[0]) == active[1:2]
    assert await ids(False, 100, inactive[0]) == inactive[1:]

    # Walking the pages by `before` visits each client once, in order.
    seen: list[str] = []
    cursor: str | None = None
    while page := await ids(None, 4, cursor):
        seen += page
        cursor = page[-1]
    assert seen == newest_first


async def test_delete(store: Store) -> None:
    record = client_record()
    kept = client_record()
    await store.create_client(record)
    await store.create_client(kept)
    assert await store.delete_client(record.id) is True
    assert await store.get_client(record.id) is None
    assert await store.get_client_by_prefix(record.key_prefix) is None
    assert await store.delete_client(record.id) is False
    assert await store.delete_client("cl_unknown") is False
    assert await store.update_client(record.id, {"name": "x"}, bump_generation=False) is None
    assert await store.get_client(kept.id) == kept


async def test_touch_sets_last_used_at_only(store: Store) -> None:
    record = client_record()
    await store.create_client(record)
    assert (await store.get_client(record.id)).last_used_at is None  # type: ignore[union-attr]
    when = utc_now() + timedelta(seconds=5)
    await store.touch_client(record.id, when)
    touched = await store.get_client(record.id)
    assert touched is not None
    assert touched.last_used_at == when
    assert dataclasses.replace(touched, last_used_at=None) == record
    later = when + timedelta(minutes=1)
    await store.touch_client(record.id, later)
    assert (await store.get_client(record.id)).last_used_at == later  # type: ignore[union-attr]
    await store.touch_client("cl_unknown", later)  # no such client: nothing happens
    assert await store.get_client("cl_unknown") is None


async def test_settings_get_or_create(store: Store, database_url: str) -> None:
    assert await store.get_or_create_setting("color", "blue") == "blue"
    assert await store.get_or_create_setting("color", "red") == "blue"
    assert await store.get_or_create_setting("shape", "round") == "round"

    # Two instances racing for a new setting agree on one value.
    others = [await open_store(database_url) for _ in range(2)]
    try:
        for attempt in range(5):
            name = f"race-{attempt}"
            values = await asyncio.gather(
                others[0].get_or_create_setting(name, "first"),
                others[1].get_or_create_setting(name, "second"),
                store.get_or_create_setting(name, "third"),
            )
            assert len(set(values)) == 1, values
            assert values[0] in ("first", "second", "third")
            assert await store.get_or_create_setting(name, "later") == values[0]
    finally:
        for other in others:
            await other.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def blank_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all (the shared fixtures start from a migrated one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    services.require_postgres()
    with services.temporary_database("relay_blank") as url:
        yield url


async def test_concurrent_migrations_on_a_fresh_database(blank_database_url: str) -> None:
    versions = [version for version, _ in load_migrations(make_store(blank_database_url).dialect)]
    assert versions
    stores = [await open_store(blank_database_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        # Each version was applied by exactly one of them.
        assert sorted(v for batch in applied for v in batch) == sorted(versions)
        # Once done, migrating again (each store, twice) changes nothing.
        for s in stores * 2:
            assert await s.migrate() == []
        record = client_record()
        await stores[0].create_client(record)
        assert await stores[1].get_client(record.id) == record
        assert await stores[2].get_or_create_setting("jwt_secret", "x") == "x"
    finally:
        for s in stores:
            await s.close()


# --- conversations and messages ----------------------------------------------------------------


async def test_add_messages_with_a_new_conversation_stores_all_or_nothing(store: Store) -> None:
    from relay.storage.records import ConversationRecord, MessageRecord, Role

    client = client_record()
    await store.create_client(client)
    conversation = ConversationRecord(new_id("conv"), client.id, utc_now())
    roles: tuple[Role, Role] = ("user", "assistant")
    question, answer = (
        MessageRecord(new_id("msg"), conversation.id, client.id, role, text, "complete", utc_now())
        for role, text in zip(roles, ("hello", "hi"), strict=True)
    )
    stored = await store.add_messages([question, answer], new_conversation=conversation)
    assert [m.id for m in stored] == [question.id, answer.id]
    assert 0 < stored[0].seq < stored[1].seq
    assert await store.get_conversation(client.id, conversation.id) == conversation
    listed = await store.list_messages(client.id, conversation_id=None, limit=10, before=None)
    assert [(m.id, m.seq) for m in listed] == [(m.id, m.seq) for m in reversed(stored)]

    # The same conversation id again fails whole: no message of it is left behind.
    again = [dataclasses.replace(m, id=new_id("msg")) for m in (question, answer)]
    with pytest.raises(Exception):  # noqa: B017 (each driver raises its own integrity error)
        await store.add_messages(again, new_conversation=conversation)
    listed = await store.list_messages(client.id, conversation_id=None, limit=10, before=None)
    assert [m.id for m in listed] == [answer.id, question.id]


async def test_add_messages_to_a_conversation_keeps_their_order(store: Store) -> None:
    from relay.storage.records import ConversationRecord, MessageRecord

    client = client_record()
    await store.create_client(client)
    conversation = ConversationRecord(new_id("conv"), client.id, utc_now())
    await store.add_messages([], new_conversation=conversation)
    batches = [
        [
            MessageRecord(new_id("msg"), conversation.id, client.id, role, f"{role} {i}",
                          "complete", utc_now())
            for role in ("user", "assistant")
        ]
        for i in range(10)
    ]  # fmt: skip
    stored = await asyncio.gather(*(store.add_messages(b) for b in batches))
    for batch, result in zip(batches, stored, strict=True):
        assert [m.id for m in result] == [m.id for m in batch]
        assert result[0].seq < result[1].seq
    listed = await store.list_messages(client.id, conversation_id=None, limit=100, before=None)
    assert {m.id: m.seq for m in listed} == {m.id: m.seq for r in stored for m in r}


async def test_concurrent_writes_each_get_their_own_result(store: Store) -> None:
    """Writes that share a commit (SQLite's group commit) still answer one by one."""
    from relay.storage.records import ConversationRecord, MessageRecord

    client = client_record()
    await store.create_client(client)
    conversation = ConversationRecord(new_id("conv"), client.id, utc_now())
    await store.add_messages([], new_conversation=conversation)
    messages = [
        MessageRecord(new_id("msg"), conversation.id, client.id, "user", f"m{i}", "complete",
                      utc_now())
        for i in range(40)
    ]  # fmt: skip
    results = await asyncio.gather(*(store.add_messages([m]) for m in messages))
    stored = [m for (m,) in results]
    assert len({m.seq for m in stored}) == 40
    listed = await store.list_messages(client.id, conversation_id=None, limit=100, before=None)
    by_id = {m.id: m.seq for m in listed}
    assert all(by_id[m.id] == m.seq for m in stored)


async def test_a_bad_write_among_concurrent_ones_fails_alone(store: Store) -> None:
    """Concurrent writes share a transaction (group commit); one bad one must not sink the rest."""
    from relay.storage.records import ConversationRecord, MessageRecord

    client = client_record()
    await store.create_client(client)
    taken = ConversationRecord(new_id("conv"), client.id, utc_now())
    await store.add_messages([], new_conversation=taken)

    def chat(conversation: ConversationRecord) -> list[MessageRecord]:
        return [
            MessageRecord(new_id("msg"), conversation.id, client.id, role, role, "complete",
                          utc_now())
            for role in ("user", "assistant")
        ]  # fmt: skip

    fresh = [ConversationRecord(new_id("conv"), client.id, utc_now()) for _ in range(6)]
    writes = [store.add_messages(chat(c), new_conversation=c) for c in fresh]
    writes.insert(3, store.add_messages(chat(taken), new_conversation=taken))  # id taken
    results = await asyncio.gather(*writes, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and results[3] is failed[0]
    stored = [r for r in results if not isinstance(r, BaseException)]
    listed = await store.list_messages(client.id, conversation_id=None, limit=100, before=None)
    assert {m.id for m in listed} == {m.id for r in stored for m in r}
    assert len(listed) == 12


async def test_text_the_driver_cannot_encode_fails_alone_and_the_store_goes_on(
    store: Store,
) -> None:
    """A lone surrogate fails its own write only: SQLite once left its transaction open."""
    from relay.storage.records import ConversationRecord, MessageRecord

    client = client_record()
    await store.create_client(client)

    def chat(text: str) -> tuple[list[MessageRecord], ConversationRecord]:
        conversation = ConversationRecord(new_id("conv"), client.id, utc_now())
        message = MessageRecord(
            new_id("msg"), conversation.id, client.id, "user", text, "complete", utc_now()
        )
        return [message], conversation

    chats = [chat(f"fine {i}") for i in range(4)]
    chats.insert(2, chat("bad \ud800"))
    writes = [store.add_messages(m, new_conversation=c) for m, c in chats]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert [isinstance(r, BaseException) for r in results] == [False, False, True, False, False]
    later, conversation = chat("later")
    await store.add_messages(later, new_conversation=conversation)
    listed = await store.list_messages(client.id, conversation_id=None, limit=100, before=None)
    assert sorted(m.content for m in listed) == ["fine 0", "fine 1", "fine 2", "fine 3", "later"]
