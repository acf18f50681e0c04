"""API keys, tokens and the JWT secret stay out of logs and of responses not meant for them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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


@dataclass
class Traffic:
    """A key's whole life through the API, with every answer kept."""

    relay: Running
    responses: list[httpx.Response] = field(default_factory=list)
    key_responses: list[httpx.Response] = field(default_factory=list)  # they carry a new key
    secrets: dict[str, str] = field(default_factory=dict)

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.relay.client.request(method, url, **kwargs)
        self.responses.append(response)
        return response

    async def token(self, api_key: str) -> str:
        exchanged = await self.call("POST", "/auth/token", json={"api_key": api_key})
        token: str = exchanged.json()["access_token"]
        return token

    async def new_key(self, url: str, admin: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        response = await self.relay.client.post(url, headers=admin, **kwargs)
        self.key_responses.append(response)
        answer: dict[str, Any] = response.json()
        return answer


async def run_key_lifecycle(traffic: Traffic, admin_key: str) -> None:
    call = traffic.call
    admin_token = await traffic.token(admin_key)
    admin = {"Authorization": f"Bearer {admin_token}"}
    created = await traffic.new_key("/admin/clients", admin, json={"name": "mobile"})
    client_id, api_key = created["client"]["id"], created["api_key"]
    user_token = await traffic.token(api_key)

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

    renewed = await traffic.new_key(f"/admin/clients/{client_id}/regenerate-key", admin)
    new_key = renewed["api_key"]
    await call("POST", "/auth/token", json={"api_key": api_key})  # the old key, now refused
    new_token = await traffic.token(new_key)
    await call("DELETE", f"/admin/clients/{client_id}", headers=admin)
    await call("POST", "/auth/token", json={"api_key": new_key})
    traffic.secrets |= {"admin key": admin_key, "api key": api_key, "new api key": new_key}
    traffic.secrets |= {"admin token": admin_token, "user token": user_token}
    traffic.secrets |= {"new token": new_token}


async def test_keys_tokens_and_secret_stay_out_of_logs_and_responses(
    relay: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay")
    admin_id, admin_key = await relay.new_client("admin", name="ops")
    traffic = Traffic(relay)
    await run_key_lifecycle(traffic, admin_key)
    responses = traffic.responses

    assert [r.status_code for r in responses].count(401) == 4
    stored_admin = await relay.relay.store.get_client(admin_id)
    assert stored_admin is not None
    secrets = traffic.secrets | {
        "jwt secret": relay.relay.clients.tokens._secret,
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
    for response in traffic.key_responses:
        assert relay.relay.clients.tokens._secret not in response.text
        assert "$2b$" not in response.text
        assert "key_hash" not in response.text
