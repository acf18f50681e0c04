"""Several real Relay processes on one PostgreSQL and one Redis behave as one gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.support import services
from tests.support.processes import Instance, create_client, relay_env, relay_instances

LIMIT = 10


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A fresh, unmigrated database: the instances race to migrate it."""
    services.require_postgres()
    with services.temporary_database("relay_multi") as url:
        yield url


@pytest.fixture(scope="module")
def gateway(empty_database: str) -> Iterator[tuple[list[Instance], dict[str, str]]]:
    services.require_redis()
    env = relay_env({"DATABASE_URL": empty_database, "REDIS_URL": services.REDIS_URL})
    with relay_instances(env, 2) as instances:
        yield instances, env


def _token(instance: Instance, api_key: str) -> dict[str, str]:
    answer = httpx.post(f"{instance.url}/auth/token", json={"api_key": api_key}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_instances_started_together_migrate_once(
    gateway: tuple[list[Instance], dict[str, str]], empty_database: str
) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close()
    assert versions == sorted(set(versions)) and versions


def test_token_from_one_instance_works_on_the_other(
    gateway: tuple[list[Instance], dict[str, str]],
) -> None:
    (first, second), env = gateway
    _, api_key = create_client(env, "multi", "tools")
    headers = _token(first, api_key)
    assert httpx.get(f"{second.url}/v1/tools", headers=headers).status_code == 200


def test_disable_through_one_instance_is_enforced_by_all_within_a_second(
    gateway: tuple[list[Instance], dict[str, str]],
) -> None:
    (first, second), env = gateway
    client_id, api_key = create_client(env, "multi", "tools")
    _, admin_key = create_client(env, "multi", "admin")
    headers = _token(second, api_key)
    assert httpx.get(f"{second.url}/v1/tools", headers=headers).status_code == 200

    admin = _token(first, admin_key)
    changed = httpx.patch(
        f"{first.url}/admin/clients/{client_id}", json={"active": False}, headers=admin
    )
    assert changed.status_code == 200
    started = time.monotonic()
    while httpx.get(f"{second.url}/v1/tools", headers=headers).status_code != 401:
        assert time.monotonic() - started < 1.0, "the other instance still accepts the token"
        time.sleep(0.01)
    latency = time.monotonic() - started
    print(f"revocation seen by the other instance after {latency * 1000:.0f} ms")
    assert latency < 1.0


def test_a_client_spread_over_instances_gets_exactly_its_limit(
    gateway: tuple[list[Instance], dict[str, str]],
) -> None:
    (first, second), env = gateway
    client_id, api_key = create_client(env, "multi", "tools")
    _, admin_key = create_client(env, "multi", "admin")
    admin = _token(first, admin_key)
    limits = {"rate_limits": {"default": f"{LIMIT}/minute"}}
    assert httpx.patch(
        f"{first.url}/admin/clients/{client_id}", json=limits, headers=admin
    ).is_success
    headers = _token(first, api_key)
    statuses = [
        httpx.get(f"{instance.url}/v1/tools", headers=headers).status_code
        for _ in range(LIMIT)
        for instance in (first, second)
    ]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == LIMIT
