"""GET /health in full: every check, a backend down, Redis down, a real database lost and back.

The database test runs its own PostgreSQL cluster (tests.support.throwaway) so that
stopping it never disturbs the shared server other tests use.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from relay import __version__
from relay.config import Settings
from relay.health import service as health_service
from relay.storage import SQLiteStore
from relay.storage.sqlite.writer import WriterProcess
from tests.conftest import MakeSettings, Running, StartRelay
from tests.support import services
from tests.support.ports import closed_port
from tests.support.throwaway import PostgresCluster, throwaway_postgres, throwaway_redis

CHECKS = {"database", "backend", "rate_limit_store"}


def require_upstream_backend() -> None:
    pytest.importorskip(
        "relay.backends.upstream", reason="the upstream backend is not importable yet"
    )


def assert_shape(response: httpx.Response, *, status_code: int, status: str) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["version"] == __version__
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["status"] in ("ok", "down"), name
        assert isinstance(check["latency_ms"], int | float), name
        assert check["latency_ms"] >= 0, name
    return body


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_every_check_is_reported_with_status_and_latency(
    make_settings: MakeSettings, start_relay: StartRelay, store: str
) -> None:
    redis_url = None
    if store == "redis":
        services.require_redis()
        redis_url = services.REDIS_URL
    async with start_relay(make_settings(redis_url=redis_url)) as relay:
        response = await relay.client.get("/health")  # no credentials needed
        body = assert_shape(response, status_code=200, status="ok")
        assert statuses(body) == dict.fromkeys(CHECKS, "ok")
        assert body["checks"]["backend"]["name"] == "echo"
        assert body["checks"]["rate_limit_store"]["kind"] == store
        assert response.headers["x-request-id"]


async def test_a_backend_that_is_down_degrades_but_serves(
    make_settings: MakeSettings, start_relay: StartRelay
) -> None:
    require_upstream_backend()
    settings = make_settings(
        relay_backend="upstream",
        upstream_url=f"http://127.0.0.1:{closed_port()}",
        backend_max_retries=0,
    )
    async with start_relay(settings) as relay:
        body = assert_shape(await relay.client.get("/health"), status_code=200, status="degraded")
        assert statuses(body) == {"database": "ok", "backend": "down", "rate_limit_store": "ok"}
        assert body["checks"]["backend"]["name"] == "upstream"
        # Still serving what does not need the backend.
        token = await relay.bearer("history")
        assert (await relay.client.get("/v1/history", headers=token)).status_code == 200


async def test_redis_down_degrades_but_serves(tmp_path: Path, start_relay: StartRelay) -> None:
    with throwaway_redis() as redis:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp_path / 'relay.db'}",
            bcrypt_rounds=4,
            redis_url=redis.url,
        )
        async with start_relay(settings) as relay:
            body = assert_shape(await relay.client.get("/health"), status_code=200, status="ok")
            assert body["checks"]["rate_limit_store"]["kind"] == "redis"
            redis.stop()
            started = time.monotonic()
            body = assert_shape(
                await relay.client.get("/health"), status_code=200, status="degraded"
            )
            assert time.monotonic() - started < 3  # the probe gives up quickly
            assert statuses(body) == {"database": "ok", "backend": "ok", "rate_limit_store": "down"}


async def test_database_lost_is_503_down_and_recovers_without_restart(
    start_relay: StartRelay,
) -> None:
    password = "pw-" + services.unique_name("secret")
    redis_password = "rpw-" + services.unique_name("secret")
    with throwaway_postgres() as cluster, throwaway_redis(redis_password) as redis:
        # Trust authentication ignores the password, but Relay must still never show it.
        settings = Settings(
            _env_file=None,
            database_url=cluster.url(password),
            redis_url=redis.url,
            bcrypt_rounds=4,
            relay_backend="echo",
        )
        async with start_relay(settings) as relay:
            hidden = (password, redis_password, "postgresql://", "redis://")

            def assert_no_secret(response: httpx.Response) -> None:
                for secret in hidden:
                    assert secret not in response.text

            up = await relay.client.get("/health")
            assert_shape(up, status_code=200, status="ok")
            assert_no_secret(up)

            cluster.stop()
            down = await relay.client.get("/health")
            body = assert_shape(down, status_code=503, status="down")
            assert body["checks"]["database"]["status"] == "down"
            assert body["checks"]["backend"]["status"] == "ok"
            assert down.json()["version"] == __version__
            assert_no_secret(down)

            cluster.start()
            deadline = time.monotonic() + 10
            back = await relay.client.get("/health")
            while back.status_code != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                back = await relay.client.get("/health")
            body = assert_shape(back, status_code=200, status="ok")
            assert_no_secret(back)
            # And the API works again on the same pool.
            token = await relay.bearer("history")
            assert (await relay.client.get("/v1/history", headers=token)).status_code == 200


async def test_an_unresponsive_database_is_down_within_the_probe_timeout(
    start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database host that stops answering (no refusal, no reset) must not hang /health."""
    monkeypatch.setattr(health_service, "PROBE_TIMEOUT", 0.5)
    with throwaway_postgres() as cluster:
        settings = Settings(_env_file=None, database_url=cluster.url(), bcrypt_rounds=4)
        async with start_relay(settings) as relay:
            assert_shape(await relay.client.get("/health"), status_code=200, status="ok")
            cluster.pause()
            try:
                started = time.monotonic()
                response = await asyncio.wait_for(relay.client.get("/health"), 5)
                assert time.monotonic() - started < 2
                body = assert_shape(response, status_code=503, status="down")
                assert body["checks"]["database"]["status"] == "down"
            finally:
                cluster.resume()
            deadline = time.monotonic() + 10
            back = await relay.client.get("/health")
            while back.status_code != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                back = await relay.client.get("/health")
            assert_shape(back, status_code=200, status="ok")


