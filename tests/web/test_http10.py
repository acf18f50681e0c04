"""HTTP/1.0 clients against a real `relay serve`: a streamed chat reaches them ended by
the close, never chunked (HTTP/1.0 has no chunks), and every other answer has its length."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.chat.test_streaming import parse_sse
from tests.support.processes import Instance, create_client, relay_instances, sqlite_env
from tests.support.raw_http import dechunk, exchange


@dataclass(frozen=True)
class Served:
    instance: Instance
    token: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = sqlite_env(tmp_path_factory.mktemp("relay"))
    with relay_instances(env, 1) as (instance,):
        _, api_key = create_client(env, "app", "chat")
        exchanged = httpx.post(f"{instance.url}/auth/token", json={"api_key": api_key})
        yield Served(instance, exchanged.json()["access_token"])


def chat(served: Served, version: bytes, **body: Any) -> bytes:
    """POST /v1/chat by hand, as an HTTP/`version` client sends it."""
    content = orjson.dumps(body)
    return (
        b"POST /v1/chat HTTP/%s\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
        % (version, served.token.encode(), len(content), content)
    )


def test_a_stream_over_http_1_0_is_not_chunked_and_ends_with_the_close(served: Served) -> None:
    message = "a stream for an old client"
    response = exchange(served.instance, chat(served, b"1.0", message=message, stream=True))
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/event-stream")
    assert response.header("transfer-encoding") is None
    assert response.header("content-length") is None
    assert response.header("connection") == "close"
    # The body as it came is the event stream itself: no chunk sizes in it.
    events = parse_sse(response.body.decode())
    names = [name for name, _ in events]
    assert (names[0], names[-1]) == ("message_start", "message_end")
    assert "".join(data["text"] for name, data in events if name == "delta") == message


def test_a_plain_chat_over_http_1_0_has_its_length(served: Served) -> None:
    response = exchange(served.instance, chat(served, b"1.0", message="plain"))
    assert response.status == 200
    assert response.header("content-length") == str(len(response.body))
    assert response.json()["message"]["content"] == "plain"


def test_a_stream_over_http_1_1_is_still_chunked(served: Served) -> None:
    response = exchange(served.instance, chat(served, b"1.1", message="new client", stream=True))
    assert response.status == 200
    assert response.header("transfer-encoding") == "chunked"
    events = parse_sse(dechunk(response.body).decode())
    assert "".join(data["text"] for name, data in events if name == "delta") == "new client"
