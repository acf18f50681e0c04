"""Requests shaped to mislead: a trailing slash with a forged Host, numbers posing as
booleans, bodies that are not text at all."""

from __future__ import annotations

from tests.conftest import Running


async def test_a_trailing_slash_is_never_redirected_to_the_requests_host(relay: Running) -> None:
    response = await relay.client.get("/v1/history/", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "not_found"


async def test_booleans_must_be_booleans(relay: Running, admin: dict[str, str]) -> None:
    created = await relay.client.post("/admin/clients", json={"name": "app"}, headers=admin)
    client_id = created.json()["client"]["id"]
    for number in (0, 1):
        patched = await relay.client.patch(
            f"/admin/clients/{client_id}", json={"active": number}, headers=admin
        )
        assert patched.status_code == 422, patched.text
        assert patched.json()["error"]["details"][0]["field"] == "active"
    shown = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert shown.json()["client"]["active"] is True  # nothing was changed

    chatter = await relay.bearer("chat")
    chat = await relay.client.post("/v1/chat", json={"message": "hi", "stream": 1}, headers=chatter)
    assert chat.status_code == 422
    assert chat.json()["error"]["details"][0]["field"] == "stream"


async def test_undecodable_bodies_are_422_not_400(relay: Running, admin: dict[str, str]) -> None:
    garbage = b"\xff\xfe\x00not json"
    json_type = {"Content-Type": "application/json"}
    for path, headers in (("/auth/token", json_type), ("/admin/clients", {**admin, **json_type})):
        response = await relay.client.post(path, content=garbage, headers=headers)
        assert response.status_code == 422, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"] == [{"field": "body", "message": "The body is not valid JSON."}]


async def test_deep_or_wide_metadata_is_422_and_nothing_is_saved(
    relay: Running, admin: dict[str, str]
) -> None:
    def nested(levels: int) -> dict[str, object]:
        top: dict[str, object] = {}
        node = top
        for _ in range(levels):
            child: dict[str, object] = {}
            node["n"] = child
            node = child
        return top

    # 254 levels is refused by the JSON parser itself (field "body"); 20 by the check.
    too_deep = {"name": "deep", "metadata": nested(254)}
    refused = await relay.client.post("/admin/clients", json=too_deep, headers=admin)
    assert refused.status_code == 422, refused.text
    wide = {f"k{i}": [i] for i in range(300)}
    for metadata in (nested(20), wide):
        body = {"name": "deep", "metadata": metadata}
        created = await relay.client.post("/admin/clients", json=body, headers=admin)
        assert created.status_code == 422, created.text
        assert created.json()["error"]["details"][0]["field"] == "metadata"
    listed = await relay.client.get("/admin/clients", headers=admin)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()["clients"]] == ["test"]  # only the admin itself
    nested_ok = {"a": {"b": {"c": [1, {"d": True}]}}}
    created = await relay.client.post(
        "/admin/clients", json={"name": "ok", "metadata": nested_ok}, headers=admin
    )
    assert created.status_code == 201
    assert created.json()["client"]["metadata"] == nested_ok
