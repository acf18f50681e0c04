"""Guessing API keys at /auth/token is throttled per source address, memory and Redis.

Each test speaks from its own made-up address (the ASGI transport's client
host), so tests sharing the real Redis never share a count, and a second
address shows the limit is per address.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from relay.clients import keys
from tests.conftest import MakeSettings, Running, StartRelay

FLOOD = 40  # concurrent guesses from one address
LIMIT = 10  # failed exchanges per address and minute


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


async def test_concurrent_guesses_cannot_race_past_the_limit(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_auth_failures=f"{LIMIT}/minute")
    async with start_relay(settings) as relay:
        _, api_key = await relay.new_client()
        async with from_address(relay, random_address()) as attacker:
            flood = [exchange(attacker, wrong_key(api_key)) for _ in range(FLOOD)]
            answers = await asyncio.gather(*flood)
            statuses = sorted(response.status_code for response in answers)
            # Each guess counts from the moment it is admitted, not once its hash is done.
            assert statuses == [401] * LIMIT + [429] * (FLOOD - LIMIT)
            for response in answers:
                (assert_invalid if response.status_code == 401 else assert_throttled)(response)
            assert_throttled(await exchange(attacker, api_key))


async def watch_pool(peak: list[int], stop: asyncio.Event) -> None:
    """Keep in peak[0] the most key checks the hashing threads held at once, every loop turn."""
    while not stop.is_set():
        peak[0] = max(peak[0], keys.checks_in_pool())
        await asyncio.sleep(0)


async def test_a_flood_from_one_address_does_not_starve_another(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    # Hashes slow enough that an exchange answered after the flood's had waited for them.
    settings = make_settings(
        redis_url=redis_url, rate_limit_auth_failures=f"{LIMIT}/minute", bcrypt_rounds=10
    )
    async with start_relay(settings) as relay:
        _, api_key = await relay.new_client()
        finished: list[str] = []

        async def send(client: httpx.AsyncClient, key: str, who: str) -> None:
            response = await exchange(client, key)
            finished.append(f"{who} {response.status_code}")

        peak, stop = [0], asyncio.Event()
        watcher = asyncio.create_task(watch_pool(peak, stop))
        async with (
            from_address(relay, random_address()) as attacker,
            from_address(relay, random_address()) as honest,
        ):
            flood = [
                asyncio.create_task(send(attacker, wrong_key(api_key), "flood"))
                for _ in range(FLOOD)
            ]
            for _ in range(10_000):  # until the flood's first checks are in the threads
                if keys.checks_in_pool():
                    break
                await asyncio.sleep(0)
            await asyncio.gather(*flood, send(honest, api_key, "honest"))
        stop.set()
        await watcher

    # The flood never had more than its share in the hashing threads, so the honest
    # check was queued behind at most that many of its checks, not behind all of them.
    assert peak[0] <= keys.CHECKS_PER_SOURCE + 1
    assert "honest 200" in finished
    flood_before = finished[: finished.index("honest 200")].count("flood 401")
    assert flood_before < LIMIT, finished
    assert finished.count("flood 401") == LIMIT


async def test_a_successful_exchange_gives_its_place_back(
    make_settings: MakeSettings, start_relay: StartRelay, redis_url: str | None
) -> None:
    # Hashes slow enough that three exchanges sent together are all still running.
    settings = make_settings(
        redis_url=redis_url, rate_limit_auth_failures="3/minute", bcrypt_rounds=8
    )
    async with start_relay(settings) as relay:
        _, api_key = await relay.new_client()
        async with from_address(relay, random_address()) as client:
            # Three at once fill the limit while they run; each success then frees its place.
            for _ in range(3):
                answers = await asyncio.gather(*(exchange(client, api_key) for _ in range(3)))
                assert [r.status_code for r in answers] == [200, 200, 200]
            # A fourth at once would have been one too many while the three ran.
            answers = await asyncio.gather(*(exchange(client, api_key) for _ in range(4)))
            assert sorted(r.status_code for r in answers) == [200, 200, 200, 429]
            # Nothing of all that was a failure: three guesses still get their 401.
            for _ in range(3):
                assert_invalid(await exchange(client, wrong_key(api_key)))
            assert_throttled(await exchange(client, api_key))
