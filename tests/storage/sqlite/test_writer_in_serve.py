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

from tests.chat.test_idempotency_faults import post, retried_until_answered
from tests.support.files import unwritable
from tests.support.processes import (
    Instance,
    create_client,
    relay_env,
    relay_instances,
    sqlite_writer_pid,
)

HIGH = "1000000/minute"
LEASE = 1.0  # seconds an Idempotency-Key stays claimed by a request that died
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
            "IDEMPOTENCY_LEASE": str(LEASE),
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


async def user_messages(client: httpx.AsyncClient, headers: dict[str, str]) -> Counter[str]:
    """How many times each user message is stored, over the client's whole history."""
    counted: Counter[str] = Counter()
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, str | int] = {"limit": 200, **({"before": cursor} if cursor else {})}
        page = (await client.get("/v1/history", params=params, headers=headers)).json()
        counted.update(m["content"] for m in page["messages"] if m["role"] == "user")
        cursor = page["next_cursor"]
        if cursor is None:
            return counted
    pytest.fail("history did not end")


async def test_idempotent_chats_cut_by_a_dying_writer_get_the_stored_reply_or_a_fresh_one(
    served: Served,
) -> None:
    """A write may commit and its answer be lost with the writer: the retry must get
    the reply stored then, never a second one, nor `409` after the lease."""
    first: dict[str, tuple[str, httpx.Response]] = {}  # message: its key, its first answer
    stop = asyncio.Event()

    async def load(client: httpx.AsyncClient, worker: int) -> None:
        for index in range(100_000):
            if stop.is_set():
                return
            message, key = f"w{worker} m{index}", f"key-{worker}-{index}"
            first[message] = key, await post(client, served.headers, key, {"message": message})

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=served.instance.url, timeout=20, limits=limits) as client:
        workers = [asyncio.create_task(load(client, w)) for w in range(16)]
        for _ in range(8):
            await asyncio.sleep(0.25)
            await asyncio.to_thread(kill_writer, served)
        stop.set()
        await asyncio.gather(*workers)
        failed = [m for m, (_, answer) in first.items() if answer.status_code != 200]
        assert failed, "no kill landed on a chat"
        for message in failed:
            key, answer = first[message]
            assert answer.status_code == 503, answer.text
            retried = await retried_until_answered(
                client, served.headers, key, {"message": message}
            )
            first[message] = key, retried
        stored = await user_messages(client, served.headers)
        for message, (_, answer) in first.items():
            assert stored[message] == 1, message  # answered once, stored once
            reply = answer.json()
            params = {"conversation_id": reply["conversation_id"]}
            page = await client.get("/v1/history", params=params, headers=served.headers)
            assert [(m["id"], m["role"], m["status"]) for m in page.json()["messages"]] == [
                (reply["id"], "assistant", "complete"),
                (page.json()["messages"][1]["id"], "user", "complete"),
            ]
    assert "unhandled error" not in served.log.read_text()


async def test_a_writer_restarted_on_a_read_only_file_recovers_once_it_is_writable(
    served: Served,
) -> None:
    """Opened read-only, the writer stayed so after the files were writable again."""
    # Not the -shm: see tests/chat/test_idempotency_faults.sqlite_files.
    files = [Path(f"{served.database}{suffix}") for suffix in ("", "-wal")]
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
