"""The Idempotency-Key contract of every Store: claims are leases, answers are kept atomically."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from relay.storage import Store
from relay.storage.records import (
    ConversationRecord,
    IdempotencyRecord,
    KeptAnswer,
    MessageRecord,
    new_id,
    utc_now,
)
from tests.support.records import client_record

LEASE = timedelta(seconds=30)
DAY = timedelta(hours=24)
ANSWER = {"id": "msg_1", "message": {"role": "assistant", "content": "kept"}}


async def new_client(store: Store) -> str:
    client = client_record()
    await store.create_client(client)
    return client.id


async def claim(
    store: Store, client_id: str, owner: str, at: datetime, key: str = "k", body: str = "b"
) -> bool:
    """Claim `key` for `owner` at time `at`, with a lease of LEASE."""
    record = IdempotencyRecord(client_id, key, body, None, at, owner, at + LEASE)
    return await store.claim_idempotency(record, expired_before=at - DAY)


def chat(client_id: str) -> tuple[ConversationRecord, list[MessageRecord]]:
    conversation = ConversationRecord(new_id("conv"), client_id, utc_now())
    messages = [
        MessageRecord(
            new_id("msg"), conversation.id, client_id, "user", "hi", "complete", utc_now()
        )
    ]
    return conversation, messages


async def test_a_claim_holds_the_key_until_its_lease_ends(store: Store) -> None:
    client_id, now = await new_client(store), utc_now()
    assert await claim(store, client_id, "first", now)
    assert not await claim(store, client_id, "second", now + LEASE / 2)
    held = await store.get_idempotency(client_id, "k")
    assert held is not None and held.owner == "first" and held.response is None
    # Renewed, the lease runs on.
    assert await store.renew_idempotency(client_id, "k", "first", now + 2 * LEASE)
    assert not await claim(store, client_id, "second", now + LEASE * 3 / 2)
    # Past it, a retry takes the key over, whatever body it had.
    later = now + 3 * LEASE
    assert await claim(store, client_id, "second", later, body="other")
    taken = await store.get_idempotency(client_id, "k")
    assert taken is not None and (taken.owner, taken.request_hash) == ("second", "other")
    assert taken.lease_until is not None and abs(taken.lease_until - (later + LEASE)).seconds < 1


async def test_a_claim_taken_over_is_not_the_old_owners_to_renew_or_free(store: Store) -> None:
    client_id, now = await new_client(store), utc_now()
    assert await claim(store, client_id, "first", now)
    assert await claim(store, client_id, "second", now + 2 * LEASE)
    assert not await store.renew_idempotency(client_id, "k", "first", now + 9 * LEASE)
    await store.release_idempotency(client_id, "k", "first")
    held = await store.get_idempotency(client_id, "k")
    assert held is not None and held.owner == "second"
    await store.release_idempotency(client_id, "k", "second")
    assert await store.get_idempotency(client_id, "k") is None


async def test_an_answer_is_kept_with_the_messages_that_hold_it(store: Store) -> None:
    client_id, now = await new_client(store), utc_now()
    assert await claim(store, client_id, "owner", now)
    conversation, messages = chat(client_id)
    kept = KeptAnswer(client_id, "k", "owner", ANSWER)
    await store.add_messages(messages, new_conversation=conversation, answer=kept)
    record = await store.get_idempotency(client_id, "k")
    assert record is not None and record.response == ANSWER and record.lease_until is None
    # Kept for the day, whatever leases say; its owner can neither renew nor free it.
    assert not await claim(store, client_id, "retry", now + 10 * LEASE)
    assert not await store.renew_idempotency(client_id, "k", "owner", now + LEASE)
    await store.release_idempotency(client_id, "k", "owner")
    assert await store.get_idempotency(client_id, "k") == record
    # A day later the key is free again.
    assert await claim(store, client_id, "tomorrow", now + DAY + LEASE)


async def test_an_answer_is_kept_all_or_nothing_and_only_by_its_owner(store: Store) -> None:
    client_id, now = await new_client(store), utc_now()
    assert await claim(store, client_id, "owner", now)
    conversation, messages = chat(client_id)
    await store.add_messages([], new_conversation=conversation)
    # The conversation exists already: the whole write fails, the answer with it.
    with pytest.raises(Exception):  # noqa: B017 (each driver raises its own integrity error)
        kept = KeptAnswer(client_id, "k", "owner", ANSWER)
        await store.add_messages(messages, new_conversation=conversation, answer=kept)
    record = await store.get_idempotency(client_id, "k")
    assert record is not None and record.response is None
    # Another owner's answer is not kept; the messages are.
    stored = await store.add_messages(messages, answer=KeptAnswer(client_id, "k", "x", ANSWER))
    assert [m.id for m in stored] == [messages[0].id]
    record = await store.get_idempotency(client_id, "k")
    assert record is not None and record.response is None
