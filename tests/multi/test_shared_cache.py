"""Two instances on one database: a change made through one is enforced by the other at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from relay.config import Settings
from tests.conftest import running
from tests.support import services

REVOCATION_DEADLINE = 1.0


async def _refused_within(check: Callable[[], Awaitable[httpx.Response]], deadline: float) -> float:
    """Seconds until `check()` answers 401, polling; fails past the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        response = await check()
        if response.status_code == 401:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    pytest.fail(f"still accepted after {deadline} s")


@pytest.mark.parametrize("change", ["disable", "regenerate", "delete"])
async def test_change_on_one_instance_is_enforced_by_the_other(
    make_settings: Callable[..., Settings], database_url: str, change: str
) -> None:
    overrides: dict[str, object] = {
        "client_cache_ttl": 300.0
    }  # far beyond the deadline: only the feed can help
    if database_url.startswith("sqlite"):
        services.require_redis()
        overrides["redis_url"] = services.REDIS_URL
    settings = make_settings(**overrides)
    async with running(settings) as first, running(settings) as second:
        admin = await first.bearer("admin")
        client_id, api_key = await first.new_client("tools")
        token = {"Authorization": f"Bearer {await second.token_for(api_key)}"}
        assert (await second.client.get("/v1/tools", headers=token)).status_code == 200

        path = f"/admin/clients/{client_id}"
        if change == "disable":
            done = await first.client.patch(path, json={"active": False}, headers=admin)
        elif change == "regenerate":
            done = await first.client.post(f"{path}/regenerate-key", headers=admin)
        else:
            done = await first.client.delete(path, headers=admin)
        assert done.status_code in (200, 204)

        elapsed = await _refused_within(
            lambda: second.client.get("/v1/tools", headers=token), REVOCATION_DEADLINE
        )
        assert elapsed < REVOCATION_DEADLINE
