"""A model's reply holding NUL or a lone surrogate is kept, with U+FFFD in their place.

json.loads (and so the Anthropic and OpenAI SDKs) lets both through; PostgreSQL
cannot store NUL and no UTF-8 encoder takes a lone surrogate. Before, such a
reply failed the chat with a 500 and could wedge the SQLite store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.config import Settings
from tests.conftest import Running, running
from tests.contract.conftest import SERVERS, backend_settings
from tests.support.servers.base import FakeServer

UNSTORABLE = "bad \ud800 and \x00 here"
KEPT = "bad \ufffd and \ufffd here"


@pytest.fixture(params=["anthropic", "openai"])
async def model_server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, FakeServer]]:
    server = SERVERS[request.param](api_key="sk-unstorable-test")
    await server.start()
    try:
        yield request.param, server
    finally:
        await server.stop()


@pytest.fixture
async def relay_on_model(
    model_server: tuple[str, FakeServer], make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Running, dict[str, str]]]:
    """Relay on that server, which will answer its next chat with UNSTORABLE; and a bearer."""
    kind, server = model_server
    wired = backend_settings(kind, server.url).model_dump(exclude_unset=True)
    key_field = {"anthropic": "anthropic_api_key", "openai": "openai_api_key"}[kind]
    wired[key_field] = "sk-unstorable-test"
    async with running(make_settings(**wired)) as started:
        headers = await started.bearer("chat", "history")
        server.plan(reply=UNSTORABLE)
        yield started, headers


async def _history(relay: Running, headers: dict[str, str]) -> list[tuple[str, Any, str]]:
    page = await relay.client.get("/v1/history", headers=headers)
    assert page.status_code == 200, page.text
    return [(m["role"], m["content"], m["status"]) for m in page.json()["messages"]]


async def test_a_plain_reply_is_answered_and_stored_with_replacements(
    relay_on_model: tuple[Running, dict[str, str]],
) -> None:
    relay, headers = relay_on_model
    answered = await relay.client.post("/v1/chat", json={"message": "hi"}, headers=headers)
    assert answered.status_code == 200, answered.text
    assert answered.json()["message"]["content"] == KEPT
    assert KEPT in [content for _, content, _ in await _history(relay, headers)]
    # The store still takes writes.
    after = await relay.client.post("/v1/chat", json={"message": "again"}, headers=headers)
    assert after.status_code == 200, after.text


async def test_a_streamed_reply_is_relayed_and_stored_with_replacements(
    relay_on_model: tuple[Running, dict[str, str]],
) -> None:
    relay, headers = relay_on_model
    body = {"message": "hi", "stream": True}
    async with relay.client.stream("POST", "/v1/chat", json=body, headers=headers) as response:
        assert response.status_code == 200
        text = (await response.aread()).decode()
    assert "event: error" not in text
    assert "\\ufffd" in text or "\ufffd" in text
    assert ("assistant", KEPT, "complete") in await _history(relay, headers)
