"""Per-client rate limits, in memory and on a real Redis, through the HTTP API.

The limiter keys its counters by client id, and every test makes its own
clients, so tests sharing the real Redis never share a count. Tests that only
exercise the limiter (and wait on the clock) run on a private SQLite file
rather than on both stores: the database plays no part in them.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.config import Settings
from relay.limits import policy
from tests.conftest import MakeSettings, Running, StartRelay
from tests.support import services
from tests.support.throwaway import throwaway_redis


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'relay.db'}",
        "bcrypt_rounds": 4,
        "jwt_secret": None,
        "relay_backend": "echo",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def bearer_for(
    relay: Running, *scopes: str, **rate_limits: str
) -> tuple[str, dict[str, str]]:
    client_id, api_key = await relay.new_client(*scopes, rate_limits=rate_limits)
    return client_id, {"Authorization": f"Bearer {await relay.token_for(api_key)}"}


def limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the X-RateLimit-* headers, which must all be there."""
    headers = response.headers
    return (
        int(headers["x-ratelimit-limit"]),
        int(headers["x-ratelimit-remaining"]),
        int(headers["x-ratelimit-reset"]),
    )


def assert_allowed(response: httpx.Response, *, limit: int, remaining: int, window: int) -> None:
    assert response.status_code == 200, response.text
    got_limit, got_remaining, reset = limit_headers(response)
    assert (got_limit, got_remaining) == (limit, remaining)
    assert 1 <= reset <= window


