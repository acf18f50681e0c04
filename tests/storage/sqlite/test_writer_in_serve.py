"""The SQLite writer of a real `relay serve` killed and starved of write access.

Relay runs as `relay serve` (uvloop, as in production); its writer is the child
process running writer_child.py, killed with SIGKILL as a crash would. Every
request must be answered with a success or 503 `database_unavailable` (never a
500), and Relay must write again by itself once it can.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.files import unwritable
from tests.support.processes import (
    Instance,
    create_client,
    relay_env,
    relay_instances,
    sqlite_writer_pid,
)

HIGH = "1000000/minute"
RECOVERY_SECONDS = 10.0


@dataclass
class Served:
    instance: Instance
    database: Path
    log: Path
    headers: dict[str, str]

    @property
    def pid(self) -> int:
        return self.instance.process.pid


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    database = tmp_path / "relay.db"
    env = relay_env(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "RATE_LIMIT_DEFAULT": HIGH,
            "RATE_LIMIT_CHAT": HIGH,
        }
    )
    _, api_key = create_client(env, "load", "chat", "history")
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr, relay_instances(env, 1, stderr=stderr) as (instance,):
        token = httpx.post(f"{instance.url}/auth/token", json={"api_key": api_key}, timeout=10)
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield Served(instance, database, log, headers)


def kill_writer(served: Served) -> None:
    os.kill(sqlite_writer_pid(served.pid), signal.SIGKILL)


async def chat_outcome(client: httpx.AsyncClient, headers: dict[str, str], message: str) -> str:
    """`200`, or the status and error code of the answer."""
    response = await client.post("/v1/chat", json={"message": message}, headers=headers)
    if response.status_code == 200:
        return "200"
    return f"{response.status_code} {response.json()['error']['code']}"


async def until_answered(client: httpx.AsyncClient, served: Served) -> tuple[int, str]:
    """Poll /health and a chat until both succeed (or the recovery time is up)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    health, chat = 0, ""
    while time.monotonic() < deadline:
        health = (await client.get("/health")).status_code
        chat = await chat_outcome(client, served.headers, "are you back")
        if (health, chat) == (200, "200"):
            break
        await asyncio.sleep(0.1)
    return health, chat


async def test_a_writer_killed_under_load_answers_503_never_500(served: Served) -> None:
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()

    async def load(client: httpx.AsyncClient, worker: int) -> None:
        for index in range(100_000):
            if stop.is_set():
                return
            outcomes[await chat_outcome(client, served.headers, f"w{worker} m{index}")] += 1

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=served.instance.url, timeout=20, limits=limits) as client:
        workers = [asyncio.create_task(load(client, w)) for w in range(16)]
        for _ in range(12):
            await asyncio.sleep(0.25)
            await asyncio.to_thread(kill_writer, served)
        stop.set()
        await asyncio.gather(*workers)
        assert await until_answered(client, served) == (200, "200")
    assert set(outcomes) <= {"200", "503 database_unavailable"}, outcomes
    assert outcomes["200"] > 0
    assert "unhandled error" not in served.log.read_text()


async def test_a_writer_restarted_on_a_read_only_file_recovers_once_it_is_writable(
    served: Served,
) -> None:
    """Opened read-only, the writer stayed so after the files were writable again."""
    files = [Path(f"{served.database}{suffix}") for suffix in ("", "-wal", "-shm")]
    async with httpx.AsyncClient(base_url=served.instance.url, timeout=20) as client:
        assert await chat_outcome(client, served.headers, "before") == "200"
        with unwritable(*files):
            await asyncio.to_thread(kill_writer, served)
            refused = await chat_outcome(client, served.headers, "while read-only")
            down = await client.get("/health")
        assert refused == "503 database_unavailable"
        assert down.status_code == 503
        assert down.json()["checks"]["database"]["status"] == "down"
        # Writable again: the next write starts a writer that can write.
        assert await until_answered(client, served) == (200, "200")
    assert "unhandled error" not in served.log.read_text()
