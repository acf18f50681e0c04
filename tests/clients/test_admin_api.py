"""The admin API: /admin/clients, end to end on both stores.

Each test covers several cases in a loop: every test here runs once per store,
and a fresh PostgreSQL database costs about half a second.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Running

CLIENT_FIELDS = {
    "id",
    "name",
    "scopes",
    "active",
    "rate_limits",
    "token_ttl",
    "metadata",
    "key_prefix",
    "created_at",
    "updated_at",
    "last_used_at",
}
UNKNOWN_ID = "cl_0000000000000000000000"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def assert_invalid_field(response: httpx.Response, field: str) -> None:
    error = assert_error(response, 422, "validation_error")
    fields = [d["field"] for d in error["details"]]
    assert all(d["message"] for d in error["details"])
    assert any(f == field or f.startswith(field + ".") for f in fields), (field, fields)


async def create(relay: Running, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", "app")
    response = await relay.client.post("/admin/clients", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get(relay: Running, admin: dict[str, str], client_id: str) -> dict[str, Any]:
    response = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert response.status_code == 200, response.text
    client: dict[str, Any] = response.json()["client"]
    return client


async def exchange(relay: Running, api_key: str) -> httpx.Response:
    return await relay.client.post("/auth/token", json={"api_key": api_key})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_token(relay: Running) -> tuple[str, str, str]:
    """A second admin client: (id, api key, token)."""
    client_id, api_key = await relay.new_client("admin", name="ops")
    return client_id, api_key, await relay.token_for(api_key)


async def can_list(relay: Running, token: str) -> int:
    return (await relay.client.get("/admin/clients", headers=bearer(token))).status_code


# --- POST /admin/clients ---------------------------------------------------------------------


async def test_create(relay: Running, admin: dict[str, str]) -> None:
    body = await create(relay, admin, name="mobile")
    assert set(body) == {"client", "api_key"}
    client = body["client"]
    assert set(client) == CLIENT_FIELDS
    assert client["name"] == "mobile"
    assert client["scopes"] == ["chat", "history", "tools"]
    assert client["active"] is True
    assert client["rate_limits"] == {}
    assert client["token_ttl"] is None
    assert client["metadata"] == {}
    assert client["last_used_at"] is None
    assert client["created_at"].endswith("Z")
    assert body["api_key"].startswith(client["key_prefix"] + "_")
    stored = await relay.relay.store.get_client(client["id"])
    assert stored is not None
    # Only a bcrypt hash is kept, never the key itself.
    assert stored.key_hash.startswith("$2")
    assert body["api_key"] not in stored.key_hash
    assert await get(relay, admin, client["id"]) == client

    other = await create(relay, admin)
    assert other["api_key"] != body["api_key"]
    assert other["client"]["key_prefix"] != client["key_prefix"]
    response = await exchange(relay, body["api_key"])
    assert response.status_code == 200
    assert response.json()["scopes"] == ["chat", "history", "tools"]

    # Every field, given.
    body = await create(
        relay,
        admin,
        name="integration",
        scopes=["tools", "chat", "chat"],
        rate_limits={"default": "50/minute", "chat": "5 per second"},
        token_ttl=120,
        metadata={"team": "mobile", "tier": 2, "nested": {"ok": [1, None]}},
    )
    client = body["client"]
    assert client["scopes"] == ["chat", "tools"]
    assert client["rate_limits"] == {"default": "50/minute", "chat": "5 per second"}
    assert client["token_ttl"] == 120
    assert client["metadata"] == {"team": "mobile", "tier": 2, "nested": {"ok": [1, None]}}
    assert await get(relay, admin, client["id"]) == client

    # The bounds are inclusive, and every known scope is accepted.
    assert (await create(relay, admin, token_ttl=1))["client"]["token_ttl"] == 1
    assert (await create(relay, admin, token_ttl=604_800))["client"]["token_ttl"] == 604_800
    every = await create(relay, admin, scopes=["admin", "tools", "history", "chat"])
    assert every["client"]["scopes"] == ["chat", "history", "tools", "admin"]


async def test_create_bad_body(relay: Running, admin: dict[str, str]) -> None:
    cases: list[tuple[Any, str]] = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": "a", "scopes": ["chat", "root"]}, "scopes"),
        ({"name": "a", "scopes": ["Chat"]}, "scopes"),
        ({"name": "a", "scopes": "chat"}, "scopes"),
        ({"name": "a", "token_ttl": 0}, "token_ttl"),
        ({"name": "a", "token_ttl": 604_801}, "token_ttl"),
        ({"name": "a", "token_ttl": -5}, "token_ttl"),
        ({"name": "a", "token_ttl": "soon"}, "token_ttl"),
        ({"name": "a", "rate_limits": {"default": "lots"}}, "rate_limits.default"),
        ({"name": "a", "rate_limits": {"chat": "10/fortnight"}}, "rate_limits.chat"),
        ({"name": "a", "rate_limits": {"search": "1/minute"}}, "rate_limits.search"),
        ({"name": "a", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"name": "a", "key_prefix": "rly_0123456789"}, "key_prefix"),
        ({"name": "a", "id": "cl_mine"}, "id"),
        (["name"], "body"),
    ]
    for body, field in cases:
        response = await relay.client.post("/admin/clients", json=body, headers=admin)
        assert_invalid_field(response, field)
    # Nothing was created: only the admin client exists.
    assert len(await relay.relay.store.list_clients(active=None, limit=10, before=None)) == 1


# --- GET /admin/clients/{id} and unknown ids ------------------------------------------------


async def test_get_client_and_unknown_ids(relay: Running, admin: dict[str, str]) -> None:
    created = await create(relay, admin, name="reader")
    response = await relay.client.get(f"/admin/clients/{created['client']['id']}", headers=admin)
    assert response.status_code == 200
    assert response.json() == {"client": created["client"]}
    assert created["api_key"] not in response.text

    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("PATCH", "", {}),
        ("PATCH", "", {"active": False}),
        ("DELETE", "", None),
        ("POST", "/regenerate-key", None),
    ]:
        for unknown in (UNKNOWN_ID, "nope"):
            response = await relay.client.request(
                method, f"/admin/clients/{unknown}{suffix}", json=body, headers=admin
            )
            assert_error(response, 404, "not_found")
        # Not even shaped like an id: refused before any lookup.
        response = await relay.client.request(
            method, f"/admin/clients/%27%20OR%201%3D1--{suffix}", json=body, headers=admin
        )
        assert_error(response, 422, "validation_error")


# --- GET /admin/clients ----------------------------------------------------------------------


async def test_list_filter_and_bad_query(relay: Running, admin: dict[str, str]) -> None:
    kept = (await create(relay, admin, name="kept"))["client"]["id"]
    off = (await create(relay, admin, name="off"))["client"]["id"]
    patched = await relay.client.patch(
        f"/admin/clients/{off}", json={"active": False}, headers=admin
    )
    assert patched.status_code == 200

    everything = (await relay.client.get("/admin/clients", headers=admin)).json()
    assert [c["id"] for c in everything["clients"]][:2] == [off, kept]  # newest first
    assert len(everything["clients"]) == 3
    assert everything["next_cursor"] is None
    assert all(set(c) == CLIENT_FIELDS for c in everything["clients"])

    inactive = await relay.client.get("/admin/clients", params={"active": "false"}, headers=admin)
    assert [c["id"] for c in inactive.json()["clients"]] == [off]
    active = await relay.client.get("/admin/clients", params={"active": "true"}, headers=admin)
    active_ids = [c["id"] for c in active.json()["clients"]]
    assert kept in active_ids
    assert off not in active_ids
    assert len(active_ids) == 2

    bad_queries: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"active": "perhaps"}, "active"),
        ({"before": "x" * 65}, "before"),
    ]
    for params, field in bad_queries:
        response = await relay.client.get("/admin/clients", params=params, headers=admin)
        assert_invalid_field(response, field)


async def test_list_pagination_with_next_cursor(relay: Running, admin: dict[str, str]) -> None:
    for i in range(4):
        await create(relay, admin, name=f"c{i}")
    records = await relay.relay.store.list_clients(active=None, limit=100, before=None)
    expected = [c.id for c in records]
    assert len(expected) == 5

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["before"] = cursor
        response = await relay.client.get("/admin/clients", params=params, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["clients"]) <= 2
        seen += [c["id"] for c in body["clients"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor == body["clients"][-1]["id"]
        assert pages < 10
    assert seen == expected
    assert pages == 3

    # A page that holds exactly what is left says nothing follows.
    exact = await relay.client.get(
        "/admin/clients", params={"limit": 3, "before": expected[1]}, headers=admin
    )
    assert [c["id"] for c in exact.json()["clients"]] == expected[2:]
    assert exact.json()["next_cursor"] is None
    full = await relay.client.get("/admin/clients", params={"limit": 5}, headers=admin)
    assert full.json()["next_cursor"] is None
    short = await relay.client.get("/admin/clients", params={"limit": 4}, headers=admin)
    assert short.json()["next_cursor"] == expected[3]


# --- PATCH /admin/clients/{id} ---------------------------------------------------------------


async def test_patch_each_field(relay: Running, admin: dict[str, str]) -> None:
    client = (
        await create(
            relay,
            admin,
            name="before",
            token_ttl=300,
            rate_limits={"default": "9/minute"},
            metadata={"owner": "dev"},
        )
    )["client"]
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"name": "renamed"}, {"name": "renamed"}),
        ({"scopes": ["history"]}, {"scopes": ["history"]}),
        ({"scopes": ["admin", "chat"]}, {"scopes": ["chat", "admin"]}),
        ({"rate_limits": {"chat": "3/minute"}}, {"rate_limits": {"chat": "3/minute"}}),
        ({"rate_limits": {}}, {"rate_limits": {}}),
        ({"token_ttl": 60}, {"token_ttl": 60}),
        ({"token_ttl": None}, {"token_ttl": None}),
        ({"metadata": {"owner": "ops"}}, {"metadata": {"owner": "ops"}}),
        ({"active": False}, {"active": False}),
        ({"active": True}, {"active": True}),
        ({"name": "both", "token_ttl": 7}, {"name": "both", "token_ttl": 7}),
        # null for a field that cannot be empty leaves it as it is
        ({"name": None, "scopes": None, "metadata": None, "active": None}, {}),
        ({}, {}),
    ]
    for change, expected in steps:
        response = await relay.client.patch(
            f"/admin/clients/{client['id']}", json=change, headers=admin
        )
        assert response.status_code == 200, (change, response.text)
        updated = response.json()["client"]
        for name, value in expected.items():
            assert updated[name] == value, change
        for name in CLIENT_FIELDS - set(expected) - {"updated_at"}:
            assert updated[name] == client[name], (change, name)
        assert updated["updated_at"] >= client["updated_at"]
        assert await get(relay, admin, client["id"]) == updated
        client = updated


async def test_patch_bad_body(relay: Running, admin: dict[str, str]) -> None:
    created = (await create(relay, admin))["client"]
    for body, field in [
        ({"name": ""}, "name"),
        ({"scopes": ["superuser"]}, "scopes"),
        ({"token_ttl": 0}, "token_ttl"),
        ({"token_ttl": 604_801}, "token_ttl"),
        ({"rate_limits": {"default": "fast"}}, "rate_limits.default"),
        ({"active": "maybe"}, "active"),
        ({"metadata": "text"}, "metadata"),
        ({"key_hash": "$2b$04$abc"}, "key_hash"),
        ({"key_generation": 1}, "key_generation"),
        ({"name": "ok", "id": "cl_other"}, "id"),
    ]:
        response = await relay.client.patch(
            f"/admin/clients/{created['id']}", json=body, headers=admin
        )
        assert_invalid_field(response, field)
    assert await get(relay, admin, created["id"]) == created


async def test_patched_scopes_and_ttl_apply_to_next_token(
    relay: Running, admin: dict[str, str]
) -> None:
    created = await create(relay, admin, scopes=["chat"])
    await relay.client.patch(
        f"/admin/clients/{created['client']['id']}",
        json={"scopes": ["history", "tools"], "token_ttl": 42},
        headers=admin,
    )
    response = await exchange(relay, created["api_key"])
    assert response.json()["scopes"] == ["history", "tools"]
    assert response.json()["expires_in"] == 42


# --- revocation through the admin API -------------------------------------------------------


async def test_disable_revokes_live_tokens_even_after_enable(
    relay: Running, admin: dict[str, str]
) -> None:
    client_id, api_key, token = await admin_token(relay)
    assert await can_list(relay, token) == 200
    # Patches that do not disable leave live tokens alone.
    for change in ({"name": "n"}, {"metadata": {"a": 1}}, {"token_ttl": 5}, {"active": True}):
        await relay.client.patch(f"/admin/clients/{client_id}", json=change, headers=admin)
        assert await can_list(relay, token) == 200, change

    off = await relay.client.patch(
        f"/admin/clients/{client_id}", json={"active": False}, headers=admin
    )
    assert off.json()["client"]["active"] is False
    assert_error(
        await relay.client.get("/admin/clients", headers=bearer(token)), 401, "invalid_token"
    )
    assert_error(await exchange(relay, api_key), 401, "invalid_api_key")

    on = await relay.client.patch(
        f"/admin/clients/{client_id}", json={"active": True}, headers=admin
    )
    assert on.json()["client"]["active"] is True
    assert_error(
        await relay.client.get("/admin/clients", headers=bearer(token)), 401, "invalid_token"
    )
    # The same key works again and gives a token that is accepted.
    assert await can_list(relay, await relay.token_for(api_key)) == 200


async def test_delete(relay: Running, admin: dict[str, str]) -> None:
    client_id, api_key, token = await admin_token(relay)
    response = await relay.client.delete(f"/admin/clients/{client_id}", headers=admin)
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await exchange(relay, api_key), 401, "invalid_api_key")
    assert_error(
        await relay.client.get("/admin/clients", headers=bearer(token)), 401, "invalid_token"
    )
    gone = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert_error(gone, 404, "not_found")
    again = await relay.client.delete(f"/admin/clients/{client_id}", headers=admin)
    assert_error(again, 404, "not_found")
    listed = (await relay.client.get("/admin/clients", headers=admin)).json()["clients"]
    assert client_id not in [c["id"] for c in listed]


async def test_regenerate_key(relay: Running, admin: dict[str, str]) -> None:
    client_id, old_key, old_token = await admin_token(relay)
    before = await get(relay, admin, client_id)
    response = await relay.client.post(f"/admin/clients/{client_id}/regenerate-key", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"client", "api_key"}
    new_key = body["api_key"]
    assert new_key != old_key
    assert body["client"]["id"] == client_id
    assert body["client"]["key_prefix"] != before["key_prefix"]
    assert new_key.startswith(body["client"]["key_prefix"] + "_")
    for name in ("name", "scopes", "rate_limits", "token_ttl", "metadata", "active"):
        assert body["client"][name] == before[name]

    assert_error(await exchange(relay, old_key), 401, "invalid_api_key")
    assert_error(
        await relay.client.get("/admin/clients", headers=bearer(old_token)), 401, "invalid_token"
    )
    new_token = await relay.token_for(new_key)
    assert await can_list(relay, new_token) == 200

    # An admin may regenerate its own key; its token dies with the old key.
    own = await relay.client.post(
        f"/admin/clients/{client_id}/regenerate-key", headers=bearer(new_token)
    )
    assert own.status_code == 200
    assert await can_list(relay, new_token) == 401
    assert await can_list(relay, await relay.token_for(own.json()["api_key"])) == 200


# --- who may call it -------------------------------------------------------------------------


async def test_every_admin_endpoint_needs_admin_scope(relay: Running) -> None:
    user = await relay.bearer("chat", "history", "tools")
    victim, _ = await relay.new_client("chat")
    for method, path in [
        ("GET", "/admin/clients"),
        ("POST", "/admin/clients"),
        ("GET", f"/admin/clients/{victim}"),
        ("PATCH", f"/admin/clients/{victim}"),
        ("DELETE", f"/admin/clients/{victim}"),
        ("POST", f"/admin/clients/{victim}/regenerate-key"),
    ]:
        anonymous = await relay.client.request(method, path, json={"name": "x"})
        assert_error(anonymous, 401, "invalid_token")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        refused = await relay.client.request(method, path, json={"name": "x"}, headers=user)
        assert_error(refused, 403, "insufficient_scope")
        assert 'scope="admin"' in refused.headers["www-authenticate"]
    # Nothing changed: two clients, the victim untouched.
    records = await relay.relay.store.list_clients(active=None, limit=10, before=None)
    assert len(records) == 2
    stored = await relay.relay.store.get_client(victim)
    assert stored is not None
    assert (stored.name, stored.key_generation) == ("test", 1)
