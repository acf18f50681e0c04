"""bcrypt runs off the event loop: other requests are answered while a key is checked."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from functools import cache

import bcrypt
import pytest

from relay.clients import keys
from relay.config import Settings
from relay.storage.records import ClientRecord, utc_now
from tests.conftest import Running, StartRelay

ROUNDS = 12
API_KEY = "rly_0123456789_" + "k" * 43
PREFIX = "rly_0123456789"


@cache
def slow_hash() -> str:
    """A cost-12 hash of API_KEY, made once for the module (about 0.7 s here)."""
    return bcrypt.hashpw(API_KEY.encode(), bcrypt.gensalt(ROUNDS)).decode()


async def add_client(relay: Running) -> None:
    now = utc_now()
    await relay.relay.store.create_client(
        ClientRecord(
            id="cl_event_loop",
            name="slow",
            scopes=("chat",),
            active=True,
            rate_limits={},
            token_ttl=None,
            metadata={},
            key_prefix=PREFIX,
            key_hash=slow_hash(),
            key_generation=1,
            created_at=now,
            updated_at=now,
        )
    )


async def test_health_is_answered_while_a_token_exchange_hashes(
    make_settings: Callable[..., Settings],
    start_relay: StartRelay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert keys.prefix_of(API_KEY) == PREFIX
    events: list[str] = []
    check_started = threading.Event()
    loop_thread = threading.get_ident()
    original = bcrypt.checkpw

    def observed_checkpw(password: bytes, hashed: bytes) -> bool:
        events.append("bcrypt started")
        assert threading.get_ident() != loop_thread, "bcrypt ran on the event loop's thread"
        check_started.set()
        try:
            return original(password, hashed)
        finally:
            events.append("bcrypt finished")

    async with start_relay(make_settings(bcrypt_rounds=ROUNDS)) as relay:
        await add_client(relay)
        monkeypatch.setattr(bcrypt, "checkpw", observed_checkpw)

        exchange = asyncio.create_task(relay.client.post("/auth/token", json={"api_key": API_KEY}))
        for _ in range(2000):  # at most ~2 s for the exchange to reach bcrypt
            if check_started.is_set():
                break
            await asyncio.sleep(0.001)
        assert check_started.is_set()

        for _ in range(3):
            health = await relay.client.get("/health")
            assert health.status_code == 200
            events.append("health answered")
        assert not exchange.done()
        response = await exchange
        events.append("exchange answered")

    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == ["chat"]
    assert events == [
        "bcrypt started",
        "health answered",
        "health answered",
        "health answered",
        "bcrypt finished",
        "exchange answered",
    ]


def test_bcrypt_slots_bound_the_work_in_any_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several loops in one process (CLI runs, tests) each get a working bound."""
    running = 0
    peak = 0
    lock = threading.Lock()
    original = bcrypt.hashpw

    def counted_hashpw(password: bytes, salt: bytes) -> bytes:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return original(password, salt)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(bcrypt, "hashpw", counted_hashpw)

    async def burst() -> list[str]:
        work = (keys.hash_key(f"key-{i}", 4) for i in range(keys.BCRYPT_SLOTS * 2 + 1))
        return await asyncio.gather(*work)

    for _ in range(3):
        hashes = asyncio.run(burst())
        assert len(set(hashes)) == keys.BCRYPT_SLOTS * 2 + 1
    assert 1 <= peak <= keys.BCRYPT_SLOTS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_bcrypt_runs_at_a_lower_cpu_priority_than_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a contended core the loop wins: token exchanges slow down before requests do."""
    seen: list[int] = []
    original = bcrypt.hashpw

    def observed_hashpw(password: bytes, salt: bytes) -> bytes:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return original(password, salt)

    monkeypatch.setattr(bcrypt, "hashpw", observed_hashpw)
    asyncio.run(keys.hash_key("some-key", 4))
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, loop_niceness + keys.BCRYPT_NICENESS)]
