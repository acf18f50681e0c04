"""`relay serve` with two workers: one whole access line per request, none lost at exit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.support.processes import create_client, relay_env, relay_instances

REQUESTS = 300


async def _send_all(url: str, api_key: str) -> list[str]:
    """Request ids of REQUESTS tool listings, 30 at a time; every answer must be 200."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        token = (await client.post("/auth/token", json={"api_key": api_key})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        answers = [(await client.post("/auth/token", json={"api_key": "rly_wrong"})).headers]
        gate = asyncio.Semaphore(30)

        async def one() -> httpx.Headers:
            async with gate:
                answer = await client.get("/v1/tools", headers=headers)
                assert answer.status_code == 200, answer.text
                return answer.headers

        answers += await asyncio.gather(*(one() for _ in range(REQUESTS)))
    return [headers["x-request-id"] for headers in answers]


def test_every_request_has_one_whole_line_after_a_graceful_stop(tmp_path: Path) -> None:
    env = relay_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/relay.db", "LOG_LEVEL": "info"}
        | {"LOG_FORMAT": "json", "RATE_LIMIT_DEFAULT": f"{10 * REQUESTS}/minute"}
    )
    _, api_key = create_client(env, "logs")
    log_path = tmp_path / "stderr.log"
    with (
        log_path.open("wb") as stderr,
        relay_instances(env, 1, extra_args=("--workers", "2"), stderr=stderr) as (instance,),
    ):
        sent = asyncio.run(_send_all(instance.url, api_key))
    # relay_instances stopped the process gracefully (SIGTERM) and waited for it.
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    access = [r for r in records if r["logger"] == "relay.access"]
    by_id = {r["request_id"]: r for r in access}
    assert len(access) == len(by_id)  # no line twice
    assert set(sent) <= set(by_id)  # none lost (the health checks have lines too)
    assert by_id[sent[0]]["status"] == 401
    assert {by_id[request_id]["route"] for request_id in sent[1:]} == {"/v1/tools"}
