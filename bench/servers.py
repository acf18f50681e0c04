"""Every server of a run: the nginx stub and its proxy hop, the baselines, Relay instances.

A Run owns what it starts: each process is registered with its Supervisor and
each PostgreSQL database with its cleanups before Relay touches it, and
`open_run` gives all of it back however the run ends.

Relay runs exactly as deployed (`relay serve`, one worker, info-level access
log) with stderr sent to /dev/null: the log lines are still formatted and
written, so their cost stays in the figures, but nothing fills the disk. It
runs with a private HOME and working directory so no `.env` of the machine or
of the repository changes what is measured.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench import postgres
from bench.config import BenchConfig
from bench.processes import Supervisor, run_bounded
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = Path(__file__).parent / "nginx" / "stub.conf.template"
BASELINES = ("ceiling", "ceiling-lean", "naive")
CLI_TIMEOUT_S = 120.0


@dataclass
class Run:
    """What a run owns and must give back: processes, databases, its temp dir."""

    cfg: BenchConfig
    tmp: Path
    sup: Supervisor = field(default_factory=Supervisor)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@contextmanager
def open_run(cfg: BenchConfig, prefix: str) -> Iterator[Run]:
    """A Run in a fresh temp dir; on exit every process stops and every cleanup runs.

    A failing cleanup step is reported and the others still run; the temp dir
    is removed unless BENCH_KEEP_TMP asks to keep it.
    """
    run = Run(cfg, Path(tempfile.mkdtemp(prefix=prefix, dir=cfg.tmp_root)))
    try:
        yield run
    finally:
        run.sup.stop_all()
        for step in reversed(run.cleanups):
            try:
                step()
            except Exception as exc:  # report and keep cleaning up
                print(f"bench: cleanup step failed: {exc}", file=sys.stderr)
        if cfg.keep_tmp:
            print(f"bench: kept {run.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(run.tmp, ignore_errors=True)


@dataclass(frozen=True)
class Stub:
    """The nginx stub backend (`url`) and the reverse-proxy hop in front of it."""

    url: str
    proxy_url: str
    process: subprocess.Popen[bytes]


def _render_nginx_conf(prefix: Path, workers: int, stub_port: int, proxy_port: int) -> Path:
    text = NGINX_TEMPLATE.read_text()
    for key, value in {
        "@PREFIX@": str(prefix),
        "@WORKERS@": str(workers),
        "@STUB_PORT@": str(stub_port),
        "@PROXY_PORT@": str(proxy_port),
    }.items():
        text = text.replace(key, value)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def start_stub(sup: Supervisor, nginx: Path, prefix: Path, workers: int) -> Stub:
    """nginx in a private prefix dir, answering fixed JSON from memory, checked and ready.

    One worker by default leaves the second core to the target.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)  # nginx workers drop to `nobody` when started as root
    stub_port, proxy_port = free_port(), free_port()
    conf = _render_nginx_conf(prefix, workers, stub_port, proxy_port)
    base = [str(nginx), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    run_bounded([*base, "-t", "-q"], timeout=30)
    process = sup.start("nginx", base)
    stub = Stub(f"http://127.0.0.1:{stub_port}", f"http://127.0.0.1:{proxy_port}", process)
    sup.wait_ready("nginx stub", process, f"{stub.url}/health", timeout=20)
    sup.wait_ready("nginx proxy", process, f"{stub.proxy_url}/health", timeout=20)
    return stub


@dataclass(frozen=True)
class RelayInstance:
    """One running `relay serve`, its clients' API keys and tokens made for them."""

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


def _relay_environment(setup: RelaySetup, workdir: Path, database_url: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "DATABASE_URL": database_url,
        "RELAY_BACKEND": "upstream",
        "UPSTREAM_URL": setup.upstream_url,
        "JWT_SECRET": setup.jwt_secret,
        "JWT_EXPIRY": "86400",  # long runs (BENCH_ROUNDS, BENCH_DURATION) outlive the default
        "RATE_LIMIT_DEFAULT": setup.rate_limit,
        "RATE_LIMIT_CHAT": setup.rate_limit,
        "LOG_LEVEL": "info",
    }
    env.update(setup.extra_env)
    return env


def _create_clients(setup: RelaySetup, env: dict[str, str], workdir: Path) -> list[str]:
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


def _exchange(url: str, api_key: str) -> str:
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
    env = _relay_environment(setup, workdir, database_url)
    keys = _create_clients(setup, env, workdir)
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
    tokens = [_exchange(url, key) for key in keys for _ in range(setup.tokens_per_client)]
    return RelayInstance(name, url, process, tuple(keys), tuple(tokens))


def start_relay_sqlite(run: Run, setup: RelaySetup, name: str) -> RelayInstance:
    """A Relay on a fresh SQLite file in its own work dir."""
    workdir = run.tmp / name
    return start_relay(run.sup, setup, name, workdir, f"sqlite:///{workdir / 'relay.db'}")


@dataclass
class Servers:
    """The servers of a run, by name; `skipped` says why a wanted one is missing."""

    stub: Stub
    setup: RelaySetup
    baselines: dict[str, str] = field(default_factory=dict)
    relays: dict[str, RelayInstance] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    postgres_version: str | None = None


def start_baseline(run: Run, name: str, env: dict[str, str]) -> str:
    """Start baseline `name` (see bench.baseline) and return its URL once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.baseline.serve", name, "--port", str(port)]
    process = run.sup.start(name, argv, env={**os.environ, **env}, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    run.sup.wait_ready(name, process, f"{url}/health", timeout=60)
    return url


def _start_postgres_relay(run: Run, servers: Servers, name: str) -> None:
    """A Relay on a fresh PostgreSQL database, or a `skipped` reason when none answers."""
    admin = run.cfg.pg_admin_url
    reason = "BENCH_PG_URL is off" if admin is None else postgres.reachable(admin)
    if admin is None or reason is not None:
        servers.skipped.append(f"{name}: PostgreSQL unavailable ({reason})")
        print(f"bench: skipping {name}: {reason}", flush=True)
        return
    database = postgres.database_name("relay_bench")
    run.cleanups.append(lambda: postgres.drop_database(admin, database))
    servers.postgres_version = postgres.create_database(admin, database)
    url = postgres.database_url(admin, database)
    servers.relays[name] = start_relay(run.sup, servers.setup, name, run.tmp / name, url)


def start_servers(run: Run, nginx: Path, needed: set[str]) -> Servers:
    """The stub and proxy always, then each baseline and Relay named in `needed`."""
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
    baseline_env["BENCH_BASELINE_TUNED_GC"] = "1" if cfg.baseline_tuned_gc else "0"
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
