"""The one error shape, X-Request-ID, body limits and the OpenAPI document.

None of this depends on the store, so these tests run on SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.config import Settings
from tests.conftest import Running, StartRelay

GENERATED_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'relay.db'}",
        "bcrypt_rounds": 4,
        "jwt_secret": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def app(tmp_path: Path, start_relay: StartRelay) -> AsyncIterator[Running]:
    async with start_relay(settings(tmp_path)) as running:
        yield running


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert GENERATED_ID.match(error["request_id"])
    allowed = {"code", "message", "request_id", "details"}
    assert set(error) <= allowed
    return error


async def test_unknown_path_is_404(app: Running) -> None:
    for path in ("/nope", "/v1/unknown", "/admin", "/auth/token/extra"):
        error = assert_error(await app.client.get(path), 404, "not_found")
        assert "details" not in error


async def test_wrong_method_is_405(app: Running) -> None:
    response = await app.client.delete("/auth/token")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    assert_error(await app.client.put("/health", json={}), 405, "method_not_allowed")


async def test_a_405_allows_every_method_of_its_path(app: Running) -> None:
    # Each method of a path is a route of its own; the header names the path's, all of them.
    allowed = {
        "/admin/clients": "GET, POST",
        "/admin/clients/cl_anything": "GET, PATCH, DELETE",
        "/admin/clients/cl_anything/regenerate-key": "POST",
        "/auth/token": "POST",
        "/health": "GET",
    }
    for path, allow in allowed.items():
        for method in ("PUT", "DELETE", "POST"):
            if method in allow:
                continue
            response = await app.client.request(method, path)
            assert_error(response, 405, "method_not_allowed")
            assert response.headers["allow"] == allow, (method, path)


async def test_body_over_the_cap_is_413(app: Running) -> None:
    big = b'{"api_key": "' + b"x" * (1024 * 1024) + b'"}'
    response = await app.client.post(
        "/auth/token", content=big, headers={"content-type": "application/json"}
    )
    error = assert_error(response, 413, "payload_too_large")
    assert "1048576" in error["message"]


async def test_streamed_body_over_the_cap_is_413(tmp_path: Path, start_relay: StartRelay) -> None:
    async with start_relay(settings(tmp_path, max_body_bytes=2048)) as running:

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"api_key": "'
            for _ in range(10):
                yield b"y" * 512
            yield b'"}'

        # No Content-Length: the cap applies while the body streams in.
        response = await running.client.post(
            "/auth/token", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert_error(response, 413, "payload_too_large")

        declared = await running.client.post("/auth/token", content=b"{" + b" " * 3000 + b"}")
        assert_error(declared, 413, "payload_too_large")
        # Under the cap the request is read as usual.
        small = await running.client.post("/auth/token", json={"api_key": "y" * 100})
        assert_error(small, 401, "invalid_api_key")


async def test_non_json_body_is_415(app: Running) -> None:
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ):
        response = await app.client.post(
            "/auth/token", content=b'{"api_key": "x"}', headers={"content-type": content_type}
        )
        assert_error(response, 415, "unsupported_media_type")
    # JSON with parameters or a +json type is JSON; a missing type is read as JSON.
    for headers in (
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON"},
        {"content-type": "application/vnd.relay+json"},
        {},
    ):
        response = await app.client.post(
            "/auth/token", content=b'{"api_key": "x"}', headers=headers
        )
        assert_error(response, 401, "invalid_api_key")


async def test_validation_errors_are_422_with_details(app: Running) -> None:
    cases: list[tuple[bytes, str]] = [
        (b'{"api_key": ', "body"),
        (b"{'api_key': 'x'}", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b'{"api_key": 5}', "api_key"),
        (b'{"api_key": "x", "extra": true}', "extra"),
        (b"{}", "api_key"),
    ]
    for content, field in cases:
        response = await app.client.post(
            "/auth/token", content=content, headers={"content-type": "application/json"}
        )
        error = assert_error(response, 422, "validation_error")
        assert isinstance(error["details"], list)
        assert error["details"]
        assert field in [d["field"] for d in error["details"]], (content, error)
        assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])
    malformed = await app.client.post(
        "/auth/token", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert assert_error(malformed, 422, "validation_error")["details"] == [
        {"field": "body", "message": "The body is not valid JSON."}
    ]


@pytest.fixture
def quiet_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level("CRITICAL", logger="relay.errors")
    yield


async def test_unexpected_error_is_500_without_details(app: Running, quiet_errors: None) -> None:
    async def boom() -> None:
        raise RuntimeError("secret-sauce SELECT * FROM clients")

    app.app.add_api_route("/test-boom", boom)
    transport = httpx.ASGITransport(app=app.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
        response = await client.get("/test-boom", headers={"X-Request-ID": "trace-500"})
    error = assert_error(response, 500, "internal_error")
    assert error["request_id"] == "trace-500"
    assert response.headers.get_list("x-request-id") == ["trace-500"]
    assert "secret-sauce" not in response.text
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text


async def test_request_id_is_echoed_when_well_formed(app: Running) -> None:
    for candidate in ("abc", "A-b_c.9", "x" * 128, "0", "req-" + "9" * 60):
        for response in (
            await app.client.get("/health", headers={"X-Request-ID": candidate}),
            await app.client.get("/missing", headers={"X-Request-ID": candidate}),
            await app.client.post(
                "/auth/token", json={"api_key": "x"}, headers={"X-Request-ID": candidate}
            ),
        ):
            assert response.headers.get_list("x-request-id") == [candidate]
            if response.status_code >= 400:
                assert response.json()["error"]["request_id"] == candidate


async def test_request_id_is_replaced_when_malformed(app: Running) -> None:
    seen: set[str] = set()
    for candidate in (
        "",
        "x" * 129,
        "has space",
        "slash/inside",
        "semi;colon",
        "new\tline",
        "quote'",
        "<script>",
        "é",
    ):
        raw = candidate.encode("latin-1")
        response = await app.client.get("/missing", headers={b"X-Request-ID": raw})
        returned = response.headers["x-request-id"]
        assert returned != candidate
        assert GENERATED_ID.match(returned)
        assert response.json()["error"]["request_id"] == returned
        seen.add(returned)
    # Generated ids are fresh for every request.
    for _ in range(3):
        seen.add((await app.client.get("/health")).headers["x-request-id"])
    assert len(seen) == 12


async def test_request_id_on_middleware_refusals(tmp_path: Path, start_relay: StartRelay) -> None:
    async with start_relay(settings(tmp_path, max_body_bytes=1024)) as running:
        too_large = await running.client.post(
            "/auth/token", content=b"{" + b" " * 2000 + b"}", headers={"X-Request-ID": "big-1"}
        )
        assert_error(too_large, 413, "payload_too_large")
        assert too_large.headers.get_list("x-request-id") == ["big-1"]
        wrong_type = await running.client.post(
            "/auth/token",
            content=b"a=b",
            headers={"X-Request-ID": "type-1", "content-type": "text/plain"},
        )
        assert_error(wrong_type, 415, "unsupported_media_type")
        assert wrong_type.headers.get_list("x-request-id") == ["type-1"]


async def test_openapi_and_docs(app: Running) -> None:
    response = await app.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Relay"
    assert document["info"]["version"]
    paths = document["paths"]
    for path in (
        "/health",
        "/auth/token",
        "/admin/clients",
        "/admin/clients/{client_id}",
        "/admin/clients/{client_id}/regenerate-key",
    ):
        assert path in paths, path
    assert set(paths["/admin/clients/{client_id}"]) >= {"get", "patch", "delete"}
    assert response.headers["x-request-id"]
    schemas = document["components"]["schemas"]
    for path, name, items in (
        ("/v1/history", "MessagePage", "messages"),
        ("/v1/history/search", "SearchPage", "results"),
    ):  # the routes answer pre-encoded JSON; the document still says its shape
        body = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{name}"}
        assert set(schemas[name]["properties"]) == {items, "next_cursor"}
    assert set(schemas["Found"]["properties"]) == {
        *("id", "conversation_id", "role", "content", "created_at", "status", "snippet")
    }

    docs = await app.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
