"""Slow and idle clients against a real `relay serve`, on short timeouts: each is cut
off once its time is up, while a slow answer (an SSE stream) is never cut."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.chat.test_streaming import parse_sse
from tests.support.processes import Instance, create_client, relay_instances, sqlite_env
from tests.support.raw_http import (
    answered,
    assert_refused,
    connect,
    dechunk,
    parse,
    read_to_close,
    send,
)
from tests.support.servers.upstream_server import UpstreamServer

READ_TIMEOUT = 1.5
KEEPALIVE = 1
# How much later than its timeout a cut-off may come on a busy machine.
SLACK = 2.5
SHORT = {"REQUEST_READ_TIMEOUT": str(READ_TIMEOUT), "KEEPALIVE_TIMEOUT": str(KEEPALIVE)}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("relay")


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[Instance]:
    """Relay on short timeouts; its log (JSON lines, access lines too) goes to `home`."""
    env = sqlite_env(home, **SHORT, LOG_LEVEL="info", LOG_FORMAT="json")
    with (
        (home / "stderr.log").open("wb") as stderr,
        relay_instances(env, 1, stderr=stderr) as (instance,),
    ):
        yield instance


def logged(home: Path, deadline: float = 5.0, **fields: object) -> list[dict[str, Any]]:
    """The log so far, once it holds a line with `fields` (written by then, or fail)."""
    ends = time.monotonic() + deadline
    while True:
        lines = [orjson.loads(line) for line in (home / "stderr.log").read_bytes().splitlines()]
        if any(fields.items() <= line.items() for line in lines):
            return lines
        assert time.monotonic() < ends, f"no log line with {fields}"
        time.sleep(0.05)


def trickle(sock: socket.socket, pieces: Iterable[bytes], every: float, deadline: float) -> float:
    """Send a piece every `every` seconds until the server answers or closes (or the
    deadline passes); how long that took."""
    started = time.monotonic()
    for piece in pieces:
        if answered(sock, every) or time.monotonic() - started > deadline:
            break
        if not send(sock, piece):
            break
    return time.monotonic() - started


def test_an_idle_connection_is_closed_after_the_keepalive_timeout(served: Instance) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        assert read_to_close(sock) == b""  # closed without a word: no request began
        elapsed = time.monotonic() - started
    assert KEEPALIVE - 0.1 < elapsed < KEEPALIVE + SLACK


def test_blank_lines_do_not_keep_a_connection_open(served: Instance) -> None:
    with connect(served) as sock:
        elapsed = trickle(sock, (b"\r\n" for _ in count()), every=0.2, deadline=10)
        assert read_to_close(sock) == b""
    assert elapsed < KEEPALIVE + SLACK


def test_a_kept_alive_connection_is_closed_after_the_keepalive_timeout(served: Instance) -> None:
    with connect(served) as sock:
        send(sock, b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
        started = time.monotonic()
        response = parse(read_to_close(sock))  # the answer, then the close
        elapsed = time.monotonic() - started
    assert response.status == 200
    assert response.json()["status"] == "ok"
    assert KEEPALIVE - 0.1 < elapsed < KEEPALIVE + SLACK


def test_a_head_sent_a_line_a_time_is_cut_off_with_408(served: Instance) -> None:
    with connect(served) as sock:
        send(sock, b"GET /health HTTP/1.1\r\nHost: relay\r\nX-Request-ID: slow-head-1\r\n")
        lines = (b"X-Slow-%d: %d\r\n" % (i, i) for i in count())
        elapsed = trickle(sock, lines, every=0.3, deadline=READ_TIMEOUT + SLACK + 2)
        response = parse(read_to_close(sock))
    message = assert_refused(response, 408, "request_timeout", request_id="slow-head-1")
    assert "1.5 seconds" in message
    assert elapsed < READ_TIMEOUT + SLACK


def test_a_body_sent_a_byte_a_time_is_cut_off_with_408(served: Instance, home: Path) -> None:
    body = b'{"api_key": "rly_' + b"x" * 40 + b'"}'
    head = (
        b"POST /auth/token HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with connect(served) as sock:
        send(sock, head)
        pieces = (body[i : i + 1] for i in range(len(body)))
        elapsed = trickle(sock, pieces, every=0.3, deadline=READ_TIMEOUT + SLACK + 2)
        response = parse(read_to_close(sock))
    assert_refused(response, 408, "request_timeout")
    assert elapsed < READ_TIMEOUT + SLACK
    # The app, mid-read, learnt that the client was gone: an access line, no error.
    lines = logged(home, route="/auth/token", status=499)
    assert [line for line in lines if line["level"] == "error"] == []


def test_a_slow_body_that_ends_in_time_is_served(served: Instance) -> None:
    body = b'{"api_key": "rly_nothing"}'
    head = b"POST /auth/token HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n\r\n" % len(body)
    with connect(served) as sock:
        send(sock, head)
        for third in (body[:8], body[8:16], body[16:]):
            time.sleep(READ_TIMEOUT / 5)
            send(sock, third)
        response = parse(read_to_close(sock))
    assert response.status == 401  # answered: the key is wrong, the request was whole
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamServer]:
    server = UpstreamServer()
    await server.start()
    yield server
    await server.stop()


def stream_then_pipelined(instance: Instance, token: str) -> tuple[bytes, bytes, float]:
    """A streamed chat and, pipelined behind it, the start of a second request, finished
    once the stream has ended. Returns both answers as sent, and the stream's time."""
    chat = orjson.dumps({"message": "slow words arrive", "stream": True})
    head = (
        b"POST /v1/chat HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token.encode(), len(chat))
    )
    with connect(instance) as sock:
        started = time.monotonic()
        send(sock, head + chat + b"GET /health HTTP/1.1\r\nHost: relay\r\n")
        received = bytearray()
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the stream's last chunk
            chunk = sock.recv(65536)
            assert chunk, f"closed mid-stream after {bytes(received)!r}"
            received += chunk
        elapsed = time.monotonic() - started
        send(sock, b"Connection: close\r\n\r\n")
        return bytes(received), read_to_close(sock), elapsed


