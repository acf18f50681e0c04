"""The OpenAPI document client developers read, and the docs pages that show it offline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.config import Settings
from tests.conftest import Running, StartRelay

PUBLIC = {("get", "/health"), ("get", "/metrics"), ("post", "/auth/token")}
METHODS = {"get", "post", "put", "patch", "delete"}
# Every URL an HTML page makes the browser load or link to.
REFERENCED = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.fixture
async def app(tmp_path: Path, start_relay: StartRelay) -> AsyncIterator[Running]:
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'relay.db'}", bcrypt_rounds=4
    )
    async with start_relay(settings) as running:
        yield running


async def operations(app: Running) -> list[tuple[str, str, dict[str, Any]]]:
    document = (await app.client.get("/openapi.json")).json()
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_every_success_is_documented_with_its_body(app: Running) -> None:
    found = await operations(app)
    assert len(found) >= 13
    for method, path, operation in found:
        where = f"{method.upper()} {path}"
        successes = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        assert successes, where
        for status, response in successes.items():
            assert response["description"], where
            if status == "204":
                assert "content" not in response, where  # no body, and says so
                continue
            content = response["content"]
            assert content, where
            for media_type, body in content.items():
                assert body.get("schema"), f"{where} {status} {media_type}"
        assert operation.get("description"), f"{where} has no description"


async def test_response_models_name_every_field(app: Running) -> None:
    document = (await app.client.get("/openapi.json")).json()
    schemas, paths = document["components"]["schemas"], document["paths"]

    def body(path: str, method: str, status: str = "200") -> dict[str, Any]:
        response = paths[path][method]["responses"][status]
        reference = response["content"]["application/json"]["schema"]["$ref"]
        schema: dict[str, Any] = schemas[reference.rsplit("/", 1)[1]]
        return schema

    chat = body("/v1/chat", "post")
    assert set(chat["required"]) == {
        *("id", "conversation_id", "message", "model", "usage", "created_at")
    }
    stream = paths["/v1/chat"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert stream["schema"]["properties"]["event"]["enum"] == [
        *("message_start", "delta", "message_end", "error")
    ]
    description = paths["/v1/chat"]["post"]["description"]
    for event in ("message_start", "delta", "message_end", "error", ": keep-alive"):
        assert event in description, event

    token = body("/auth/token", "post")
    assert set(token["required"]) == {"access_token", "token_type", "expires_in", "scopes"}
    assert set(body("/health", "get")["properties"]) == {"version", "status", "checks"}
    assert body("/health", "get", "503") == body("/health", "get")
    client = schemas["Client"]["properties"]
    assert "key_hash" not in client and {"id", "key_prefix", "last_used_at"} <= set(client)
    assert set(body("/admin/clients", "post", "201")["required"]) == {"client", "api_key"}
    assert set(body("/admin/clients", "get")["required"]) == {"clients", "next_cursor"}
    assert set(body("/admin/clients/{client_id}", "patch")["required"]) == {"client"}
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert [media.split(";")[0] for media in metrics] == ["text/plain"]


async def test_protected_operations_name_the_bearer_scheme(app: Running) -> None:
    document = (await app.client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /auth/token (not the API key itself)",
    }
    for method, path, operation in await operations(app):
        if (method, path) in PUBLIC:
            assert "security" not in operation, path
        else:
            assert operation.get("security") == [{"bearer": []}], f"{method} {path}"
            assert "401" in operation["responses"], path


async def test_the_documented_token_really_is_what_the_routes_take(app: Running) -> None:
    """What Swagger's Authorize sends (Authorization: Bearer <token>) is accepted."""
    headers = await app.bearer("tools")
    assert (await app.client.get("/v1/tools", headers=headers)).status_code == 200
    assert (await app.client.get("/v1/tools")).status_code == 401


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_from_relay_itself(app: Running, page: str) -> None:
    response = await app.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # Nothing from another host: no CDN, no web fonts, no online validator.
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"'<>]+", html)
    assert not re.search(r"""["']//""", html)  # nor a scheme-relative URL
    urls = [a or b for a, b in REFERENCED.findall(html)]
    assets = [url for url in urls if url.endswith((".js", ".css", ".png"))]
    assert len(assets) >= (3 if page == "/docs" else 2), urls
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        fetched = await app.client.get(url)
        assert fetched.status_code == 200, url
        assert fetched.content, url
    if page == "/docs":  # Swagger UI is told not to ask its online validator
        assert '"validatorUrl": null' in html
