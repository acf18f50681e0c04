"""NUL characters: refused in text fields (PostgreSQL cannot store them), kept in metadata."""

from __future__ import annotations

import pytest

from tests.conftest import Running


@pytest.mark.parametrize("name", ["a\x00b", "\x00"])
async def test_nul_in_a_client_name_is_a_validation_error(
    relay: Running, admin: dict[str, str], name: str
) -> None:
    created = await relay.client.post("/admin/clients", json={"name": name}, headers=admin)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["details"][0]["field"] == "name"
    patched = await relay.client.patch("/admin/clients/cl_none", json={"name": name}, headers=admin)
    assert patched.status_code == 422


async def test_nul_in_metadata_is_stored_as_sent(relay: Running, admin: dict[str, str]) -> None:
    metadata = {"note": "a\x00b", "k\x00": [{"deep": "\x00"}]}
    created = await relay.client.post(
        "/admin/clients", json={"name": "ok", "metadata": metadata}, headers=admin
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client"]["id"]
    fetched = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert fetched.json()["client"]["metadata"] == metadata


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/history", {"conversation_id": "conv_\x00"}),
        ("/v1/history/search", {"q": "a\x00b"}),
        ("/v1/history", {"before": "\x00"}),
    ],
)
async def test_nul_in_a_query_is_a_validation_error(
    relay: Running, path: str, params: dict[str, str]
) -> None:
    headers = await relay.bearer("history")
    response = await relay.client.get(path, params=params, headers=headers)
    assert response.status_code == 422, response.text
