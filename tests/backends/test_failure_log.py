"""A backend failure is logged with its class, a sanitized cause and the request id."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from relay.config import Settings
from tests.conftest import StartRelay, chat
from tests.support.ports import closed_port


async def test_a_backend_failure_is_logged_with_its_cause_and_request_id(
    make_settings: Callable[..., Settings],
    start_relay: StartRelay,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.errors")
    url = f"http://relay:upstream-secret@127.0.0.1:{closed_port()}/assistant"
    settings = make_settings(relay_backend="upstream", upstream_url=url, backend_max_retries=0)
    async with start_relay(settings) as relay:
        headers = await relay.bearer("chat")
        headers["X-Request-ID"] = "req-failure-log-1"
        response = await chat(relay, headers, message="hello")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "backend_error"
    (record,) = [r for r in caplog.records if r.getMessage() == "backend failure"]
    assert record.__dict__["request_id"] == "req-failure-log-1"
    assert record.__dict__["error"] == "BackendError"
    cause = record.__dict__["cause"]
    assert cause == "upstream backend could not be reached or the connection broke"
    assert "upstream-secret" not in caplog.text and "127.0.0.1" not in cause
    assert "could not be reached" not in response.text  # the cause is for the log only
