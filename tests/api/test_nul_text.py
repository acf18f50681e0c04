"""NUL characters anywhere in a body are a 422 on both stores, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import Running


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b"},
        {"name": "ok", "metadata": {"note": "a\x00b"}},
        {"name": "ok", "metadata": {"k\x00": 1}},
        {"name": "ok", "metadata": {"list": ["x", {"deep": "\x00"}]}},
    ],
)
async def test_nul_in_a_client_body_is_a_validation_error(
    relay: Running, admin: dict[str, str], body: dict[str, object]
) -> None:
    created = await relay.client.post("/admin/clients", json=body, headers=admin)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "validation_error"
    patched = await relay.client.patch("/admin/clients/cl_none", json=body, headers=admin)
    assert patched.status_code == 422
