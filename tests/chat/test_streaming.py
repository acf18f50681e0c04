"""Streaming /v1/chat: SSE framing, stored replies, disconnects and keep-alives."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from relay.backends.base import ChatRequest, StreamEvent, TextDelta
from relay.backends.echo import EchoBackend
from relay.chat.events import ChatEvent, ReplyDelta
from relay.chat.service import ChatInput
from relay.config import Settings
from relay.storage.records import MessageRecord
from relay.web.sse import KEEPALIVE, encode, with_keepalive
from tests.conftest import Running, StartRelay, history

Event = tuple[str, dict[str, Any]]


def parse_sse(text: str) -> list[Event]:
    """Events of an SSE body, checking each is one `event:` and one `data:` line."""
    events: list[Event] = []
    assert text.endswith("\n\n"), repr(text[-20:])
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if lines[0].startswith(":"):
            assert lines == [": keep-alive"], block
            continue
        assert len(lines) == 2, block
        assert lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        data = json.loads(lines[1].removeprefix("data: "))
        assert isinstance(data, dict)
        events.append((lines[0].removeprefix("event: "), data))
    return events


async def stream_chat(
    running: Running, headers: dict[str, str], **body: Any
) -> tuple[httpx.Response, list[Event]]:
    response = await running.client.post("/v1/chat", json={**body, "stream": True}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, parse_sse(response.text)


async def close(body: AsyncIterator[bytes]) -> None:
    """aclose() the SSE body, as Starlette does when the client disconnects."""
    assert isinstance(body, AsyncGenerator)
    await body.aclose()


MESSAGE = "The quick  brown fox\tjumps over the lazy dog"


async def test_events_arrive_in_order_and_join_to_the_stored_reply(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    response, events = await stream_chat(relay, headers, message=MESSAGE)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-1] == "message_end"
    assert set(names[1:-1]) == {"delta"}
    # Echo streams word by word.
    assert len(names) - 2 == len(MESSAGE.split())

    start, end = events[0][1], events[-1][1]
    assert set(start) == {"id", "conversation_id", "model"}
    assert start["model"] == "echo"
    assert set(end) == {"id", "usage", "created_at"}
    assert end["id"] == start["id"]
    assert end["usage"] == {"input_tokens": 9, "output_tokens": 9}
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text == MESSAGE
    assert ": keep-alive" not in response.text

    stored = await history(relay, headers, conversation_id=start["conversation_id"])
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [
        ("assistant", MESSAGE, "complete"),
        ("user", MESSAGE, "complete"),
    ]
    assert stored[0]["id"] == start["id"]
    assert stored[0]["created_at"] == end["created_at"]


async def test_streamed_turn_continues_a_conversation(relay: Running) -> None:
    headers = await relay.bearer("chat", "history")
    first = await relay.client.post("/v1/chat", json={"message": "alpha beta"}, headers=headers)
    conversation = first.json()["conversation_id"]
    _, events = await stream_chat(relay, headers, message="gamma", conversation_id=conversation)
    assert events[0][1]["conversation_id"] == conversation
    assert events[-1][1]["usage"] == {"input_tokens": 5, "output_tokens": 1}
    assert len(await history(relay, headers, conversation_id=conversation)) == 4


async def test_stream_errors_before_start_are_plain_json(relay: Running) -> None:
    headers = await relay.bearer("chat")
    response = await relay.client.post(
        "/v1/chat",
        json={"message": "hi", "stream": True, "conversation_id": "conv_unknown"},
        headers=headers,
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


# --- keep-alive, unit level -------------------------------------------------


async def test_with_keepalive_sends_comments_while_waiting() -> None:
    async def slow() -> AsyncIterator[ChatEvent]:
        yield ReplyDelta("a")
        await asyncio.sleep(0.3)
        yield ReplyDelta("b")

    chunks = [chunk async for chunk in with_keepalive(slow(), 0.05)]
    assert chunks[0] == encode("delta", {"text": "a"}) == b'event: delta\ndata: {"text":"a"}\n\n'
    assert chunks[-1] == encode("delta", {"text": "b"})
    middle = chunks[1:-1]
    assert len(middle) >= 3
    assert set(middle) == {KEEPALIVE}
    assert KEEPALIVE == b": keep-alive\n\n"
    assert len(parse_sse(b"".join(chunks).decode())) == 2


async def test_with_keepalive_is_silent_when_events_are_fast() -> None:
    async def fast() -> AsyncIterator[ChatEvent]:
        for index in range(20):
            yield ReplyDelta(str(index))

    chunks = [chunk async for chunk in with_keepalive(fast(), 0.05)]
    assert KEEPALIVE not in chunks
    assert len(chunks) == 20


async def test_with_keepalive_closes_its_source_when_closed() -> None:
    closed = asyncio.Event()

    async def blocking() -> AsyncIterator[ChatEvent]:
        try:
            yield ReplyDelta("a")
            await asyncio.Event().wait()
            yield ReplyDelta("never")
        finally:
            closed.set()

    body = with_keepalive(blocking(), 0.02)
    assert await anext(body) == encode("delta", {"text": "a"})
    assert await anext(body) == KEEPALIVE
    await close(body)
    assert closed.is_set()


# --- a client leaving mid-stream ----------------------------------------------


async def stored_messages(running: Running, client_id: str) -> list[MessageRecord]:
    return await running.relay.store.list_messages(
        client_id, conversation_id=None, limit=50, before=None
    )


async def test_closing_the_stream_mid_reply_stores_an_incomplete_reply(relay: Running) -> None:
    """What Starlette does on disconnect: aclose() the body iterator while it waits."""
    client_id, _ = await relay.new_client("chat")
    chat = relay.relay.chat
    turn = await chat.prepare(client_id, ChatInput("one two three", stream=True), "req-1")
    source_closed = asyncio.Event()

    async def source() -> AsyncIterator[StreamEvent]:
        try:
            yield TextDelta(" two")
            await asyncio.Event().wait()  # the backend stalls: the client gives up
            yield TextDelta(" three")
        finally:
            source_closed.set()

    events = chat._relay_stream(turn, TextDelta("one"), source())
    body = with_keepalive(events, 0.05)
    received = [await anext(body) for _ in range(4)]
    assert parse_sse(b"".join(received).decode()) == [
        (
            "message_start",
            {
                "id": turn.reply_id,
                "conversation_id": turn.user_message.conversation_id,
                "model": "echo",
            },
        ),
        ("delta", {"text": "one"}),
        ("delta", {"text": " two"}),
    ]
    assert received[-1] == KEEPALIVE
    await close(body)

    assert source_closed.is_set()
    messages = await stored_messages(relay, client_id)
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("assistant", "one two", "incomplete"),
        ("user", "one two three", "complete"),
    ]
    assert messages[0].id == turn.reply_id


async def test_closing_before_any_text_marks_the_user_message_failed(relay: Running) -> None:
    client_id, _ = await relay.new_client("chat")
    chat = relay.relay.chat
    turn = await chat.prepare(client_id, ChatInput("hello", stream=True), "req-2")

    async def source() -> AsyncIterator[StreamEvent]:
        await asyncio.Event().wait()
        yield TextDelta("never")

    body = with_keepalive(chat._relay_stream(turn, TextDelta(""), source()), 0.05)
    assert (await anext(body)).startswith(b"event: message_start\n")
    await anext(body)  # the empty first delta
    await close(body)
    messages = await stored_messages(relay, client_id)
    assert [(m.role, m.status) for m in messages] == [("user", "failed")]


async def test_leaving_right_after_the_start_marks_failed_and_closes_the_backend(
    relay: Running,
) -> None:
    client_id, _ = await relay.new_client("chat")
    chat = relay.relay.chat
    turn = await chat.prepare(client_id, ChatInput("hello world", stream=True), "req-3")
    source_closed = asyncio.Event()

    async def source() -> AsyncIterator[StreamEvent]:
        try:
            yield TextDelta("hello")
            yield TextDelta(" world")
        finally:
            source_closed.set()

    backend = source()
    first = await anext(backend)  # as open_stream does before the response starts
    body = with_keepalive(chat._relay_stream(turn, first, backend), 0.05)
    assert (await anext(body)).startswith(b"event: message_start\n")
    await close(body)  # the client is gone before any text reached it
    assert source_closed.is_set()
    messages = await stored_messages(relay, client_id)
    assert [(m.role, m.status) for m in messages] == [("user", "failed")]


class StallingEcho(EchoBackend):
    """Echo that sends its first words, then waits forever (a slow model)."""

    def __init__(self, words: int) -> None:
        self.words = words
        self.closed = asyncio.Event()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            count = 0
            async for event in super().stream(request):
                if count == self.words:
                    await asyncio.Event().wait()
                count += 1
                yield event
        finally:
            self.closed.set()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan already running) under a real uvicorn on a free local port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
        sock.close()


async def test_real_disconnect_keeps_the_partial_reply(
    start_relay: StartRelay, make_settings: Callable[..., Settings]
) -> None:
    async with start_relay(make_settings(sse_keepalive_seconds=0.05)) as running:
        backend = StallingEcho(words=2)
        running.relay.chat.backend = backend
        client_id, api_key = await running.new_client("chat", "history")
        headers = {"Authorization": f"Bearer {await running.token_for(api_key)}"}
        lines: list[str] = []
        async with serve(running.app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
            body = {"message": "first second third fourth", "stream": True}
            async with http.stream("POST", "/v1/chat", json=body, headers=headers) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line == ": keep-alive":
                        break  # the reply stalled: the client leaves
            # The server notices the closed connection and stores what it sent.
            messages: list[MessageRecord] = []
            for _ in range(100):
                messages = await stored_messages(running, client_id)
                if len(messages) == 2:
                    break
                await asyncio.sleep(0.02)

        received = [json.loads(x[6:])["text"] for x in lines if x.startswith('data: {"text"')]
        assert received == ["first", " second"]
        assert [(m.role, m.content, m.status) for m in messages] == [
            ("assistant", "first second", "incomplete"),
            ("user", "first second third fourth", "complete"),
        ]
        assert backend.closed.is_set()

        listed = await running.client.get("/v1/history", headers=headers)
        assert [m["status"] for m in listed.json()["messages"]] == ["incomplete", "complete"]


class LateEcho(EchoBackend):
    """Echo that takes a while before its first word (a slow model)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await asyncio.sleep(self.delay)
        async for event in super().stream(request):
            yield event


