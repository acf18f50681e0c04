"""POST /v1/chat over the echo backend, on both stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from relay.backends.base import BackendError, ChatRequest, Completion
from relay.backends.echo import EchoBackend
from relay.config import Settings
from tests.conftest import Running, StartRelay, chat, history


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def fields_named(response: httpx.Response) -> set[str]:
    return {detail["field"] for detail in error_of(response)["details"]}


async def test_new_conversation_echoes_the_message(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    response = await chat(relay, headers, message="hello there  world")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "conversation_id", "message", "model", "usage", "created_at"}
    assert body["message"] == {"role": "assistant", "content": "hello there  world"}
    assert body["model"] == "echo"
    assert body["usage"] == {"input_tokens": 3, "output_tokens": 3}
    assert body["created_at"].endswith("Z")
    assert body["id"] and body["conversation_id"] and body["id"] != body["conversation_id"]

    other = await chat(relay, headers, message="another")
    assert other.status_code == 200
    assert other.json()["conversation_id"] != body["conversation_id"]


async def test_both_messages_are_stored(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    body = (await chat(relay, headers, message="store me please")).json()
    messages = await history(relay, headers, conversation_id=body["conversation_id"])
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("assistant", "store me please", "complete"),
        ("user", "store me please", "complete"),
    ]
    assert messages[0]["id"] == body["id"]
    assert messages[0]["created_at"] == body["created_at"]
    assert {m["conversation_id"] for m in messages} == {body["conversation_id"]}
    assert messages[1]["id"] != body["id"]


async def test_continuing_sends_prior_turns_as_context(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    first = (await chat(relay, headers, message="one two")).json()
    conversation = first["conversation_id"]
    assert first["usage"] == {"input_tokens": 2, "output_tokens": 2}

    second = await chat(relay, headers, message="three four five", conversation_id=conversation)
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == conversation
    # user "one two" + assistant "one two" + the new message
    assert second.json()["usage"] == {"input_tokens": 2 + 2 + 3, "output_tokens": 3}

    third = await chat(relay, headers, message="six", conversation_id=conversation)
    assert third.json()["usage"] == {"input_tokens": 2 + 2 + 3 + 3 + 1, "output_tokens": 1}
    assert third.json()["message"]["content"] == "six"

    messages = await history(relay, headers, conversation_id=conversation)
    assert [m["content"] for m in messages] == [
        "six",
        "six",
        "three four five",
        "three four five",
        "one two",
        "one two",
    ]


async def test_context_is_bounded_by_config(
    start_relay: StartRelay, make_settings: Callable[..., Settings]
) -> None:
    async with start_relay(make_settings(history_context_messages=2)) as running:
        headers = await running.bearer("chat")
        first = (await chat(running, headers, message="a b c d")).json()
        conversation = first["conversation_id"]
        await chat(running, headers, message="e f", conversation_id=conversation)
        third = await chat(running, headers, message="g", conversation_id=conversation)
        # Only the last two stored messages ("e f" and its echo) go along.
        assert third.json()["usage"]["input_tokens"] == 2 + 2 + 1


async def test_unknown_conversation_is_404_and_stores_nothing(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    response = await chat(relay, headers, message="hi", conversation_id="conv_doesnotexist")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert await history(relay, headers) == []


async def test_message_longer_than_the_limit_is_422_naming_message(
    start_relay: StartRelay, make_settings: Callable[..., Settings]
) -> None:
    async with start_relay(make_settings(max_message_chars=10)) as running:
        headers = await running.bearer("chat", "history")
        at_limit = await chat(running, headers, message="x" * 10)
        assert at_limit.status_code == 200, at_limit.text
        too_long = await chat(running, headers, message="x" * 11)
        assert too_long.status_code == 422
        assert error_of(too_long)["code"] == "validation_error"
        assert fields_named(too_long) == {"message"}
        # The refused message was not stored.
        assert len(await history(running, headers)) == 2


async def test_invalid_bodies_are_422_naming_the_field(relay: Running) -> None:
    # Many refused requests in a row: keep the chat rate limit out of the way.
    headers = await relay.bearer("chat", "history", rate_limits={"chat": "1000/minute"})
    for body, field in [
        ({"message": ""}, "message"),
        ({}, "message"),
        ({"message": ["not", "text"]}, "message"),
        ({"message": "hi", "temperature": 0.3}, "temperature"),
        ({"message": "hi", "stream": "sometimes"}, "stream"),
        ({"message": "hi", "conversation_id": "c" * 65}, "conversation_id"),
        ({"message": "hi", "model": ""}, "model"),
    ]:
        response = await relay.client.post("/v1/chat", json=body, headers=headers)
        assert response.status_code == 422, body
        assert error_of(response)["code"] == "validation_error"
        assert field in fields_named(response), body

    # PostgreSQL cannot store NUL: refused alike on both stores, never a 500.
    for body, field in [
        ({"message": "a\x00b"}, "message"),
        ({"message": "hi", "model": "m\x00"}, "model"),
        ({"message": "hi", "system": "\x00"}, "system"),
    ]:
        response = await relay.client.post("/v1/chat", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert fields_named(response) == {field}
    # No id holds NUL: the body is refused before any lookup, for every field alike.
    nul_conversation = await chat(relay, headers, message="hi", conversation_id="conv_\x00")
    assert nul_conversation.status_code == 422
    assert fields_named(nul_conversation) == {"conversation_id"}

    malformed = await relay.client.post(
        "/v1/chat",
        content=b'{"message": "hi"',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert error_of(malformed)["code"] == "validation_error"
    assert await history(relay, headers) == []


async def test_allowed_models_refuse_other_models(
    start_relay: StartRelay, make_settings: Callable[..., Settings]
) -> None:
    async with start_relay(make_settings(allowed_models="a,b")) as running:
        headers = await running.bearer("chat", "history")
        refused = await chat(running, headers, message="hi", model="c")
        assert refused.status_code == 422
        assert error_of(refused)["code"] == "validation_error"
        assert fields_named(refused) == {"model"}
        assert await history(running, headers) == []

        allowed = await chat(running, headers, message="hi", model="b")
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["model"] == "b"
        default = await chat(running, headers, message="hi")
        assert default.status_code == 200, default.text


async def test_any_model_is_accepted_without_allowed_models(relay: Running) -> None:
    headers = await relay.bearer("chat")
    response = await chat(relay, headers, message="hi", model="whatever-model", system="be brief")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "whatever-model"


async def test_without_chat_scope_is_403_and_without_token_401(relay: Running) -> None:
    headers = await relay.bearer("history", "tools")
    response = await chat(relay, headers, message="hi")
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"
    assert await history(relay, headers) == []

    anonymous = await relay.client.post("/v1/chat", json={"message": "hi"})
    assert anonymous.status_code == 401
    assert error_of(anonymous)["code"] == "invalid_token"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


class FailingEcho(EchoBackend):
    """Echo whose model is down."""

    async def complete(self, request: ChatRequest) -> Completion:
        raise BackendError("the model is down")


class HangingEcho(EchoBackend):
    """Echo that never answers, and says when it has been asked."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def complete(self, request: ChatRequest) -> Completion:
        self.asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_backend_failure_stores_the_message_alone_as_failed(relay: Running) -> None:
    relay.relay.chat.backend = FailingEcho()
    headers = await relay.bearer("chat", "history")
    response = await chat(relay, headers, message="are you there?")
    assert response.status_code == 502
    assert error_of(response)["code"] == "backend_error"
    messages = await history(relay, headers)
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "are you there?", "failed")
    ]
    # Its new conversation was stored with it, and can be continued.
    relay.relay.chat.backend = EchoBackend()
    again = await chat(
        relay, headers, message="now?", conversation_id=messages[0]["conversation_id"]
    )
    assert again.status_code == 200, again.text


async def test_client_leaving_during_the_backend_call_keeps_its_message(relay: Running) -> None:
    """A plain chat stores its messages after the backend answers; leaving must not lose one."""
    backend = relay.relay.chat.backend = HangingEcho()
    headers = await relay.bearer("chat", "history")
    request = asyncio.create_task(chat(relay, headers, message="never mind"))
    await asyncio.wait_for(backend.asked.wait(), 5)
    request.cancel()  # the client gives up while the model works
    with contextlib.suppress(asyncio.CancelledError):
        await request
    messages: list[dict[str, Any]] = []
    for _ in range(100):
        if messages := await history(relay, headers):
            break
        await asyncio.sleep(0.02)
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "never mind", "failed")
    ]
