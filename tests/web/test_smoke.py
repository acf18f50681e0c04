"""The five-minute tour of the README, end to end on both stores."""

from __future__ import annotations

from tests.conftest import Running


async def test_admin_creates_client_which_gets_a_token(
    relay: Running, admin: dict[str, str]
) -> None:
    created = await relay.client.post("/admin/clients", json={"name": "mobile"}, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["client"]["scopes"] == ["chat", "history", "tools"]
    token = await relay.client.post("/auth/token", json={"api_key": body["api_key"]})
    assert token.status_code == 200
    assert token.json()["token_type"] == "bearer"
    assert token.json()["scopes"] == ["chat", "history", "tools"]
