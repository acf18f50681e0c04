"""Cross-client isolation (BOLA): another client's ids answer exactly as unknown ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Running, chat


@dataclass
class Party:
    headers: dict[str, str]
    conversation_id: str
    message_ids: set[str]


async def party(running: Running, secret_word: str) -> Party:
    """A client with one conversation of two turns mentioning its own secret word."""
    headers = await running.bearer("chat", "history", "tools")
    first = await chat(running, headers, message=f"my {secret_word} is private")
    assert first.status_code == 200, first.text
    conversation_id = first.json()["conversation_id"]
    second = await chat(
        running, headers, message=f"shared words {secret_word}", conversation_id=conversation_id
    )
    assert second.status_code == 200, second.text
    listed = await running.client.get(
        "/v1/history", params={"conversation_id": conversation_id}, headers=headers
    )
    return Party(headers, conversation_id, {m["id"] for m in listed.json()["messages"]})


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    body["error"].pop("request_id")
    return body


async def assert_same_as_unknown(
    running: Running,
    method: str,
    path: str,
    foreign: dict[str, Any],
    unknown: dict[str, Any],
    headers: dict[str, str],
) -> None:
    if method == "POST":
        answers = [
            await running.client.post(path, json=b, headers=headers) for b in (foreign, unknown)
        ]
    else:
        answers = [
            await running.client.get(path, params=p, headers=headers) for p in (foreign, unknown)
        ]
    for response in answers:
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert without_request_id(answers[0]) == without_request_id(answers[1])
    for header in ("content-length", "content-type", "www-authenticate"):
        assert answers[0].headers.get(header) == answers[1].headers.get(header)


async def test_b_cannot_continue_read_or_search_a_conversation(relay: Running) -> None:
    alice = await party(relay, "zanzibar")
    bob = await party(relay, "quokka")
    assert len(alice.message_ids) == 4
    unknown_id = "conv_" + "0" * 24
    assert len(unknown_id) == len(alice.conversation_id)

    await assert_same_as_unknown(
        relay, "POST", "/v1/chat",
        {"message": "let me in", "conversation_id": alice.conversation_id},
        {"message": "let me in", "conversation_id": unknown_id},
        bob.headers,
    )  # fmt: skip
    await assert_same_as_unknown(
        relay, "POST", "/v1/chat",
        {"message": "let me in", "conversation_id": alice.conversation_id, "stream": True},
        {"message": "let me in", "conversation_id": unknown_id, "stream": True},
        bob.headers,
    )  # fmt: skip
    await assert_same_as_unknown(
        relay, "GET", "/v1/history",
        {"conversation_id": alice.conversation_id},
        {"conversation_id": unknown_id},
        bob.headers,
    )  # fmt: skip
    await assert_same_as_unknown(
        relay, "GET", "/v1/history/search",
        {"q": "zanzibar", "conversation_id": alice.conversation_id},
        {"q": "zanzibar", "conversation_id": unknown_id},
        bob.headers,
    )  # fmt: skip

    # Bob's failed attempts added nothing to Alice's conversation or his own history.
    alice_history = await relay.client.get(
        "/v1/history", params={"conversation_id": alice.conversation_id}, headers=alice.headers
    )
    assert {m["id"] for m in alice_history.json()["messages"]} == alice.message_ids
    bob_history = await relay.client.get("/v1/history", headers=bob.headers)
    assert {m["id"] for m in bob_history.json()["messages"]} == bob.message_ids


async def test_a_messages_never_appear_for_b(relay: Running) -> None:
    alice = await party(relay, "zanzibar")
    bob = await party(relay, "quokka")

    listed = await relay.client.get("/v1/history", params={"limit": 200}, headers=bob.headers)
    messages = listed.json()["messages"]
    assert {m["id"] for m in messages} == bob.message_ids
    assert {m["conversation_id"] for m in messages} == {bob.conversation_id}
    assert not any("zanzibar" in m["content"] for m in messages)

    for query in ("zanzibar", "private", "shared words", '"my zanzibar"', "zanzibar OR quokka"):
        response = await relay.client.get(
            "/v1/history/search", params={"q": query, "limit": 100}, headers=bob.headers
        )
        assert response.status_code == 200, response.text
        found = {r["id"] for r in response.json()["results"]}
        assert not found & alice.message_ids, query
        assert found <= bob.message_ids, query
    # A word both used finds only Bob's own messages for Bob, and Alice's for Alice.
    shared: dict[str, str | int] = {"q": "shared", "limit": 100}
    for who, other in ((bob, alice), (alice, bob)):
        response = await relay.client.get("/v1/history/search", params=shared, headers=who.headers)
        found = {r["id"] for r in response.json()["results"]}
        assert len(found) == 2
        assert found <= who.message_ids
        assert not found & other.message_ids


async def test_cursors_do_not_cross_clients(relay: Running) -> None:
    alice = await party(relay, "zanzibar")
    bob = await party(relay, "quokka")
    # Alice's cursor is only a position: used by Bob it lists Bob's messages, never hers.
    page = await relay.client.get("/v1/history", params={"limit": 1}, headers=alice.headers)
    cursor = page.json()["next_cursor"]
    assert cursor is not None
    as_bob = await relay.client.get(
        "/v1/history", params={"before": cursor, "limit": 200}, headers=bob.headers
    )
    assert as_bob.status_code == 200
    assert {m["id"] for m in as_bob.json()["messages"]} <= bob.message_ids


async def test_idempotency_keys_do_not_leak_answers(relay: Running) -> None:
    alice = await party(relay, "zanzibar")
    bob = await party(relay, "quokka")
    key = {"Idempotency-Key": "same-key"}
    first = await chat(relay, {**alice.headers, **key}, message="alice secret zanzibar")
    second = await chat(relay, {**bob.headers, **key}, message="alice secret zanzibar")
    assert first.status_code == second.status_code == 200
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["conversation_id"] != first.json()["conversation_id"]
