"""Failing parts under steady chat load: every request is answered, nothing is lost.

While several clients chat, the backend dies and comes back, PostgreSQL stops
and restarts, and Redis dies. Then: every request got a success or a mapped
error (no hang, no 500), Relay recovers without a restart, every 200 has both
messages in history, and every backend failure left its user message `failed`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from relay.config import Settings
from tests.conftest import Running, running
from tests.support.servers.upstream_server import UpstreamServer
from tests.support.throwaway import (
    PostgresCluster,
    RedisServer,
    throwaway_postgres,
    throwaway_redis,
)

CLIENTS = 4
REQUEST_DEADLINE = 20.0  # a request still unanswered by then counts as a hang
BACKEND_ERRORS = {"backend_error", "backend_busy", "backend_timeout", "backend_unavailable"}
HIGH = "1000000/minute"


@dataclass
class Outcome:
    message: str
    status: int  # 0: no answer in time
    code: str | None


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with throwaway_redis() as server:
        yield server


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamServer]:
    server = UpstreamServer()
    await server.start()
    yield server
    await server.stop()


async def _chat(relay: Running, headers: dict[str, str], message: str) -> Outcome:
    try:
        response = await asyncio.wait_for(
            relay.client.post("/v1/chat", json={"message": message}, headers=headers),
            REQUEST_DEADLINE,
        )
    except TimeoutError:
        return Outcome(message, 0, None)
    code = response.json()["error"]["code"] if response.status_code >= 400 else None
    return Outcome(message, response.status_code, code)


async def _steady_load(
    relay: Running, headers: dict[str, str], name: str, stop: asyncio.Event
) -> list[Outcome]:
    outcomes = []
    for index in range(10_000):
        if stop.is_set():
            break
        outcomes.append(await _chat(relay, headers, f"{name} message {index}"))
    return outcomes


async def _faults(upstream: UpstreamServer, cluster: PostgresCluster, redis: RedisServer) -> None:
    port = int(upstream.url.rsplit(":", 1)[1])
    await asyncio.sleep(0.8)
    await upstream.stop()  # the backend dies...
    await asyncio.sleep(1.2)
    await upstream.start(port)  # ...and comes back
    await asyncio.sleep(1.0)
    await asyncio.to_thread(cluster.stop)  # the database stops...
    await asyncio.sleep(1.5)
    await asyncio.to_thread(cluster.start)  # ...and restarts
    await asyncio.sleep(1.0)
    await asyncio.to_thread(redis.stop)  # the rate-limit store dies for good
    await asyncio.sleep(1.5)


async def _history(relay: Running, headers: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every stored message of the client, by content."""
    by_content: dict[str, list[dict[str, Any]]] = {}
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 200, **({"before": cursor} if cursor else {})}
        page = (await relay.client.get("/v1/history", params=params, headers=headers)).json()
        for message in page["messages"]:
            by_content.setdefault(message["content"], []).append(message)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return by_content


async def _recovered(relay: Running, headers: dict[str, str], deadline: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        health = await relay.client.get("/health")
        chat = await _chat(relay, headers, "are you back")
        if health.status_code == 200 and chat.status == 200:
            return
        await asyncio.sleep(0.2)
    pytest.fail("Relay did not recover without a restart")


async def test_nothing_lost_when_backend_database_and_redis_fail(
    postgres_cluster: PostgresCluster, redis_server: RedisServer, upstream: UpstreamServer
) -> None:
    settings = Settings(
        _env_file=None,
        database_url=postgres_cluster.url(),
        redis_url=redis_server.url,
        relay_backend="upstream",
        upstream_url=upstream.url,
        backend_timeout=2.0,
        backend_max_retries=0,
        backend_breaker_cooldown=0.5,
        rate_limit_default=HIGH,
        rate_limit_chat=HIGH,
        bcrypt_rounds=4,
    )
    async with running(settings) as relay:
        headers = [await relay.bearer("chat", "history") for _ in range(CLIENTS)]
        stop = asyncio.Event()
        load = [
            asyncio.create_task(_steady_load(relay, h, f"client{i}", stop))
            for i, h in enumerate(headers)
        ]
        await _faults(upstream, postgres_cluster, redis_server)
        stop.set()
        results = await asyncio.gather(*load)
        await _recovered(relay, headers[0], deadline=15.0)

        kinds: Counter[str] = Counter()
        for client_headers, outcomes in zip(headers, results, strict=True):
            stored = await _history(relay, client_headers)
            for outcome in outcomes:
                kinds[_check_outcome(outcome, stored)] += 1
    print(f"\nfailure run: {dict(kinds)}")
    assert kinds["ok"] > 0 and kinds["backend_failed"] > 0 and kinds["database_unavailable"] > 0


def _check_outcome(outcome: Outcome, stored: dict[str, list[dict[str, Any]]]) -> str:
    """Check one request against what history holds; return its kind for the report."""
    assert outcome.status != 0, f"no answer within {REQUEST_DEADLINE} s: {outcome.message}"
    assert outcome.status != 500, f"a bare 500 for {outcome.message}"
    user = [m for m in stored.get(outcome.message, []) if m["role"] == "user"]
    if outcome.status == 200:
        assert [m["status"] for m in user] == ["complete"], outcome
        replies = stored.get(f"You said: {outcome.message}", [])
        assert [m["status"] for m in replies] == ["complete"], outcome
        return "ok"
    if outcome.code in BACKEND_ERRORS:
        assert [m["status"] for m in user] == ["failed"], outcome
        return "backend_failed"
    # The database itself was down: the client was told (503) and may retry.
    assert (outcome.status, outcome.code) == (503, "database_unavailable"), outcome
    return "database_unavailable"
