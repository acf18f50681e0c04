"""Server-Timing on every answer: Relay's own time, and the backend's where one was called."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from relay.backends.base import ChatRequest, Completion, StreamEvent
from relay.backends.echo import EchoBackend
from relay.backends.guarded import GuardedBackend
from relay.config import Settings
from tests.conftest import Running, StartRelay

HEADER = re.compile(r"^relay;dur=(\d+\.\d{2})(?:, backend;dur=(\d+\.\d{2}))?$")
FIRST_WORD_DELAY = 0.15
NEXT_WORD_DELAY = 0.25


class SlowEcho(EchoBackend):
    """Echo that takes its time: before the reply, and between a stream's words."""

    async def complete(self, request: ChatRequest) -> Completion:
        await asyncio.sleep(FIRST_WORD_DELAY)
        return await super().complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await asyncio.sleep(FIRST_WORD_DELAY)
        first = True
        async for event in super().stream(request):
            if not first:
                await asyncio.sleep(NEXT_WORD_DELAY)
            first = False
            yield event


@pytest.fixture
async def app(tmp_path: Path, start_relay: StartRelay) -> AsyncIterator[Running]:
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'relay.db'}", bcrypt_rounds=4
    )
    async with start_relay(settings) as running:
        guarded = running.relay.chat.backend
        assert isinstance(guarded, GuardedBackend)  # the door every backend call goes through
        guarded.inner = SlowEcho()
        yield running


def timing(response: httpx.Response) -> tuple[float, float | None]:
    """(relay ms, backend ms or None) of the one Server-Timing header."""
    values = response.headers.get_list("server-timing")
    assert len(values) == 1, values
    match = HEADER.match(values[0])
    assert match, values[0]
    relay, backend = match.groups()
    return float(relay), None if backend is None else float(backend)


async def test_every_answer_says_relay_time(app: Running) -> None:
    headers = await app.bearer("tools", "history")
    for response in (
        await app.client.get("/v1/history", headers=headers),
        await app.client.get("/v1/history"),  # 401
        await app.client.get("/nowhere"),  # 404
        await app.client.post("/auth/token", content=b"x", headers={"content-type": "text/plain"}),
        await app.client.get("/metrics"),
        await app.client.get("/docs"),
    ):
        relay, backend = timing(response)
        assert 0 <= relay < 5000, response.request.url
        assert backend is None, response.request.url


async def test_a_chat_reports_the_backend_apart(app: Running) -> None:
    headers = await app.bearer("chat")
    response = await app.client.post("/v1/chat", json={"message": "hi there"}, headers=headers)
    assert response.status_code == 200
    relay, backend = timing(response)
    assert backend is not None and backend >= FIRST_WORD_DELAY * 1000
    assert relay < backend  # the backend's wait is not counted as Relay's


async def test_a_stream_reports_time_until_its_headers(app: Running) -> None:
    headers = await app.bearer("chat")
    body = {"message": "one two three", "stream": True}
    async with app.client.stream("POST", "/v1/chat", json=body, headers=headers) as response:
        assert response.status_code == 200
        relay, backend = timing(response)
        text = (await response.aread()).decode()
    assert text.count("event: delta") == 3
    # The backend's time to its first event, not the whole stream's.
    assert backend is not None
    assert FIRST_WORD_DELAY * 1000 <= backend < (FIRST_WORD_DELAY + NEXT_WORD_DELAY) * 1000
    assert relay < NEXT_WORD_DELAY * 1000


async def test_tools_report_the_backend_only_when_it_was_asked(app: Running) -> None:
    headers = await app.bearer("tools")
    first = await app.client.get("/v1/tools", headers=headers)
    assert timing(first)[1] is not None  # the backend's own tools, fetched
    cached = await app.client.get("/v1/tools", headers=headers)
    assert timing(cached)[1] is None  # served from the cache


@pytest.fixture
def quiet_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level("CRITICAL", logger="relay.errors")
    yield


async def test_an_unexpected_error_says_it_too(app: Running, quiet_errors: None) -> None:
    async def boom() -> None:
        raise RuntimeError("bug")

    app.app.add_api_route("/test-boom", boom)
    transport = httpx.ASGITransport(app=app.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
        response = await client.get("/test-boom")
    assert response.status_code == 500
    assert timing(response)[1] is None
