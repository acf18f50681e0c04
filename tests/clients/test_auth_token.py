"""POST /auth/token: trading an API key for a JWT."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import bcrypt
import httpx
import jwt
import pytest

from relay.config import Settings
from relay.storage.records import rfc3339_or_none as timestamp
from tests.conftest import Running


def claims_of(relay: Running, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, relay.relay.clients.tokens._secret, algorithms=["HS256"], audience="relay-api"
    )
    return claims


def assert_invalid_api_key(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "access_token" not in response.text
    return body


async def test_good_key_gives_a_token(relay: Running, admin: dict[str, str]) -> None:
    client_id, api_key = await relay.new_client("chat", "history")
    assert (await relay.relay.store.get_client(client_id)).last_used_at is None  # type: ignore[union-attr]

    started = int(time.time())
    response = await relay.client.post("/auth/token", json={"api_key": api_key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scopes"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scopes"] == ["chat", "history"]

    claims = claims_of(relay, body["access_token"])
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    assert claims["sub"] == client_id
    assert claims["iss"] == "relay"
    assert claims["aud"] == "relay-api"
    assert claims["scope"] == "chat history"
    assert claims["gen"] == 1
    assert claims["exp"] - claims["iat"] == 3600
    assert started <= claims["iat"] <= int(time.time())
    assert claims["jti"]

    # last_used_at is set by each successful exchange.
    first = (await relay.relay.store.get_client(client_id)).last_used_at  # type: ignore[union-attr]
    assert isinstance(first, datetime)
    assert abs(first.timestamp() - time.time()) < 60
    second_token = await relay.token_for(api_key)
    second = (await relay.relay.store.get_client(client_id)).last_used_at  # type: ignore[union-attr]
    assert second is not None
    assert second > first
    assert claims_of(relay, second_token)["jti"] != claims["jti"]

    # The admin API shows it.
    shown = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert shown.json()["client"]["last_used_at"] == timestamp(second)
    assert shown.json()["client"]["last_used_at"].endswith("Z")


async def test_expires_in_follows_token_ttl_else_jwt_expiry(
    make_settings: Callable[..., Settings],
    start_relay: Callable[[Settings], AbstractAsyncContextManager[Running]],
) -> None:
    async with start_relay(make_settings(jwt_expiry=1234)) as relay:
        _, plain = await relay.new_client("chat")
        _, short = await relay.new_client("chat", token_ttl=77)
        for api_key, ttl in ((plain, 1234), (short, 77)):
            response = await relay.client.post("/auth/token", json={"api_key": api_key})
            assert response.json()["expires_in"] == ttl
            claims = claims_of(relay, response.json()["access_token"])
            assert claims["exp"] - claims["iat"] == ttl


async def test_every_failure_looks_and_costs_the_same(
    relay: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_id, good_key = await relay.new_client("chat")
    disabled_id, disabled_key = await relay.new_client("chat")
    deleted_id, deleted_key = await relay.new_client("chat")
    await relay.relay.clients.update(disabled_id, {"active": False})
    await relay.relay.clients.delete(deleted_id)

    prefix, secret = good_key.rsplit("_", 1)
    wrong_secret = f"{prefix}_{'A' * len(secret)}"
    unknown_prefix = f"rly_ffffffffff_{secret}"
    candidates = {
        "wrong secret": wrong_secret,
        "unknown prefix": unknown_prefix,
        "garbage": "not a key at all",
        "truncated": good_key[:-1],
        "with a space": good_key + " ",
        "disabled": disabled_key,
        "deleted": deleted_key,
    }

    checks: list[bytes] = []
    original = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(password)
        return original(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)

    bodies = []
    for name, api_key in candidates.items():
        checks.clear()
        response = await relay.client.post("/auth/token", json={"api_key": api_key})
        body = assert_invalid_api_key(response)
        assert "www-authenticate" not in response.headers, name
        # Every failure pays for exactly one bcrypt check, known prefix or not.
        assert len(checks) == 1, name
        body["error"].pop("request_id")
        bodies.append(body)
    assert all(body == bodies[0] for body in bodies), bodies
    assert bodies[0]["error"]["message"]

    # A failed exchange marks no client as used; the good key still works.
    for client_id in (good_id, disabled_id):
        assert (await relay.relay.store.get_client(client_id)).last_used_at is None  # type: ignore[union-attr]
    assert (await relay.client.post("/auth/token", json={"api_key": good_key})).status_code == 200


async def test_bad_request_bodies_are_422(relay: Running) -> None:
    _, api_key = await relay.new_client("chat")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"json": {}}, "api_key"),
        ({"json": {"api_key": 12345}}, "api_key"),
        ({"json": {"api_key": ""}}, "api_key"),
        ({"json": {"api_key": None}}, "api_key"),
        ({"json": {"api_key": "x" * 201}}, "api_key"),
        ({"json": {"api_key": api_key, "scope": "admin"}}, "scope"),
        ({"json": [api_key]}, "body"),
        ({"content": b'{"api_key": ', "headers": {"content-type": "application/json"}}, "body"),
        ({}, "body"),
    ]
    for request, field in cases:
        response = await relay.client.post("/auth/token", **request)
        assert response.status_code == 422, (request, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in [d["field"] for d in error["details"]], (request, error)
        assert api_key not in response.text
