"""A client changed with the CLI is refused by a running `relay serve` on the same
SQLite file within a second, with no Redis to announce it (issue 16, item 7).

Real processes: one `relay serve`, and the `relay clients ...` command run beside it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import create_client, relay_command, relay_env, relay_instances

# From the moment the CLI has returned; the cache's own lifetime (30 s) is far beyond.
DEADLINE = 1.5


def refused_after(url: str, headers: dict[str, str]) -> float:
    """Seconds until GET /v1/tools with `headers` answers 401, polling; fails past DEADLINE."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < DEADLINE:
        status = httpx.get(f"{url}/v1/tools", headers=headers, timeout=5).status_code
        if status == 401:
            return elapsed
        assert status == 200
        time.sleep(0.02)
    pytest.fail(f"the token still works {DEADLINE} s after `relay clients ...` returned")


@pytest.mark.parametrize("action", ["disable", "regenerate-key", "delete"])
def test_a_cli_change_revokes_tokens_on_a_running_server(tmp_path: Path, action: str) -> None:
    env = relay_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}"})
    env.pop("REDIS_URL", None)  # nothing but the database file links the two processes
    client_id, api_key = create_client(env, "app", "tools")
    with relay_instances(env, 1) as (server,):
        answer = httpx.post(f"{server.url}/auth/token", json={"api_key": api_key}, timeout=10)
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        # Answered from the server's cache from here on.
        for _ in range(3):
            assert httpx.get(f"{server.url}/v1/tools", headers=headers).status_code == 200

        said = relay_command(env, "clients", action, client_id)
        assert client_id in said
        elapsed = refused_after(server.url, headers)
        print(f"refused {elapsed * 1000:.0f} ms after the CLI returned")
        assert elapsed < DEADLINE
