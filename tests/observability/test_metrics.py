"""GET /metrics: Prometheus text whose counters move with the traffic, and never hold a secret."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Running


async def scrape(relay: Running) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, by (name, labels); the text must parse as Prometheus text."""
    response = await relay.client.get("/metrics")  # public: no token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str, status: int
) -> float:
    return value(samples, "relay_requests_total", route=route, method="GET", status=str(status))


async def test_requests_are_counted_by_route_template_and_status(relay: Running) -> None:
    _, api_key = await relay.new_client("tools", rate_limits={"default": "3/minute"})
    headers = {"Authorization": f"Bearer {await relay.token_for(api_key)}"}
    before = await scrape(relay)
    assert requests(before, "/v1/tools", 200) == 0

    for expected in (1, 2, 3):
        assert (await relay.client.get("/v1/tools", headers=headers)).status_code == 200
        assert requests(await scrape(relay), "/v1/tools", 200) == expected
    assert (await relay.client.get("/v1/tools", headers=headers)).status_code == 429
    assert (await relay.client.get("/v1/tools")).status_code == 401

    after = await scrape(relay)
    assert requests(after, "/v1/tools", 200) == 3
    assert requests(after, "/v1/tools", 429) == 1
    assert requests(after, "/v1/tools", 401) == 1
    assert value(after, "relay_rate_limited_total", limit="default") == 1
    duration = "relay_request_duration_seconds_count"
    assert value(after, duration, route="/v1/tools", method="GET") == 5
    assert requests(after, "/metrics", 200) >= 4  # scrapes count too


async def test_token_exchanges_and_rejections_by_outcome(relay: Running) -> None:
    _, api_key = await relay.new_client("chat", rate_limits={"chat": "1/minute"})
    before = await scrape(relay)
    token = await relay.token_for(api_key)
    await relay.token_for(api_key)
    wrong = await relay.client.post("/auth/token", json={"api_key": api_key[:-4] + "AAAA"})
    assert wrong.status_code == 401

    headers = {"Authorization": f"Bearer {token}"}
    for status in (200, 429, 429):
        response = await relay.client.post("/v1/chat", json={"message": "hi"}, headers=headers)
        assert response.status_code == status, response.text

    after = await scrape(relay)
    for outcome, moved in (("issued", 2), ("invalid_api_key", 1)):
        name = "relay_token_exchanges_total"
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == moved
    assert value(after, "relay_rate_limited_total", limit="chat") == 2
    post = {"route": "/v1/chat", "method": "POST"}
    assert value(after, "relay_requests_total", **post, status="429") == 2
    assert value(after, "relay_requests_total", **post, status="200") == 1


async def test_no_key_token_or_raw_path_in_metrics(relay: Running, admin: dict[str, str]) -> None:
    created = await relay.client.post("/admin/clients", json={"name": "m"}, headers=admin)
    assert created.status_code == 201
    client_id: str = created.json()["client"]["id"]
    api_key: str = created.json()["api_key"]
    token = await relay.token_for(api_key)
    admin_token = admin["Authorization"].removeprefix("Bearer ")

    calls: list[httpx.Response] = [
        await relay.client.get(f"/admin/clients/{client_id}", headers=admin),
        await relay.client.patch(f"/admin/clients/{client_id}", json={"name": "n"}, headers=admin),
        await relay.client.post("/auth/token", json={"api_key": api_key + "x"}),
        await relay.client.get(f"/no/such/{client_id}", headers={"Authorization": "Bearer x"}),
        await relay.client.get("/v1/tools", headers={"Authorization": f"Bearer {token}"}),
    ]
    assert [c.status_code for c in calls] == [200, 200, 401, 404, 200]

    text = (await relay.client.get("/metrics")).text
    for secret in (api_key, api_key[:20], token, token.split(".")[-1], admin_token, client_id):
        assert secret not in text
    assert "/no/such" not in text
    assert 'route="/admin/clients/{client_id}"' in text
    assert 'route="unmatched"' in text
