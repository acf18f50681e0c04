"""Start every server of a run: the nginx stub, the two baselines and Relay instances.

Everything is registered with the Supervisor (stopped in run.py's `finally`),
and a PostgreSQL database is registered for dropping before Relay touches it.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import pg
from bench.config import BenchConfig
from bench.procs import Supervisor, free_port
from bench.relay_target import RelayInstance, RelaySetup, start_relay
from bench.stub import Stub, start_stub

REPO = Path(__file__).resolve().parent.parent
BASELINES = {
    "ceiling": "bench.baseline.ceiling",
    "ceiling-lean": "bench.baseline.ceiling_lean",
    "naive": "bench.baseline.naive_gateway",
}


@dataclass
class Servers:
    stub: Stub
    setup: RelaySetup
    baselines: dict[str, str] = field(default_factory=dict)
    relays: dict[str, RelayInstance] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    postgres_version: str | None = None


@dataclass
class Run:
    """What a run owns and must give back: processes, databases, its temp dir."""

    cfg: BenchConfig
    tmp: Path
    sup: Supervisor = field(default_factory=Supervisor)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def start_baseline(run: Run, name: str, env: dict[str, str]) -> str:
    port = free_port()
    argv = [sys.executable, "-m", BASELINES[name], "--port", str(port)]
    process = run.sup.start(name, argv, env={**os.environ, **env}, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    run.sup.wait_ready(name, process, f"{url}/health", timeout=60)
    return url


def _start_postgres_relay(run: Run, servers: Servers, name: str) -> None:
    admin = run.cfg.pg_admin_url
    reason = "BENCH_PG_URL is off" if admin is None else pg.reachable(admin)
    if admin is None or reason is not None:
        servers.skipped.append(f"{name}: PostgreSQL unavailable ({reason})")
        print(f"bench: skipping {name}: {reason}", flush=True)
        return
    database = pg.database_name()
    run.cleanups.append(lambda: pg.drop_database(admin, database))
    servers.postgres_version = pg.create_database(admin, database)
    url = pg.database_url(admin, database)
    servers.relays[name] = start_relay(run.sup, servers.setup, name, run.tmp / name, url)


def start_relay_sqlite(run: Run, setup: RelaySetup, name: str) -> RelayInstance:
    workdir = run.tmp / name
    database_url = f"sqlite:///{workdir / 'relay.db'}"
    return start_relay(run.sup, setup, name, workdir, database_url)


def start_servers(run: Run, nginx: Path, needed: set[str]) -> Servers:
    cfg = run.cfg
    print("bench: starting the nginx stub and proxy", flush=True)
    stub = start_stub(run.sup, nginx, run.tmp / "nginx", cfg.nginx_workers)
    secret = secrets.token_urlsafe(48)
    setup = RelaySetup(
        relay_bin=Path(sys.executable).parent / "relay",
        upstream_url=stub.url,
        jwt_secret=secret,
        rate_limit=cfg.rate_limit,
        clients=cfg.clients,
        tokens_per_client=cfg.tokens_per_client,
        extra_env=cfg.relay_env,
        log_dir=cfg.relay_log_dir,
    )
    servers = Servers(stub, setup)
    baseline_env = {"BENCH_JWT_SECRET": secret, "BENCH_UPSTREAM_URL": stub.url}
    baseline_env["BENCH_BASELINE_TUNED_GC"] = "1" if run.cfg.baseline_tuned_gc else "0"
    for name in BASELINES:
        if name in needed:
            print(f"bench: starting baseline {name}", flush=True)
            servers.baselines[name] = start_baseline(run, name, baseline_env)
    if "relay-sqlite" in needed:
        print("bench: starting relay-sqlite (creating clients takes a few seconds)", flush=True)
        servers.relays["relay-sqlite"] = start_relay_sqlite(run, setup, "relay-sqlite")
    if "relay-postgres" in needed:
        print("bench: starting relay-postgres", flush=True)
        _start_postgres_relay(run, servers, "relay-postgres")
    return servers
