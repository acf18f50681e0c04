"""GET /v1/conversations: a client's own conversations, most recently active first."""

from __future__ import annotations

from typing import Any

import httpx

from relay.history.service import PREVIEW_CHARS
from tests.conftest import Running, chat


async def conversations(running: Running, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await running.client.get("/v1/conversations", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"conversations", "next_cursor"}
    return body


async def start(running: Running, headers: dict[str, str], text: str) -> str:
    response = await chat(running, headers, message=text)
    assert response.status_code == 200, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def test_most_recently_active_first_with_counts_and_previews(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    first = await start(relay, headers, "the first conversation")
    second = await start(relay, headers, "the second one " + "x" * 500)
    # A new turn in the first conversation makes it the most recently active.
    answered = await chat(relay, headers, message="and more", conversation_id=first)
    assert answered.status_code == 200

    listed = (await conversations(relay, headers))["conversations"]
    assert [c["id"] for c in listed] == [first, second]
    assert [c["message_count"] for c in listed] == [4, 2]
    assert listed[0]["preview"] == "the first conversation"
    assert listed[1]["preview"] == ("the second one " + "x" * 500)[:PREVIEW_CHARS]
    for item in listed:
        assert set(item) == {"id", "created_at", "updated_at", "message_count", "preview"}
        assert item["created_at"] <= item["updated_at"]
    assert listed[0]["updated_at"] >= listed[1]["updated_at"]


async def test_pages_follow_the_cursor_and_foreign_ones_never_show(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    other = await relay.bearer("chat", "history")
    mine = [await start(relay, headers, f"mine {n}") for n in range(5)]
    theirs = await start(relay, other, "not yours")

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"before": cursor} if cursor else {})}
        body = await conversations(relay, headers, **params)
        seen += [c["id"] for c in body["conversations"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert theirs not in seen
    assert [c["id"] for c in (await conversations(relay, other))["conversations"]] == [theirs]


async def test_auth_scope_and_bad_input(relay: Running) -> None:
    no_history = await relay.bearer("chat")
    headers = await relay.bearer("history")
    assert (await relay.client.get("/v1/conversations")).status_code == 401
    refused = await relay.client.get("/v1/conversations", headers=no_history)
    assert refused.status_code == 403
    for params in ({"limit": 0}, {"limit": 201}, {"before": "not-a-cursor!"}, {"before": "abc"}):
        response: httpx.Response = await relay.client.get(
            "/v1/conversations", params=params, headers=headers
        )
        assert response.status_code == 422, (params, response.text)
    assert (await conversations(relay, headers)) == {"conversations": [], "next_cursor": None}
