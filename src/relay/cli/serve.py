"""`relay serve` and `relay doctor`: the checks first, then uvicorn (serve only)."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from relay.cli.checks import (
    CONFIGURATION,
    StartupFailure,
    check_port,
    check_redis,
    check_tools,
    checked_backend,
    describe_database,
    load_settings,
    open_database,
)
from relay.config import Settings
from relay.observability.logging import configure_logging, log_config


def listen_address(settings: Settings, args: argparse.Namespace) -> tuple[str, int]:
    """Where to listen: the flags, else RELAY_HOST/RELAY_PORT; a bad flag stops here."""
    port = settings.relay_port if args.port is None else args.port
    if not 1 <= port <= 65535:
        raise StartupFailure(CONFIGURATION, f"--port: expected 1 to 65535, got {port}")
    return args.host or settings.relay_host, port


async def _prepare(settings: Settings) -> None:
    """What the app would do at start-up, done once here so a failure is one line."""
    backend = checked_backend(settings)
    await backend.close()
    check_tools(settings)
    store, _ = await open_database(settings, pool_size=1)
    await store.close()
    await check_redis(settings.redis_url)


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if args.workers < 1:
        raise StartupFailure(CONFIGURATION, f"--workers: expected 1 or more, got {args.workers}")
    host, port = listen_address(settings, args)
    check_port(host, port)  # before the work below, which a taken port would waste
    asyncio.run(_prepare(settings))
    configure_logging(settings.log_level, settings.log_format)
    if args.workers > 1:
        share_metrics_between_workers()
    uvicorn.run(
        "relay.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        # uvicorn's httptools protocol with bounds on request heads and on the time to
        # send one (web/connection.py), named as the app is: relay.cli never imports web.
        http="relay.web.connection:RelayHttpProtocol",
        timeout_keep_alive=settings.keepalive_timeout,
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=False,  # Relay writes its own access log, without query strings
        server_header=False,
        proxy_headers=False,
    )


def share_metrics_between_workers() -> None:
    """Each worker writes its metrics to files in one fresh folder, and a scrape of any
    worker reads them all (prometheus_client's multiprocess mode). Workers are new
    interpreters, so setting the variable here, before they start, is enough."""
    folder = tempfile.mkdtemp(prefix="relay-metrics-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def banner() -> None:
    """`make run`'s greeting, with the address serve will really use (environment, .env)."""
    try:
        settings = Settings()
    except ValidationError:
        return  # serve, next, names the bad variable in one line
    print(
        f"Relay: {describe_database(settings.database_url)}, {settings.relay_backend} backend,"
        f" http://{settings.relay_host}:{settings.relay_port} (docs at /docs)."
    )


Check = Callable[[], Awaitable[str]]


async def _database(settings: Settings) -> str:
    store, applied = await open_database(settings, pool_size=1)
    await store.close()
    done = f"applied {', '.join(applied)}" if applied else "schema up to date"
    return f"{describe_database(settings.database_url)} answers; {done}"


async def _backend(settings: Settings) -> str:
    backend = checked_backend(settings)
    try:
        report = await backend.health()
    finally:
        await backend.close()
    if report.status == "ok":
        return f"{settings.relay_backend} answers ({report.latency_ms:.0f} ms)"
    # Relay still starts; chats fail until the backend is back. Said, not failed.
    return (
        f"{settings.relay_backend} is down ({report.detail or 'no reason given'}); chats will fail"
    )


async def _doctor_checks(settings: Settings, host: str, port: int) -> int:
    async def sync(check: Callable[[], str]) -> str:
        return check()

    checks: list[tuple[str, Check]] = [
        ("configuration", lambda: sync(lambda: check_tools(settings))),
        ("database", lambda: _database(settings)),
        ("redis", lambda: check_redis(settings.redis_url)),
        ("backend", lambda: _backend(settings)),
        ("port", lambda: sync(lambda: check_port(host, port))),
    ]
    exit_code = 0
    for name, check in checks:
        try:
            detail = await check()
        except StartupFailure as exc:
            print(f"FAIL  {name}: {exc}")
            exit_code = exit_code or exc.exit_code
        else:
            print(f"ok    {name}: {detail}")
    return exit_code


def doctor(args: argparse.Namespace) -> int:
    """Every check serve makes, one line each; the exit code of the first failure."""
    try:
        settings = load_settings()
        host, port = listen_address(settings, args)
    except StartupFailure as exc:
        print(f"FAIL  configuration: {exc}")
        return exc.exit_code
    code = asyncio.run(_doctor_checks(settings, host, port))
    print("Relay can serve." if code == 0 else "Relay could not serve.")
    return code