def assert_refused(response: httpx.Response, *, limit: int, window: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    got_limit, remaining, reset = limit_headers(response)
    assert (got_limit, remaining) == (limit, 0)
    assert 1 <= reset <= window
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert retry_after >= reset


async def chat(relay: Running, headers: dict[str, str]) -> httpx.Response:
    return await relay.client.post("/v1/chat", json={"message": "hello"}, headers=headers)


# --- the limit, its headers and its refusal --------------------------------------------------


async def test_exactly_the_limit_passes_then_429_with_headers(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    async with start_relay(make_settings(redis_url=redis_url)) as relay:
        _, headers = await bearer_for(relay, "tools", default="3/minute")
        for remaining in (2, 1, 0):
            response = await relay.client.get("/v1/tools", headers=headers)
            assert_allowed(response, limit=3, remaining=remaining, window=60)
        for _ in range(2):  # refused requests are refused again, and not counted
            assert_refused(await relay.client.get("/v1/tools", headers=headers), limit=3, window=60)

        # Another client has its own count; a refusal for scope (403) carries the headers too.
        _, other = await bearer_for(relay, "history", default="3/minute")
        response = await relay.client.get("/v1/tools", headers=other)
        assert response.status_code == 403
        limit, remaining, reset = limit_headers(response)
        assert (limit, remaining) == (3, 2)
        assert 1 <= reset <= 60


async def test_chat_limit_applies_on_top_of_the_general_one(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_chat="2/minute")
    async with start_relay(settings) as relay:
        # The chat limit (2, from RATE_LIMIT_CHAT) is the tighter one on /v1/chat.
        _, headers = await bearer_for(relay, "chat", "tools", default="5/minute")
        for remaining in (1, 0):
            assert_allowed(await chat(relay, headers), limit=2, remaining=remaining, window=60)
        refused = await chat(relay, headers)
        assert_refused(refused, limit=2, window=60)
        assert "chat" in refused.json()["error"]["message"]
        # ... and only on /v1/chat: the general limit still lets other endpoints through,
        # and the refused chat did not count against it (5 - 2 chats - this request).
        response = await relay.client.get("/v1/tools", headers=headers)
        assert_allowed(response, limit=5, remaining=2, window=60)

        # The general limit applies to /v1/chat too, when it is the tighter one.
        _, tight = await bearer_for(relay, "chat", "tools", default="1/minute")
        assert_allowed(await chat(relay, tight), limit=1, remaining=0, window=60)
        assert_refused(await chat(relay, tight), limit=1, window=60)
        assert_refused(await relay.client.get("/v1/tools", headers=tight), limit=1, window=60)

        # A client's own chat limit overrides RATE_LIMIT_CHAT.
        _, own = await bearer_for(relay, "chat", chat="3/minute")
        for remaining in (2, 1, 0):
            assert_allowed(await chat(relay, own), limit=3, remaining=remaining, window=60)
        assert_refused(await chat(relay, own), limit=3, window=60)


async def test_a_chat_refused_before_the_backend_does_not_spend_the_chat_limit(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_chat="2/minute")
    async with start_relay(settings) as relay:
        _, headers = await bearer_for(relay, "chat", default="20/minute")
        unknown = {"message": "hello", "conversation_id": "conv_nosuchthing"}
        refused_early = [
            await relay.client.post("/v1/chat", json=unknown, headers=headers),
            await relay.client.post("/v1/chat", json={"message": ""}, headers=headers),
            await relay.client.post("/v1/chat", json={"message": "x" * 40_000}, headers=headers),
        ]
        assert [r.status_code for r in refused_early] == [404, 422, 422]
        # None reached the backend, so both chats of the limit are still there...
        for remaining in (1, 0):
            assert_allowed(await chat(relay, headers), limit=2, remaining=remaining, window=60)
        assert_refused(await chat(relay, headers), limit=2, window=60)
        # ... while the general limit counted every request the chat limit did not
        # refuse: the 3 refused early, the 2 chats, and this one.
        response = await relay.client.get("/v1/history", headers=headers)
        assert response.status_code == 403  # no history scope: counted all the same
        assert limit_headers(response)[:2] == (20, 14)


async def test_per_client_override_takes_effect_at_once_after_patch(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    async with start_relay(make_settings(redis_url=redis_url)) as relay:
        admin = await relay.bearer("admin")
        client_id, headers = await bearer_for(relay, "tools", default="2/minute")

        async def patch(rate: str) -> None:
            body = {"rate_limits": {"default": rate}}
            response = await relay.client.patch(
                f"/admin/clients/{client_id}", json=body, headers=admin
            )
            assert response.status_code == 200, response.text
            assert response.json()["client"]["rate_limits"]["default"] == rate

        for remaining in (1, 0):
            response = await relay.client.get("/v1/tools", headers=headers)
            assert_allowed(response, limit=2, remaining=remaining, window=60)
        assert_refused(await relay.client.get("/v1/tools", headers=headers), limit=2, window=60)

        # Raised: the very next request passes under the new limit.
        await patch("6/minute")
        response = await relay.client.get("/v1/tools", headers=headers)
        assert response.status_code == 200, response.text
        assert limit_headers(response)[0] == 6

        # Lowered: the new limit is the one shown and enforced, at once.
        await patch("1/hour")
        statuses = []
        for _ in range(3):
            response = await relay.client.get("/v1/tools", headers=headers)
            assert limit_headers(response)[0] == 1
            statuses.append(response.status_code)
        assert statuses[-1] == 429
        assert statuses.count(200) <= 1
        assert int(response.headers["retry-after"]) > 60  # the hour window, not the minute


async def test_a_change_of_rate_keeps_the_count(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    """Issue 16, item 8: the count belongs to the client and the limit kind, not to the rate.

    Keyed by rate (as `limits`' own keys are), each PATCH started a fresh window.
    """
    async with start_relay(make_settings(redis_url=redis_url)) as relay:
        admin = await relay.bearer("admin")
        client_id, headers = await bearer_for(relay, "chat", default="1000/minute", chat="5/minute")

        async def set_chat_rate(rate: str) -> None:
            body = {"rate_limits": {"chat": rate}}
            response = await relay.client.patch(
                f"/admin/clients/{client_id}", json=body, headers=admin
            )
            assert response.status_code == 200, response.text
            assert response.json()["client"]["rate_limits"]["chat"] == rate

        for remaining in (4, 3, 2, 1, 0):
            assert_allowed(await chat(relay, headers), limit=5, remaining=remaining, window=60)

        # Tightened below what is used: refused (the headers show the new rate in force).
        await set_chat_rate("4/minute")
        assert_refused(await chat(relay, headers), limit=4, window=60)

        # Loosened: the 5 used still count, so 5 more, then refused.
        await set_chat_rate("10/minute")
        for remaining in (4, 3, 2, 1, 0):
            assert_allowed(await chat(relay, headers), limit=10, remaining=remaining, window=60)
        assert_refused(await chat(relay, headers), limit=10, window=60)

        # A longer period counts the hits still held: 10 in the last minute, of 10 an hour.
        await set_chat_rate("10/hour")
        refused = await chat(relay, headers)
        assert_refused(refused, limit=10, window=3600)
        assert int(refused.headers["retry-after"]) > 60  # the hour window, not the minute


async def test_admin_endpoints_count_against_the_admins_own_limit(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    async with start_relay(make_settings(redis_url=redis_url)) as relay:
        _, admin = await bearer_for(relay, "admin", default="3/minute")
        target_id, target = await bearer_for(relay, "tools", default="2/minute")
        path = f"/admin/clients/{target_id}"
        for remaining in (2, 1, 0):
            response = await relay.client.get(path, headers=admin)
            assert_allowed(response, limit=3, remaining=remaining, window=60)
        assert_refused(await relay.client.get("/admin/clients", headers=admin), limit=3, window=60)
        refused = await relay.client.post("/admin/clients", json={"name": "x"}, headers=admin)
        assert_refused(refused, limit=3, window=60)

        # The admin's requests about a client never spend that client's own allowance.
        for remaining in (1, 0):
            response = await relay.client.get("/v1/tools", headers=target)
            assert_allowed(response, limit=2, remaining=remaining, window=60)


# --- shared by instances ----------------------------------------------------------------------


async def test_two_instances_share_one_count_through_redis(
    make_settings: MakeSettings, start_relay: StartRelay
) -> None:
    services.require_redis()
    settings = make_settings(redis_url=services.REDIS_URL)
    async with start_relay(settings) as first, start_relay(settings) as second:
        _, headers = await bearer_for(first, "tools", default="3/minute")
        for instance, remaining in ((first, 2), (second, 1), (first, 0)):
            response = await instance.client.get("/v1/tools", headers=headers)
            assert_allowed(response, limit=3, remaining=remaining, window=60)
        for instance in (second, first):
            response = await instance.client.get("/v1/tools", headers=headers)
            assert_refused(response, limit=3, window=60)


# --- the moving window ------------------------------------------------------------------------


async def test_burst_across_a_fixed_window_edge_is_refused(
    tmp_path: Path, start_relay: StartRelay, redis_url: str | None
) -> None:
    """Never more than the limit within any window, even across a fixed window's edge.

    Limit 3 per 2 s. A first request just after a clock edge E (where a clock-aligned
    fixed window starts, and where a fixed window started by the first hit starts
    too), two more at the end of that window, E+1.75 s. Just after E+2.1 s every
    fixed window has started afresh and would allow 3 more; a moving window has
    let the first request go but still holds the two late ones: one more passes,
    the next is refused (4 requests within 0.4 s would be a 4-in-2-s burst).
    """
    window = 2.0
    async with start_relay(sqlite_settings(tmp_path, redis_url=redis_url)) as relay:
        _, headers = await bearer_for(relay, "tools", default="3/2 seconds")

        async def tools() -> httpx.Response:
            return await relay.client.get("/v1/tools", headers=headers)

        async def sleep_until(moment: float) -> None:
            await asyncio.sleep(max(0.0, moment - time.time()))

        # Align to just after a clock edge (at most one window's wait).
        edge = math.ceil(time.time() / window) * window
        await sleep_until(edge + 0.02)
        assert_allowed(await tools(), limit=3, remaining=2, window=2)
        first_done = time.time()

        await sleep_until(edge + 1.75)
        assert_allowed(await tools(), limit=3, remaining=1, window=2)
        assert_allowed(await tools(), limit=3, remaining=0, window=2)
        late_sent = time.time()

        # Past every fixed window's edge, and the first request has left the moving window.
        await sleep_until(max(edge + 2.1, first_done + window + 0.05))
        assert_allowed(await tools(), limit=3, remaining=0, window=2)
        refused = await tools()
        assert time.time() - late_sent < window  # the two late ones are still in the window
        assert_refused(refused, limit=3, window=2)


# --- Redis failing ----------------------------------------------------------------------------


async def test_redis_down_keeps_serving_limited_per_instance(
    tmp_path: Path, start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Redis fails each instance limits on its own, from its own share of the count.

    Issue 16, item 14: the count in memory used to start from zero, so a client
    got its whole limit again on every instance, on top of what Redis had counted.
    """
    monkeypatch.setattr(policy, "REDIS_RETRY_SECONDS", 0.3)
    with throwaway_redis() as redis:
        settings = sqlite_settings(tmp_path, redis_url=redis.url)
        async with start_relay(settings) as first, start_relay(settings) as second:
            _, headers = await bearer_for(first, "tools", "chat", default="3/minute")
            health = (await first.client.get("/health")).json()
            assert health["checks"]["rate_limit_store"]["status"] == "ok"
            for instance, remaining in ((first, 2), (second, 1)):
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_allowed(response, limit=3, remaining=remaining, window=60)

            redis.stop()

            # Each instance goes on from the one request it let through: two more each.
            for instance in (first, second):
                response = await chat(instance, headers)
                assert_allowed(response, limit=3, remaining=1, window=60)
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_allowed(response, limit=3, remaining=0, window=60)
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_refused(response, limit=3, window=60)

            for instance in (first, second):
                response = await instance.client.get("/health")
                assert response.status_code == 200
                body = response.json()
                assert body["status"] == "degraded"
                assert body["checks"]["rate_limit_store"]["status"] == "down"
                assert body["checks"]["database"]["status"] == "ok"

            # Back up, empty (as after a crash): shared again after the retry pause...
            redis.start()
            await asyncio.sleep(0.4)
            for instance in (first, second):
                response = await instance.client.get("/health")
                assert response.json()["status"] == "ok", response.text
            # ... and what each instance counted meanwhile is not forgotten.
            for instance in (first, second):
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_refused(response, limit=3, window=60)
            _, fresh = await bearer_for(first, "tools", default="3/minute")
            for instance, remaining in ((first, 2), (second, 1), (first, 0)):
                response = await instance.client.get("/v1/tools", headers=fresh)
                assert_allowed(response, limit=3, remaining=remaining, window=60)
            assert_refused(await second.client.get("/v1/tools", headers=fresh), limit=3, window=60)


async def test_a_redis_restart_costs_no_request(tmp_path: Path, start_relay: StartRelay) -> None:
    """Connections pooled before Redis restarted are replaced, not failed on one by one.

    Issue 16, item 14: each stale connection failed one request and sent its
    instance to counting in memory for a while, so instances kept limiting on
    their own long after Redis was back.
    """
    with throwaway_redis() as redis:
        settings = sqlite_settings(tmp_path, redis_url=redis.url)
        async with start_relay(settings) as first, start_relay(settings) as second:
            _, busy = await bearer_for(first, "tools", default="1000/minute")
            for instance in (first, second):  # requests at once: several pooled connections
                answers = await asyncio.gather(
                    *(instance.client.get("/v1/tools", headers=busy) for _ in range(8))
                )
                assert [a.status_code for a in answers] == [200] * 8

            redis.stop()
            redis.start()

            # Counted in Redis from the first request on: one count across both instances.
            _, headers = await bearer_for(first, "tools", default="4/minute")
            for instance, remaining in ((first, 3), (second, 2), (first, 1), (second, 0)):
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_allowed(response, limit=4, remaining=remaining, window=60)
            for instance in (first, second):
                response = await instance.client.get("/v1/tools", headers=headers)
                assert_refused(response, limit=4, window=60)
                health = (await instance.client.get("/health")).json()
                assert health["checks"]["rate_limit_store"]["status"] == "ok"
