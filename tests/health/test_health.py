"""GET /health: no auth, the database check, and 503 when the database is gone."""

from __future__ import annotations

from relay import __version__
from tests.conftest import Running


async def test_health_reports_the_database(relay: Running) -> None:
    response = await relay.client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert set(body["checks"]) == {"database", "backend", "rate_limit_store"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert isinstance(check["latency_ms"], int | float)
        assert check["latency_ms"] >= 0
    # No credentials, no database location.
    assert relay.relay.settings.database_url not in response.text
    assert "postgresql://" not in response.text
    assert "sqlite:" not in response.text

    # The database going away is the one thing that makes Relay itself unable to serve.
    await relay.relay.store.close()
    down = await relay.client.get("/health")
    assert down.status_code == 503
    assert down.json()["status"] == "down"
    assert down.json()["checks"]["database"]["status"] == "down"
    assert down.json()["version"] == __version__
