"""GET /v1/history: newest first, per conversation or all, cursor pagination."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from relay.history.cursors import decode_cursor, encode_cursor
from relay.storage.records import ConversationRecord, MessageRecord, new_id, utc_now
from tests.conftest import Running


async def get_history(running: Running, headers: dict[str, str], **params: Any) -> httpx.Response:
    return await running.client.get("/v1/history", params=params, headers=headers)


async def page(running: Running, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await get_history(running, headers, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"messages", "next_cursor"}
    return body


async def new_conversation(running: Running, client_id: str) -> str:
    conversation = ConversationRecord(new_id("conv"), client_id, utc_now())
    await running.relay.store.add_messages([], new_conversation=conversation)
    return conversation.id


async def add_messages(
    running: Running, client_id: str, conversation_id: str, contents: list[str]
) -> list[str]:
    """Store messages directly (fast); return their ids, oldest first."""
    ids = []
    for index, content in enumerate(contents):
        message = MessageRecord(
            new_id("msg"),
            conversation_id,
            client_id,
            "user" if index % 2 == 0 else "assistant",
            content,
            "complete",
            utc_now(),
        )
        await running.relay.store.add_messages([message])
        ids.append(message.id)
    return ids


async def all_pages(
    running: Running, headers: dict[str, str], limit: int, **params: Any
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"before": cursor} if cursor else {})}
        body = await page(running, headers, **query)
        pages.append([m["id"] for m in body["messages"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


async def test_messages_come_newest_first_with_their_fields(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    answers = []
    for text in ("first", "second", "third"):
        response = await relay.client.post("/v1/chat", json={"message": text}, headers=headers)
        answers.append(response.json())
    messages = (await page(relay, headers))["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("assistant", "third"),
        ("user", "third"),
        ("assistant", "second"),
        ("user", "second"),
        ("assistant", "first"),
        ("user", "first"),
    ]
    for message in messages:
        assert set(message) == {"id", "conversation_id", "role", "content", "created_at", "status"}
        assert message["created_at"].endswith("Z")
        assert message["status"] == "complete"
    stamps = [m["created_at"] for m in messages]
    assert stamps == sorted(stamps, reverse=True)
    assert [messages[i]["id"] for i in (0, 2, 4)] == [a["id"] for a in reversed(answers)]
    assert len({m["id"] for m in messages}) == 6


async def test_per_conversation_or_all_of_the_clients(relay: Running) -> None:
    client_id, api_key = await relay.new_client("history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    assert await page(relay, headers) == {"messages": [], "next_cursor": None}
    first = await new_conversation(relay, client_id)
    second = await new_conversation(relay, client_id)
    first_ids = await add_messages(relay, client_id, first, ["a1", "a2", "a3"])
    second_ids = await add_messages(relay, client_id, second, ["b1", "b2"])
    more_first = await add_messages(relay, client_id, first, ["a4"])

    only_first = (await page(relay, headers, conversation_id=first))["messages"]
    assert [m["id"] for m in only_first] == list(reversed(first_ids + more_first))
    assert {m["conversation_id"] for m in only_first} == {first}
    only_second = (await page(relay, headers, conversation_id=second))["messages"]
    assert [m["content"] for m in only_second] == ["b2", "b1"]
    everything = (await page(relay, headers))["messages"]
    assert [m["id"] for m in everything] == list(reversed(first_ids + second_ids + more_first))

    # An unknown id is 404; a string no id could be is refused before any lookup.
    for weird, status in [
        ("conv_unknown", 404),
        ("conv_\x00", 422),
        ("'; DROP TABLE messages; --", 422),
        ("🙂", 422),
    ]:
        for path, params in [
            ("/v1/history", {"conversation_id": weird}),
            ("/v1/history/search", {"q": "a1", "conversation_id": weird}),
        ]:
            response = await relay.client.get(path, params=params, headers=headers)
            assert response.status_code == status, (path, weird, response.text)

    empty = await new_conversation(relay, client_id)
    assert await page(relay, headers, conversation_id=empty) == {
        "messages": [],
        "next_cursor": None,
    }


async def test_limit_out_of_bounds_is_422(relay: Running) -> None:
    headers = await relay.bearer("history")
    for limit in ("0", "201", "-1", "ten", "1.5", ""):
        response = await get_history(relay, headers, limit=limit)
        assert response.status_code == 422, limit
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == ["limit"]


async def test_limit_bounds_are_inclusive(relay: Running) -> None:
    client_id, api_key = await relay.new_client("history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    conversation = await new_conversation(relay, client_id)
    ids = await add_messages(relay, client_id, conversation, [f"m{i}" for i in range(3)])
    one = await page(relay, headers, limit=1)
    assert [m["id"] for m in one["messages"]] == [ids[-1]]
    assert one["next_cursor"] is not None
    most = await page(relay, headers, limit=200)
    assert [m["id"] for m in most["messages"]] == list(reversed(ids))
    assert most["next_cursor"] is None
    exact = await page(relay, headers, limit=3)
    assert exact["next_cursor"] is None


async def test_cursor_pagination_has_no_duplicates_or_gaps(relay: Running) -> None:
    client_id, api_key = await relay.new_client("history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    conversations = [await new_conversation(relay, client_id) for _ in range(2)]
    ids: list[str] = []
    for index in range(25):
        ids += await add_messages(relay, client_id, conversations[index % 2], [f"m{index}"])

    pages = await all_pages(relay, headers, 7)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    flat = [message_id for p in pages for message_id in p]
    assert flat == list(reversed(ids))

    per_conversation = await all_pages(relay, headers, 7, conversation_id=conversations[0])
    assert [len(p) for p in per_conversation] == [7, 6]
    assert [i for p in per_conversation for i in p] == list(reversed(ids[0::2]))


async def test_pagination_is_stable_while_messages_arrive(relay: Running) -> None:
    client_id, api_key = await relay.new_client("history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    conversation = await new_conversation(relay, client_id)
    original = await add_messages(relay, client_id, conversation, [f"m{i}" for i in range(25)])

    seen: list[str] = []
    added: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor is not None:
            params["before"] = cursor
        body = await page(relay, headers, **params)
        seen += [m["id"] for m in body["messages"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # Someone keeps chatting between page fetches.
        added += await add_messages(relay, client_id, conversation, ["new", "newer"])
    assert seen == list(reversed(original))
    assert not set(seen) & set(added)

    # Those newer messages are all there from the top.
    fresh = await page(relay, headers, limit=200)
    assert [m["id"] for m in fresh["messages"]] == list(reversed(original + added))


GARBAGE_CURSORS = [
    "garbage",
    "!!!!",
    "=",
    base64.urlsafe_b64encode(b"q12").decode(),
    base64.urlsafe_b64encode(b"p-3").decode(),
    base64.urlsafe_b64encode(b"p").decode(),
    base64.urlsafe_b64encode(b"p 12").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    base64.urlsafe_b64encode(b"p" + b"9" * 40).decode(),  # beyond any 64-bit position
    base64.urlsafe_b64encode(b"p" + str(2**63).encode()).decode(),
    base64.urlsafe_b64encode("p\u0661\u0662".encode()).decode(),  # Arabic-Indic digits
    "x" * 65,
]


async def test_garbage_cursor_is_422(relay: Running) -> None:
    client_id, api_key = await relay.new_client("history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    await add_messages(relay, client_id, await new_conversation(relay, client_id), ["a", "b"])
    for cursor in GARBAGE_CURSORS:
        response = await get_history(relay, headers, before=cursor)
        assert response.status_code == 422, (cursor, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == ["before"]


def test_cursors_round_trip() -> None:
    for position in (0, 1, 7, 123_456_789, 2**63 - 1):
        cursor = encode_cursor(position)
        assert decode_cursor(cursor) == position
        assert "=" not in cursor
    assert decode_cursor(None) is None


async def test_history_needs_its_scope(relay: Running) -> None:
    headers = await relay.bearer("chat", "tools")
    for path in ("/v1/history", "/v1/history/search?q=hello"):
        response = await relay.client.get(path, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
    unauthenticated = await relay.client.get("/v1/history")
    assert unauthenticated.status_code == 401
