"""Hostile input from Relay's own OpenAPI: no 5xx, every answer as documented.

`make test` runs a bounded number of cases per operation (FUZZ_EXAMPLES,
default 15); `make fuzz` runs many more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.support.processes import Instance, create_client, relay_env, relay_instances

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
HIGH = "1000000/minute"


@pytest.fixture(scope="module")
def fuzzed_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, str]]:
    database = Path(tmp_path_factory.mktemp("fuzz")) / "relay.db"
    env = relay_env(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "RATE_LIMIT_DEFAULT": HIGH,
            "RATE_LIMIT_CHAT": HIGH,
            "RATE_LIMIT_AUTH_FAILURES": HIGH,
            "MAX_MESSAGE_CHARS": "2000",
        }
    )
    _, api_key = create_client(env, "fuzz", "chat", "history", "tools", "admin")
    with relay_instances(env, 1) as (instance,):
        answer = httpx.post(f"{instance.url}/auth/token", json={"api_key": api_key})
        yield instance, answer.json()["access_token"]


def assert_error_shape(response: Any) -> None:
    if response.status_code < 400 or response.request.url.endswith("/health"):
        return
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert [error["request_id"]] == response.headers["x-request-id"]


def test_no_server_error_and_every_answer_documented(
    fuzzed_relay: tuple[Instance, str],
) -> None:
    instance, token = fuzzed_relay
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{instance.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(base_url=instance.url, headers=headers)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            # Cursors are opaque: a made-up one is rightly refused (422), though
            # the schema can only say "a string".
            opaque = {"/v1/history", "/v1/history/search", "/v1/conversations"}
            excluded = [checks.positive_data_acceptance] if case.path in opaque else []
            case.validate_response(response, excluded_checks=excluded)
            assert_error_shape(response)

        check()
