"""Idempotency-Key on /v1/chat: retries replay the first answer, per client."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from relay.storage.records import IdempotencyRecord, utc_now
from tests.conftest import Running


async def chat(
    running: Running, headers: dict[str, str], key: str | None, **body: Any
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return await running.client.post("/v1/chat", json=body, headers={**headers, **extra})


async def stored(running: Running, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await running.client.get("/v1/history", headers=headers)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if len(lines) == 2 and lines[0].startswith("event: "):
            events.append((lines[0][7:], json.loads(lines[1].removeprefix("data: "))))
    return events


async def test_same_key_and_body_replays_the_first_answer(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    first = await chat(relay, headers, "key-1", message="pay once")
    assert first.status_code == 200, first.text
    second = await chat(relay, headers, "key-1", message="pay once")
    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    assert len(await stored(relay, headers)) == 2

    # Without the key, the same body is a new exchange.
    third = await chat(relay, headers, None, message="pay once")
    assert third.json()["id"] != first.json()["id"]
    assert len(await stored(relay, headers)) == 4


async def test_same_key_with_another_body_is_409(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    first = await chat(relay, headers, "key-2", message="original")
    assert first.status_code == 200
    for body in (
        {"message": "changed"},
        {"message": "original", "model": "other"},
        {"message": "original", "conversation_id": first.json()["conversation_id"]},
        {"message": "original", "stream": True},
    ):
        conflict = await chat(relay, headers, "key-2", **body)
        assert conflict.status_code == 409, body
        error = conflict.json()["error"]
        assert error["code"] == "idempotency_conflict"
        assert error["request_id"] == conflict.headers["x-request-id"]
    assert len(await stored(relay, headers)) == 2
    # The key still answers its own body.
    again = await chat(relay, headers, "key-2", message="original")
    assert again.json() == first.json()


async def test_keys_are_per_client(relay: Running) -> None:
    alice = await relay.bearer("chat", "history")
    bob = await relay.bearer("chat", "history")
    first = await chat(relay, alice, "shared-key", message="from alice")
    assert first.status_code == 200

    # Another client's key of the same name is unrelated: no conflict, no replay.
    other_body = await chat(relay, bob, "shared-key", message="from bob")
    assert other_body.status_code == 200, other_body.text
    assert other_body.json()["message"]["content"] == "from bob"

    same_body_alice = await chat(relay, alice, "key-x", message="same words")
    same_body_bob = await chat(relay, bob, "key-x", message="same words")
    assert same_body_bob.status_code == 200
    assert same_body_bob.json()["id"] != same_body_alice.json()["id"]
    assert same_body_bob.json()["conversation_id"] != same_body_alice.json()["conversation_id"]

    assert {m["content"] for m in await stored(relay, bob)} == {"from bob", "same words"}
    assert len(await stored(relay, bob)) == 4
    assert len(await stored(relay, alice)) == 4


async def test_streamed_request_is_replayed_as_sse(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    body = {"message": "stream me  once please", "stream": True}
    first = await chat(relay, headers, "key-s", **body)
    second = await chat(relay, headers, "key-s", **body)
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
    first_events, second_events = sse_events(first.text), sse_events(second.text)

    def text(events: list[tuple[str, dict[str, Any]]]) -> str:
        return "".join(data["text"] for name, data in events if name == "delta")

    assert text(first_events) == text(second_events) == "stream me  once please"
    names = [name for name, _ in second_events]
    assert names[0] == "message_start"
    assert names[-1] == "message_end"
    assert second_events[0][1] == first_events[0][1]
    assert second_events[-1][1] == first_events[-1][1]
    assert len(await stored(relay, headers)) == 2

    # The same key without stream is another body.
    plain = await chat(relay, headers, "key-s", message="stream me  once please")
    assert plain.status_code == 409


async def test_a_failed_request_frees_its_key(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    for _ in range(2):
        missing = await chat(relay, headers, "key-f", message="hi", conversation_id="conv_nope")
        assert missing.status_code == 404  # not 409 "still running"
    conversation = (await chat(relay, headers, None, message="start")).json()["conversation_id"]
    # A different body under the freed key runs.
    ok = await chat(relay, headers, "key-f", message="hi", conversation_id=conversation)
    assert ok.status_code == 200, ok.text
    assert len(await stored(relay, headers)) == 4


async def test_keys_expire_after_24_hours(relay: Running) -> None:
    client_id, api_key = await relay.new_client("chat", "history")
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    for key, age in (("old-key", timedelta(hours=25)), ("young-key", timedelta(hours=23))):
        # Claimed and still held (its lease runs another hour).
        created, lease = utc_now() - age, utc_now() + timedelta(hours=1)
        record = IdempotencyRecord(client_id, key, "another body", None, created, "x", lease)
        assert await relay.relay.store.claim_idempotency(record, expired_before=created)

    expired = await chat(relay, headers, "old-key", message="fresh")
    assert expired.status_code == 200, expired.text
    assert expired.json()["message"]["content"] == "fresh"
    assert (await chat(relay, headers, "old-key", message="fresh")).json() == expired.json()

    kept = await chat(relay, headers, "young-key", message="fresh")
    assert kept.status_code == 409
    assert len(await stored(relay, headers)) == 2


async def test_bad_idempotency_key_is_422(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    response = await chat(relay, headers, "k" * 256, message="hi")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await stored(relay, headers) == []