async def test_giving_up_before_the_first_word_frees_the_key(
    start_relay: StartRelay, make_settings: Callable[..., Settings]
) -> None:
    async with start_relay(make_settings()) as running:
        running.relay.chat.backend = LateEcho(delay=0.3)
        client_id, api_key = await running.new_client("chat", "history")
        headers = {
            "Authorization": f"Bearer {await running.token_for(api_key)}",
            "Idempotency-Key": "retry-me",
        }
        body = {"message": "slow to start", "stream": True}
        async with serve(running.app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
            try:
                await http.post("/v1/chat", json=body, headers=headers, timeout=0.1)
                raise AssertionError("the request should have timed out")
            except httpx.TimeoutException:
                pass  # the client gives up
            messages: list[MessageRecord] = []
            for _ in range(100):
                messages = await stored_messages(running, client_id)
                if messages and messages[0].status != "complete":
                    break
                await asyncio.sleep(0.02)
            # Nothing reached the client: the turn failed, and no reply was kept.
            assert [(m.role, m.status) for m in messages] == [("user", "failed")]

            # The key was freed: the retry runs instead of "still running" (409).
            retry = await http.post("/v1/chat", json=body, headers=headers)
            assert retry.status_code == 200, retry.text
            events = parse_sse(retry.text)
            assert "".join(d["text"] for n, d in events if n == "delta") == "slow to start"
