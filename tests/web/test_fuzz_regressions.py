"""Inputs the OpenAPI fuzzer found: each once answered 500."""

from __future__ import annotations

from tests.conftest import Running


async def test_metadata_with_an_integer_beyond_64_bits_is_stored(
    relay: Running, admin: dict[str, str]
) -> None:
    body = {"name": "big", "metadata": {"n": 18446750670779318272}}
    created = await relay.client.post("/admin/clients", json=body, headers=admin)
    assert created.status_code == 201, created.text
    client_id = created.json()["client"]["id"]
    fetched = await relay.client.get(f"/admin/clients/{client_id}", headers=admin)
    assert fetched.status_code == 200
    assert round(fetched.json()["client"]["metadata"]["n"]) == 18446750670779318272


async def test_oversized_metadata_is_a_422_naming_the_field(
    relay: Running, admin: dict[str, str]
) -> None:
    body = {"name": "big", "metadata": {"blob": "x" * 20_000}}
    created = await relay.client.post("/admin/clients", json=body, headers=admin)
    assert created.status_code == 422
    assert created.json()["error"]["details"][0]["field"] == "metadata"
