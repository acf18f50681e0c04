"""Logs: one access line per request with its fields, no secret anywhere, JSON that parses."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relay.config import Settings
from relay.observability.logging import JsonFormatter, TextFormatter
from tests.conftest import Running, StartRelay


def everything_in(record: logging.LogRecord) -> str:
    """The message and every attribute of the record, as any formatter could print them."""
    parts = [record.getMessage()]
    parts += [f"{name}={attribute!r}" for name, attribute in vars(record).items()]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@pytest.fixture
def relay_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    # configure_logging (run by the CLI, maybe by an earlier test) stops propagation.
    monkeypatch.setattr(logging.getLogger("relay"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="relay")
    return caplog


# (response, the client id the access line must name, the route template)
Sent = list[tuple[httpx.Response, str | None, str]]


async def send_traffic(relay: Running, admin_id: str, admin_key: str) -> tuple[Sent, list[str]]:
    """Successes and failures of every kind; what was sent, and the secrets it involved."""
    sent: Sent = []

    async def call(who: str | None, route: str, method: str, url: str, **kw: Any) -> Any:
        response = await relay.client.request(method, url, **kw)
        sent.append((response, who, route))
        return response.json() if response.content else None

    async def exchange(api_key: str) -> Any:
        return await call(None, "/auth/token", "POST", "/auth/token", json={"api_key": api_key})

    admin_token = (await exchange(admin_key))["access_token"]
    admin = {"Authorization": f"Bearer {admin_token}"}
    body = {"name": "app"}
    created = await call(
        admin_id, "/admin/clients", "POST", "/admin/clients", json=body, headers=admin
    )
    user_id, user_key = created["client"]["id"], created["api_key"]
    user_token = (await exchange(user_key))["access_token"]
    user = {"Authorization": f"Bearer {user_token}"}
    own_id = {**user, "X-Request-ID": "my-own-id.1"}
    await call(user_id, "/v1/chat", "POST", "/v1/chat", json={"message": "hi"}, headers=own_id)
    too_long = {"message": "x" * 40_000}
    await call(user_id, "/v1/chat", "POST", "/v1/chat", json=too_long, headers=user)
    await exchange(user_key[:-2] + "zz")
    broken = {"Authorization": f"Bearer {user_token}x"}
    await call(None, "/v1/tools", "GET", "/v1/tools", headers=broken)
    path = f"/admin/clients/{user_id}"
    await call(admin_id, "/admin/clients/{client_id}", "GET", path, headers=admin)
    hidden = [admin_key, user_key, user_key[:-2] + "zz", admin_token, user_token]
    hidden += [token.split(".")[-1] for token in (admin_token, user_token)]  # the signatures
    return sent, hidden


def assert_one_access_line_each(records: list[logging.LogRecord], sent: Sent) -> None:
    access = [r for r in records if r.name == "relay.access"]
    assert len(access) == len(sent)
    by_id = {getattr(r, "request_id", None): r for r in access}
    for response, client_id, route in sent:
        record = by_id[response.headers["x-request-id"]]
        assert record.levelno == logging.INFO
        assert getattr(record, "client_id", "missing") == client_id
        assert getattr(record, "route", None) == route
        assert getattr(record, "method", None) == response.request.method
        assert getattr(record, "status", None) == response.status_code
        duration = getattr(record, "duration_ms", None)
        assert isinstance(duration, float) and duration >= 0
    assert "my-own-id.1" in by_id


async def test_one_access_line_per_request_and_no_secret_in_any_record(
    make_settings: Callable[..., Settings],
    start_relay: StartRelay,
    relay_logs: pytest.LogCaptureFixture,
) -> None:
    jwt_secret = "jwt-" + secrets.token_urlsafe(32)
    async with start_relay(make_settings(jwt_secret=jwt_secret)) as relay:
        admin_id, admin_key = await relay.new_client("admin", name="ops")
        relay_logs.clear()
        sent, hidden = await send_traffic(relay, admin_id, admin_key)
        statuses = [response.status_code for response, _, _ in sent]
        assert statuses == [200, 201, 200, 200, 422, 401, 401, 200]

    records = list(relay_logs.records)
    assert_one_access_line_each(records, sent)
    hidden.append(jwt_secret)
    assert records
    formatter = JsonFormatter()
    for record in records:
        text = everything_in(record)
        for secret in hidden:
            assert secret not in text, (record.name, record.getMessage())
        line = json.loads(formatter.format(record))  # every real record makes valid JSON
        assert line["message"] == record.getMessage()


def test_json_formatter_writes_one_parsable_line_with_the_extras() -> None:
    record = logging.LogRecord(
        "relay.access", logging.INFO, __file__, 1, "request %s", ("done",), None
    )
    extras: dict[str, Any] = {
        "request_id": "r1",
        "client_id": None,
        "route": "/v1/chat",
        "status": 200,
        "duration_ms": 1.5,
        "odd": object(),  # not JSON: written as its str(), never a crash
    }
    for name, attribute in extras.items():
        setattr(record, name, attribute)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "request done"
    assert (parsed["level"], parsed["logger"]) == ("info", "relay.access")
    assert parsed["time"].endswith("+00:00")
    expected = {k: v for k, v in extras.items() if k != "odd"}
    assert {k: parsed[k] for k in expected} == expected
    assert isinstance(parsed["odd"], str)
    assert "args" not in parsed and "msg" not in parsed  # no standard attribute noise

    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    with_error = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in with_error["exception"]
    text = TextFormatter().format(record)
    assert text.startswith("INFO    relay.access: request done")
    assert "route=/v1/chat" in text
