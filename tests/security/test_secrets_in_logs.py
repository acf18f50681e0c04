"""API keys, tokens and the JWT secret stay out of logs and of responses not meant for them."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.conftest import Running


def record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could print: the message, its arguments and every extra."""
    parts = [record.getMessage(), repr(record.args)]
    parts += [f"{k}={v!r}" for k, v in vars(record).items()]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


async def test_keys_tokens_and_secret_stay_out_of_logs_and_responses(
    relay: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay")
    responses: list[httpx.Response] = []
    key_responses: list[httpx.Response] = []

    async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await relay.client.request(method, url, **kwargs)
        responses.append(response)
        return response

    admin_id, admin_key = await relay.new_client("admin", name="ops")
    exchanged = await call("POST", "/auth/token", json={"api_key": admin_key})
    admin_token = exchanged.json()["access_token"]
    admin = {"Authorization": f"Bearer {admin_token}"}

    created = await relay.client.post("/admin/clients", json={"name": "mobile"}, headers=admin)
    key_responses.append(created)
    client_id, api_key = created.json()["client"]["id"], created.json()["api_key"]
    user_token = (await call("POST", "/auth/token", json={"api_key": api_key})).json()[
        "access_token"
    ]

    await call("GET", "/admin/clients", headers=admin)
    await call("GET", f"/admin/clients/{client_id}", headers=admin)
    await call("PATCH", f"/admin/clients/{client_id}", json={"name": "m2"}, headers=admin)
    # Failures: a wrong key, a key in a body that fails validation, a token used where it
    # lacks the scope, a broken token.
    await call("POST", "/auth/token", json={"api_key": api_key[:-1] + "x"})
    await call("POST", "/auth/token", json={"api_key": api_key, "extra": True})
    await call("POST", "/auth/token", content=b'{"api_key": "' + api_key.encode())
    await call("GET", "/admin/clients", headers={"Authorization": f"Bearer {user_token}"})
    await call("GET", "/admin/clients", headers={"Authorization": f"Bearer {user_token}x"})
    await call("GET", f"/nope?api_key={api_key}&token={user_token}")

    renewed = await relay.client.post(f"/admin/clients/{client_id}/regenerate-key", headers=admin)
    key_responses.append(renewed)
    new_key = renewed.json()["api_key"]
    await call("POST", "/auth/token", json={"api_key": api_key})  # the old key, now refused
    new_token = (await call("POST", "/auth/token", json={"api_key": new_key})).json()[
        "access_token"
    ]
    await call("DELETE", f"/admin/clients/{client_id}", headers=admin)
    await call("POST", "/auth/token", json={"api_key": new_key})

    assert [r.status_code for r in responses].count(401) == 4
    stored_admin = await relay.relay.store.get_client(admin_id)
    assert stored_admin is not None
    secrets = {
        "admin key": admin_key,
        "api key": api_key,
        "new api key": new_key,
        "admin token": admin_token,
        "user token": user_token,
        "new token": new_token,
        "jwt secret": relay.relay.tokens._secret,
        "key hash": stored_admin.key_hash,
    }

    relay_records = [r for r in caplog.records if r.name.startswith("relay")]
    # The access log did run, so its silence about secrets means something.
    assert len([r for r in relay_records if r.name == "relay.access"]) >= len(responses)
    logged = caplog.text + "\n".join(record_text(r) for r in caplog.records)
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} was logged"

    # Keys appear only in the answers that create them, and the secret or a hash nowhere.
    for response in responses:
        for name, secret in secrets.items():
            if name.endswith("token") and response.request.url.path == "/auth/token":
                continue  # a token is the answer of /auth/token, and only of it
            assert secret not in response.text, (name, response.request.url, response.text)
        assert "$2b$" not in response.text
    for response in key_responses:
        assert relay.relay.tokens._secret not in response.text
        assert "$2b$" not in response.text
        assert "key_hash" not in response.text
