"""Idempotency-Key when the database fails while a chat waits on the backend.

The request that failed could not free its key (the database was gone too).
Its retry, once the database is back, must get the stored answer or a fresh
call within the claim's lease (short here), never `409 still running` for a
day; a streamed chat whose end cannot be stored ends with an `error` event.
Real services throughout: a throwaway PostgreSQL stopped and started, the
SQLite writer process killed on files that refuse writes, a fake upstream
backend that takes its time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.config import Settings
from relay.storage import SQLiteStore
from tests.chat.test_streaming import parse_sse
from tests.conftest import Running, history, running
from tests.support.files import unwritable
from tests.support.servers import reply_for
from tests.support.servers.upstream_server import UpstreamServer
from tests.support.throwaway import throwaway_postgres

LEASE = 1.0  # seconds; the claim of a request that died is free after this
RETRY_SECONDS = LEASE + 10  # bounds every wait for a retry to go through
BACKEND_DELAY = 1.0  # the backend's thinking time, while the database fails
HIGH = "1000000/minute"


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamServer]:
    server = UpstreamServer()
    await server.start()
    yield server
    await server.stop()


def settings_for(database_url: str, upstream: UpstreamServer) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        relay_backend="upstream",
        upstream_url=upstream.url,
        backend_max_retries=0,
        idempotency_lease=LEASE,
        rate_limit_default=HIGH,
        rate_limit_chat=HIGH,
        bcrypt_rounds=4,
    )


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], key: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/chat", json=body, headers={**headers, "Idempotency-Key": key})


async def backend_called(upstream: UpstreamServer, times: int) -> None:
    """Wait (bounded) until the backend has received `times` chats."""
    deadline = time.monotonic() + 10
    while len(upstream.calls("/v1/chat")) < times:
        assert time.monotonic() < deadline, "the chat never reached the backend"
        await asyncio.sleep(0.01)


async def retried_until_answered(
    client: httpx.AsyncClient, headers: dict[str, str], key: str, body: dict[str, Any]
) -> httpx.Response:
    """Retry with the same key, as a client would, until it is answered (bounded).

    Until the failed request's lease ends a retry may be told 409 (still
    running), and 503 while the database is not back; nothing else.
    """
    deadline = time.monotonic() + RETRY_SECONDS
    seen = []
    while time.monotonic() < deadline:
        response = await post(client, headers, key, body)
        if response.status_code == 200:
            return response
        seen.append((response.status_code, response.json()["error"]["code"]))
        assert seen[-1] in {(409, "idempotency_conflict"), (503, "database_unavailable")}
        await asyncio.sleep(0.1)
    pytest.fail(f"the key stayed taken for {RETRY_SECONDS} s: {seen[-3:]}")


async def assert_answered_once(
    relay: Running,
    headers: dict[str, str],
    key: str,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    """The answer is the one stored, the only one stored, and replays as it is."""
    assert answer["message"]["content"] == reply_for(body["message"])
    stored = await history(relay, headers)
    replies = [m for m in stored if m["role"] == "assistant"]
    assert [(m["id"], m["status"]) for m in replies] == [(answer["id"], "complete")]
    replayed = await post(relay.client, headers, key, body)
    assert replayed.status_code == 200 and replayed.json() == answer


async def test_postgres_down_while_the_backend_works_frees_the_key_for_a_retry(
    upstream: UpstreamServer,
) -> None:
    """Even across a Relay restart: the lease, not the failed request, frees the key."""
    body = {"message": "pay for me once"}
    with throwaway_postgres() as cluster:
        settings = settings_for(cluster.url(), upstream)
        async with running(settings) as relay:
            headers = await relay.bearer("chat", "history")
            upstream.plan(delay=BACKEND_DELAY)
            first = asyncio.create_task(post(relay.client, headers, "pg-key", body))
            await backend_called(upstream, 1)
            await asyncio.to_thread(cluster.stop)
            failed = await first
            assert failed.status_code == 503, failed.text
            assert failed.json()["error"]["code"] == "database_unavailable"
            await asyncio.to_thread(cluster.start)
        async with running(settings) as relay:  # a restarted Relay
            answer = await retried_until_answered(relay.client, headers, "pg-key", body)
            await assert_answered_once(relay, headers, "pg-key", body, answer.json())
    assert len(upstream.calls("/v1/chat")) == 2  # the failed call and the retry's


def sqlite_files(store: SQLiteStore) -> list[Path]:
    # Not the -shm: it is memory every connection maps; made immutable under a live
    # mapping (root's chattr), a reader's lock write faults (SIGBUS), which no
    # permission change does in real life.
    return [Path(f"{store.path}{suffix}") for suffix in ("", "-wal")]


async def test_sqlite_writer_lost_while_the_backend_works_frees_the_key_for_a_retry(
    upstream: UpstreamServer, tmp_path: Path
) -> None:
    body = {"message": "pay for me once"}
    settings = settings_for(f"sqlite:///{tmp_path / 'relay.db'}", upstream)
    async with running(settings) as relay:
        headers = await relay.bearer("chat", "history")
        store = relay.relay.store
        assert isinstance(store, SQLiteStore) and store.writer.pid is not None
        upstream.plan(delay=BACKEND_DELAY)
        first = asyncio.create_task(post(relay.client, headers, "lite-key", body))
        await backend_called(upstream, 1)
        # The writer dies, and cannot start again until the files are writable.
        with unwritable(*sqlite_files(store)):
            os.kill(store.writer.pid, signal.SIGKILL)
            failed = await first
        assert failed.status_code == 503, failed.text
        answer = await retried_until_answered(relay.client, headers, "lite-key", body)
        await assert_answered_once(relay, headers, "lite-key", body, answer.json())


async def test_a_stream_whose_end_cannot_be_stored_ends_with_an_error_event(
    upstream: UpstreamServer,
) -> None:
    """The stream is answered (200) and cut off cleanly; its key is free for the retry."""
    body = {"message": "stream me once please", "stream": True}
    with throwaway_postgres() as cluster:
        async with running(settings_for(cluster.url(), upstream)) as relay:
            headers = await relay.bearer("chat", "history")
            upstream.plan(stall_after=1, stall=BACKEND_DELAY)
            first = asyncio.create_task(post(relay.client, headers, "stream-key", body))
            await backend_called(upstream, 1)
            await asyncio.sleep(BACKEND_DELAY / 4)  # the stream has started
            await asyncio.to_thread(cluster.stop)
            failed = await first  # a body cut off mid-transfer raises here
            assert failed.status_code == 200
            events = parse_sse(failed.text)
            assert events[0][0] == "message_start"
            assert events[-1] == (
                "error",
                {
                    "error": {
                        "code": "database_unavailable",
                        "message": "The database is unavailable; the reply could not be stored.",
                    }
                },
            )
            await asyncio.to_thread(cluster.start)
            retried = await retried_until_answered(relay.client, headers, "stream-key", body)
            names = [name for name, _ in parse_sse(retried.text)]
            assert names[0] == "message_start" and names[-1] == "message_end"
