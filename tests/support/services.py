"""Real PostgreSQL and Redis for tests: skip when absent locally, fail in CI."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import asyncpg
import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run setup work from sync fixtures, even when a test's loop is already running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str, local_hint: str = "") -> NoReturn:
    """End the test for a missing service or tool: fail in CI, where all must be present.

    Locally the test is skipped instead, its reason the message plus `local_hint`.
    """
    if in_ci():
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(f"{message}{local_hint}")


def require(service: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI) when a service does not answer on its port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        unavailable(f"{service} is not reachable on {host}:{port}", "; start it to run this test")


def require_postgres() -> None:
    require("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require("Redis", "127.0.0.1", 6379)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def create_database(name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        suffix = f" TEMPLATE {template}" if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return database_url(name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def temporary_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database named after `prefix` (a copy of `template` if given), dropped on exit.

    Yields its URL. Usable from sync and async code alike (the work runs on its own
    loop, see run_sync); the caller checks require_postgres() first.
    """
    name = unique_name(prefix)
    url = run_sync(create_database(name, template=template))
    try:
        yield url
    finally:
        run_sync(drop_database(name))
