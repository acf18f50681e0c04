"""One Relay instance under test: its database, API clients, tokens and process.

Relay runs exactly as deployed (`relay serve`, one worker, info-level access
log) with stderr sent to /dev/null: the log lines are still formatted and
written, so their cost stays in the figures, but nothing fills the disk.
It runs with a private HOME and working directory so no `.env` of the machine
or of the repository changes what is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.procs import Supervisor, free_port, run_bounded

CLI_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RelayInstance:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    api_keys: tuple[str, ...]
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class RelaySetup:
    """Everything shared by the Relay instances of one run."""

    relay_bin: Path
    upstream_url: str
    jwt_secret: str
    rate_limit: str
    clients: int
    tokens_per_client: int
    extra_env: dict[str, str]
    log_dir: Path | None


def relay_env(setup: RelaySetup, workdir: Path, database_url: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "DATABASE_URL": database_url,
        "RELAY_BACKEND": "upstream",
        "UPSTREAM_URL": setup.upstream_url,
        "JWT_SECRET": setup.jwt_secret,
        "JWT_EXPIRY": "86400",  # long runs (BENCH_ROUNDS, BENCH_DURATION) outlive the 1 h default
        "RATE_LIMIT_DEFAULT": setup.rate_limit,
        "RATE_LIMIT_CHAT": setup.rate_limit,
        "LOG_LEVEL": "info",
    }
    env.update(setup.extra_env)
    return env


def create_clients(setup: RelaySetup, env: dict[str, str], workdir: Path) -> list[str]:
    """API keys of new clients made through the CLI (which also migrates the schema)."""
    keys = []
    for number in range(setup.clients):
        out = run_bounded(
            [str(setup.relay_bin), "clients", "create", "--name", f"bench-{number}", "--json"],
            timeout=CLI_TIMEOUT_S,
            env=env,
            cwd=workdir,
        )
        keys.append(str(json.loads(out)["api_key"]))
    return keys


def exchange(url: str, api_key: str) -> str:
    request = urllib.request.Request(
        f"{url}/auth/token",
        data=json.dumps({"api_key": api_key}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def start_relay(
    sup: Supervisor, setup: RelaySetup, name: str, workdir: Path, database_url: str
) -> RelayInstance:
    """Create clients, start `relay serve`, wait for /health, trade keys for tokens."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = relay_env(setup, workdir, database_url)
    keys = create_clients(setup, env, workdir)
    port = free_port()
    argv = [str(setup.relay_bin), "serve", "--host", "127.0.0.1", "--port", str(port)]
    stderr: IO[bytes] | int = subprocess.DEVNULL
    if setup.log_dir is not None:
        stderr = (setup.log_dir / f"relay-{name}.log").open("ab")
    process = sup.start(f"relay-{name}", argv, env=env, cwd=workdir, stderr=stderr)
    if not isinstance(stderr, int):
        stderr.close()  # the child holds its own copy of the descriptor
    url = f"http://127.0.0.1:{port}"
    sup.wait_ready(f"relay-{name}", process, f"{url}/health", timeout=90)
    tokens = [exchange(url, key) for key in keys for _ in range(setup.tokens_per_client)]
    return RelayInstance(name, url, process, tuple(keys), tuple(tokens))
