"""Store.list_conversations, the same on every store: order, paging, counts, previews."""

from __future__ import annotations

from relay.storage.base import Store
from relay.storage.records import ConversationRecord, MessageRecord, Role, new_id, utc_now
from tests.support.records import client_record


async def converse(store: Store, client_id: str, *turns: tuple[Role, str]) -> str:
    conversation = ConversationRecord(new_id("conv"), client_id, utc_now())
    messages = [
        MessageRecord(new_id("msg"), conversation.id, client_id, role, text, "complete", utc_now())
        for role, text in turns
    ]
    await store.add_messages(messages, new_conversation=conversation)
    return conversation.id


async def test_latest_activity_first_with_counts_and_cut_previews(store: Store) -> None:
    client, other = client_record(), client_record("other")
    await store.create_client(client)
    await store.create_client(other)
    older = await converse(store, client.id, ("user", "hello there"), ("assistant", "hi"))
    newer = await converse(store, client.id, ("assistant", "greeting"), ("user", "é" * 50))
    await converse(store, other.id, ("user", "not this client's"))
    # A later message in the older conversation makes it the latest active.
    await store.add_messages(
        [MessageRecord(new_id("msg"), older, client.id, "user", "again", "complete", utc_now())]
    )

    listed = await store.list_conversations(client.id, limit=10, before=None, preview_chars=5)
    assert [c.id for c in listed] == [older, newer]
    assert [c.message_count for c in listed] == [3, 2]
    assert [c.preview for c in listed] == ["hello", "ééééé"]  # characters, not bytes
    assert listed[0].last_seq > listed[1].last_seq
    assert all(c.created_at <= c.updated_at for c in listed)

    rest = await store.list_conversations(
        client.id, limit=10, before=listed[0].last_seq, preview_chars=5
    )
    assert [c.id for c in rest] == [newer]
