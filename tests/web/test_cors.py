"""CORS: browser apps on the origins of CORS_ORIGINS may call Relay; no others, none by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from relay.config import Settings, describe_error
from tests.conftest import Running, StartRelay

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'relay.db'}",
        bcrypt_rounds=4,
        **overrides,
    )


@pytest.fixture
async def app(tmp_path: Path, start_relay: StartRelay) -> AsyncIterator[Running]:
    origins = f"{APP}, http://localhost:5173"
    async with start_relay(settings(tmp_path, cors_origins=origins)) as running:
        yield running


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return asked


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/chat", "POST"),
        ("/v1/tools", "GET"),
        ("/v1/history/search", "GET"),
        ("/admin/clients/cl_1", "PATCH"),
        ("/admin/clients/cl_1", "DELETE"),
    ],
)
async def test_a_preflight_from_an_allowed_origin_is_answered(
    app: Running, path: str, method: str
) -> None:
    asked = "authorization, content-type, idempotency-key, x-request-id"
    response = await app.client.options(path, headers=preflight(APP, method, asked))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert method in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed
    assert "access-control-allow-credentials" not in response.headers  # bearer tokens, no cookies
    assert int(response.headers["access-control-max-age"]) > 0
    assert response.headers["x-request-id"]


async def test_a_preflight_from_another_origin_is_refused(app: Running) -> None:
    response = await app.client.options(
        "/v1/chat", headers={**preflight(OTHER, "POST", "authorization"), "X-Request-ID": "cors-1"}
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    error = response.json()["error"]  # the one error shape, even here
    assert error == {
        "code": "cors_refused",
        "message": "Disallowed CORS origin.",
        "request_id": "cors-1",
    }
    # An allowed origin asking for a header Relay does not take is refused too.
    odd = await app.client.options("/v1/chat", headers=preflight(APP, "POST", "x-secret"))
    assert odd.status_code == 400
    assert odd.json()["error"]["message"] == "Disallowed CORS headers."


async def test_answers_to_an_allowed_origin_expose_relay_headers(app: Running) -> None:
    headers = {**(await app.bearer("tools")), "Origin": APP}
    response = await app.client.get("/v1/tools", headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        *("x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
        *("retry-after", "server-timing"),
    } <= exposed
    # Errors carry them too, so a browser app can read why it failed.
    refused = await app.client.get("/v1/tools", headers={"Origin": APP})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP
    stranger = await app.client.get("/v1/tools", headers={**headers, "Origin": OTHER})
    assert "access-control-allow-origin" not in stranger.headers


async def test_no_origin_is_allowed_by_default(tmp_path: Path, start_relay: StartRelay) -> None:
    async with start_relay(settings(tmp_path)) as running:
        response = await running.client.options("/v1/chat", headers=preflight(APP))
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert "access-control-allow-origin" not in response.headers
        plain = await running.client.get("/health", headers={"Origin": APP})
        assert "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize(
    "value", ["*", "https://app.example.com/", "app.example.com", "https://a.com/path"]
)
def test_cors_origins_takes_exact_origins_only(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, cors_origins=f"https://ok.example.com,{value}")
    line = describe_error(raised.value)
    assert line.startswith("invalid configuration: CORS_ORIGINS:"), line
    assert "is not an origin" in line


def test_cors_origins_are_split_and_trimmed() -> None:
    settings = Settings(_env_file=None, cors_origins=" https://a.example , capacitor://localhost,")
    assert settings.cors_origin_list == ["https://a.example", "capacitor://localhost"]
    assert Settings(_env_file=None).cors_origin_list == []