async def read_only(cluster: PostgresCluster, on: bool) -> None:
    """Every transaction of the cluster read-only from now on (as on a standby), or not."""
    conn = await asyncpg.connect(cluster.url())
    try:
        await conn.execute("SET default_transaction_read_only = off")
        await conn.execute(
            f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}"
        )
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def until_status(relay: Running, status_code: int) -> httpx.Response:
    """/health, polled until it answers `status_code` (a reload reaches sessions shortly)."""
    deadline = time.monotonic() + 10
    response = await relay.client.get("/health")
    while response.status_code != status_code and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        response = await relay.client.get("/health")
    return response


async def test_a_database_that_answers_but_cannot_commit_is_down_until_it_can(
    start_relay: StartRelay,
) -> None:
    """Reads alone do not make a database healthy: /health commits a write."""
    with throwaway_postgres() as cluster:
        settings = Settings(_env_file=None, database_url=cluster.url(), bcrypt_rounds=4)
        async with start_relay(settings) as relay:
            token = await relay.bearer("chat")
            assert_shape(await relay.client.get("/health"), status_code=200, status="ok")
            await read_only(cluster, True)
            body = assert_shape(await until_status(relay, 503), status_code=503, status="down")
            assert body["checks"]["database"]["status"] == "down"
            refused = await relay.client.post("/v1/chat", headers=token, json={"message": "x"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "database_unavailable"

            await read_only(cluster, False)
            assert_shape(await until_status(relay, 200), status_code=200, status="ok")
            chat = await relay.client.post("/v1/chat", headers=token, json={"message": "ok"})
            assert chat.status_code == 200, chat.text


async def test_sqlite_without_its_writer_is_503_down_and_recovers(
    tmp_path: Path, start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads alone do not make SQLite healthy: its writes are made by a process of their own."""
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'relay.db'}", bcrypt_rounds=4
    )
    async with start_relay(settings) as relay:
        assert_shape(await relay.client.get("/health"), status_code=200, status="ok")
        store = relay.relay.store
        assert isinstance(store, SQLiteStore) and isinstance(store.writer, WriterProcess)
        assert store.writer.pid is not None
        os.kill(store.writer.pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        with monkeypatch.context() as patched:
            patched.setattr(sys, "executable", "/nonexistent/python3")  # it cannot restart
            down = await relay.client.get("/health")
        body = assert_shape(down, status_code=503, status="down")
        assert body["checks"]["database"]["status"] == "down"
        # The next probe starts a new writer, and chats are stored again.
        assert_shape(await relay.client.get("/health"), status_code=200, status="ok")
        token = await relay.bearer("chat")
        chat = await relay.client.post("/v1/chat", headers=token, json={"message": "stored"})
        assert chat.status_code == 200, chat.text


async def test_no_secret_in_the_backend_check(
    make_settings: MakeSettings, start_relay: StartRelay
) -> None:
    require_upstream_backend()
    secret = "up-" + services.unique_name("secret")
    settings = make_settings(
        relay_backend="upstream",
        upstream_url=f"http://relay:{secret}@127.0.0.1:{closed_port()}/base",
        upstream_api_key=f"key-{secret}",
        backend_max_retries=0,
    )
    async with start_relay(settings) as relay:
        response = await relay.client.get("/health")
        body = assert_shape(response, status_code=200, status="degraded")
        assert body["checks"]["backend"]["status"] == "down"
        assert secret not in response.text
        assert "http://" not in response.text
