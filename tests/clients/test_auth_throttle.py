"""Guessing API keys at /auth/token is throttled per source address, memory and Redis.

Each test speaks from its own made-up address (the ASGI transport's client
host), so tests sharing the real Redis never share a count, and a second
address shows the limit is per address.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.conftest import MakeSettings, Running, StartRelay


def random_address() -> str:
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


@asynccontextmanager
async def from_address(relay: Running, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=relay.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
        yield client


async def exchange(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    return await client.post("/auth/token", json={"api_key": api_key})


def wrong_key(api_key: str) -> str:
    """The right prefix with another secret: the strongest kind of guess."""
    prefix, _, _ = api_key.rpartition("_")
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_api_key"


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "access_token" not in response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_failed_exchanges_past_the_limit_block_every_exchange(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_auth_failures="3/minute")
    async with start_relay(settings) as relay:
        _, api_key = await relay.new_client()
        guesses = [wrong_key(api_key), "rly_0000000000_" + "x" * 43, "not-a-key"]
        async with from_address(relay, random_address()) as attacker:
            for guess in guesses:
                assert_invalid(await exchange(attacker, guess))
            # Past the limit even the right key is refused, as is any further guess.
            assert_throttled(await exchange(attacker, api_key))
            assert_throttled(await exchange(attacker, wrong_key(api_key)))
            assert_throttled(await exchange(attacker, api_key))

        # Another address is not affected.
        async with from_address(relay, random_address()) as honest:
            response = await exchange(honest, api_key)
            assert response.status_code == 200, response.text
            assert response.json()["access_token"]


async def test_successful_exchanges_do_not_count(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_auth_failures="3/minute")
    async with start_relay(settings) as relay:
        _, api_key = await relay.new_client()
        async with from_address(relay, random_address()) as client:
            # A 422 (no key to check) is not a guess either.
            for body in ({}, {"api_key": ""}, {"key": api_key}):
                response = await client.post("/auth/token", json=body)
                assert response.status_code == 422, response.text
            for _ in range(8):
                response = await exchange(client, api_key)
                assert response.status_code == 200, response.text
            # Two failures, many successes, one more failure: three failures, no more.
            assert_invalid(await exchange(client, wrong_key(api_key)))
            assert_invalid(await exchange(client, wrong_key(api_key)))
            for _ in range(5):
                assert (await exchange(client, api_key)).status_code == 200
            assert_invalid(await exchange(client, wrong_key(api_key)))
            assert_throttled(await exchange(client, api_key))
