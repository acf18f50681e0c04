"""The JWT secret: generated once and kept in the database, or JWT_SECRET when set."""

from __future__ import annotations

from collections.abc import Callable

import jwt

from relay.config import Settings
from tests.conftest import Running, StartRelay

EXPLICIT_SECRET = "an-explicit-secret-that-is-long-enough-for-hs256-0123456789"
PROBE = "a-probe-value-long-enough-to-serve-as-an-hs256-secret"


async def status_with(relay: Running, token: str) -> int:
    response = await relay.client.get(
        "/admin/clients", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


async def test_tokens_survive_a_restart(
    make_settings: Callable[..., Settings], start_relay: StartRelay
) -> None:
    settings = make_settings()
    async with start_relay(settings) as first:
        _, api_key = await first.new_client("admin")
        token = await first.token_for(api_key)
        secret = first.relay.clients.tokens._secret
        assert len(secret) >= 32
        assert await status_with(first, token) == 200

    async with start_relay(settings) as second:
        assert second.relay.clients.tokens._secret == secret
        assert await status_with(second, token) == 200
        # The key still works and its new token is accepted by the next instance too.
        later = await second.token_for(api_key)

    async with start_relay(settings) as third:
        assert await status_with(third, token) == 200
        assert await status_with(third, later) == 200
        # The kept secret is the database's, not a new one written over it.
        kept = await third.relay.store.get_or_create_setting("jwt_secret", "replacement")
        assert kept == secret


async def test_instances_side_by_side_accept_each_others_tokens(
    make_settings: Callable[..., Settings], start_relay: StartRelay
) -> None:
    async with start_relay(make_settings()) as one, start_relay(make_settings()) as two:
        assert one.relay.clients.tokens._secret == two.relay.clients.tokens._secret
        _, key_one = await one.new_client("admin", name="one")
        _, key_two = await two.new_client("admin", name="two")
        token_one = await one.token_for(key_one)
        token_two = await two.token_for(key_two)
        for relay in (one, two):
            for token in (token_one, token_two):
                assert await status_with(relay, token) == 200
        # A key made on one instance trades for a token on the other.
        crossed = await two.token_for(key_one)
        assert await status_with(one, crossed) == 200


async def test_explicit_jwt_secret_is_used(
    make_settings: Callable[..., Settings], start_relay: StartRelay
) -> None:
    explicit = make_settings(jwt_secret=EXPLICIT_SECRET)
    async with start_relay(explicit) as relay:
        assert relay.relay.clients.tokens._secret == EXPLICIT_SECRET
        _, api_key = await relay.new_client("admin")
        token = await relay.token_for(api_key)
        claims = jwt.decode(token, EXPLICIT_SECRET, algorithms=["HS256"], audience="relay-api")
        assert claims["scope"] == "admin"
        assert await status_with(relay, token) == 200
        # Nothing was generated and kept when the secret is configured.
        probe = await relay.relay.store.get_or_create_setting("jwt_secret", PROBE)
        assert probe == PROBE

    # An instance on the same database with another secret refuses those tokens,
    # and the explicit instance refuses the other's.
    async with start_relay(make_settings()) as generated:
        assert generated.relay.clients.tokens._secret == PROBE
        assert await status_with(generated, token) == 401
        other = await generated.token_for(api_key)
    async with start_relay(explicit) as again:
        assert await status_with(again, token) == 200
        assert await status_with(again, other) == 401