async def test_a_stream_outlives_both_timeouts(upstream: UpstreamServer, tmp_path: Path) -> None:
    """The timeouts bound receiving a request: a stream silent for longer than both
    (no keep-alive comment either) runs to its end, and a request pipelined behind
    it, half sent meanwhile, has its time counted only once the stream is done."""
    env = sqlite_env(
        tmp_path,
        **SHORT,
        RELAY_BACKEND="upstream",
        UPSTREAM_URL=upstream.url,
        SSE_KEEPALIVE_SECONDS="60",
    )
    with ExitStack() as stack:
        # In a thread: starting waits for /health, which asks the upstream on this loop.
        (instance,) = await asyncio.to_thread(stack.enter_context, relay_instances(env, 1))
        _, api_key = await asyncio.to_thread(create_client, env, "app", "chat")
        async with httpx.AsyncClient(base_url=instance.url) as http:
            token = (await http.post("/auth/token", json={"api_key": api_key})).json()
        silence = READ_TIMEOUT + KEEPALIVE + 0.5
        upstream.plan(stall_after=1, stall=silence)
        streamed, after, elapsed = await asyncio.to_thread(
            stream_then_pipelined, instance, token["access_token"]
        )
        await asyncio.to_thread(stack.close)
    stream = parse(streamed)
    assert stream.status == 200
    assert stream.header("transfer-encoding") == "chunked"
    events = parse_sse(dechunk(stream.body).decode())
    assert [name for name, _ in events][-1] == "message_end"
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text == "You said: slow words arrive"
    assert elapsed > silence
    health = parse(after)
    assert health.status == 200
    assert health.json()["status"] == "ok"
