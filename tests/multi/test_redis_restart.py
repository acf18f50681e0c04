"""Two Relay processes under a steady request loop while Redis dies and comes back.

Issue 16, item 14: each instance used to count from zero in memory once Redis
failed (on top of what Redis had counted: three times the limit in a window
across two instances), and after Redis restarted it failed on its stale pooled
connections one at a time, counting in memory for seconds after each, while
/health said ok. The bound documented in `relay.limits.policy.RateLimiter`:
the limit in any window while Redis answers, the limit per instance in a
window that holds a failure, the limit again in a window that starts once both
instances count in Redis; and they do so again soon after Redis is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Instance, create_client, relay_env, relay_instances
from tests.support.throwaway import RedisServer, throwaway_redis

LIMIT = 10
WINDOW = 3.0  # seconds, the period of the rate below
RATE = f"{LIMIT}/3 seconds"
INSTANCES = 2
LOOPS = 3  # per instance: requests at once keep several connections in its pool
PAUSE = 0.02  # between one loop's requests
HEALTHY, DOWN = 4.0, 3.0  # seconds before Redis is stopped, and stopped
RECOVERY_BOUND = 3.0  # from Redis's start until both instances say they count in it
AFTER = 2 * WINDOW  # load kept up once they do
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int


@dataclass
class Run:
    answers: list[Answer]
    stopped_at: float
    started_at: float
    recovered_at: float
    health_while_down: list[str]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with throwaway_redis() as server:
        yield server


def most_passed(answers: list[Answer], start: float, end: float) -> int:
    """The most 200s within any WINDOW-long span inside [start, end).

    An answer is in a span only if it was both sent and received in it: the
    instance counted it in between.
    """
    passed = sorted((a for a in answers if a.status == 200), key=lambda a: a.sent)
    most = 0
    for first in passed:
        if first.sent < start:
            continue
        span_end = min(first.sent + WINDOW, end)
        inside = [a for a in passed if a.sent >= first.sent and a.received < span_end]
        most = max(most, len(inside))
    return most


async def _loop(url: str, headers: dict[str, str], t0: float, stop: asyncio.Event) -> list[Answer]:
    answers: list[Answer] = []
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for _ in range(100_000):
            if stop.is_set():
                break
            sent = time.monotonic() - t0
            response = await client.get("/v1/tools", headers=headers)
            answers.append(Answer(sent, time.monotonic() - t0, response.status_code))
            await asyncio.sleep(PAUSE)
    return answers


async def _store_status(client: httpx.AsyncClient, instance: Instance) -> str:
    body = (await client.get(f"{instance.url}/health")).json()
    status: str = body["checks"]["rate_limit_store"]["status"]
    return status


async def _faults(instances: list[Instance], redis: RedisServer, t0: float) -> Run:
    """Stop Redis, sample /health while it is down, start it, wait for both to say ok."""
    statuses: list[str] = []
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
        await asyncio.sleep(HEALTHY)
        await asyncio.to_thread(redis.stop)
        stopped_at = time.monotonic() - t0
        while time.monotonic() - t0 < stopped_at + DOWN:
            statuses += [await _store_status(client, instance) for instance in instances]
            await asyncio.sleep(0.25)
        await asyncio.to_thread(redis.start)
        started_at = time.monotonic() - t0
        while time.monotonic() - t0 < started_at + RECOVERY_BOUND:
            answers = [await _store_status(client, instance) for instance in instances]
            if answers == ["ok"] * INSTANCES:
                break
            await asyncio.sleep(0.05)
        recovered_at = time.monotonic() - t0
        await asyncio.sleep(AFTER)
    return Run([], stopped_at, started_at, recovered_at, statuses)


async def _steady_load(instances: list[Instance], token: str, redis: RedisServer) -> Run:
    headers = {"Authorization": f"Bearer {token}"}
    t0, stop = time.monotonic(), asyncio.Event()
    loops = [
        asyncio.create_task(_loop(instance.url, headers, t0, stop))
        for instance in instances
        for _ in range(LOOPS)
    ]
    try:
        run = await _faults(instances, redis, t0)
    finally:
        stop.set()
        results = await asyncio.gather(*loops)
    run.answers = [answer for answers in results for answer in answers]
    return run


def test_limits_hold_while_redis_dies_and_comes_back(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = relay_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/relay.db",
            "REDIS_URL": redis_server.url,
            "RATE_LIMIT_DEFAULT": RATE,
        }
    )
    _, api_key = create_client(env, "steady", "tools")
    with relay_instances(env, INSTANCES) as instances:
        answer = httpx.post(f"{instances[0].url}/auth/token", json={"api_key": api_key}, timeout=10)
        assert answer.status_code == 200, answer.text
        run = asyncio.run(_steady_load(instances, answer.json()["access_token"], redis_server))

    statuses = {a.status for a in run.answers}
    assert statuses <= {200, 429}, statuses  # never an error because Redis failed
    end = max(a.received for a in run.answers)
    down = [a for a in run.answers if run.stopped_at < a.sent and a.received < run.started_at]
    assert any(a.status == 200 for a in down)  # served, limited per instance, while down
    assert run.health_while_down and set(run.health_while_down) == {"down"}

    # Back in Redis soon after it is, both instances (not the stale connections' 20-34 s).
    assert run.recovered_at - run.started_at < RECOVERY_BOUND
    # Shared while Redis answers, per instance around the failure, shared once back;
    # and the load went past the limit before (else these bounds would prove nothing).
    before = most_passed(run.answers, 0.0, run.stopped_at)
    anywhere = most_passed(run.answers, 0.0, end + 1)
    once_back = most_passed(run.answers, run.recovered_at, end + 1)
    assert before == LIMIT
    assert anywhere <= INSTANCES * LIMIT
    assert once_back <= LIMIT
    after = [a for a in run.answers if a.sent >= run.recovered_at]
    assert sum(a.status == 200 for a in after) >= LIMIT
    assert any(a.status == 429 for a in after)
