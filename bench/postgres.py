"""A throwaway PostgreSQL database for one run of the benchmark or of the load workload.

Other suites share the server, so each name is unique to the run, and the
database is dropped WITH (FORCE), which also closes Relay's pool, however the
run ends. The admin URL is the run's own (BENCH_PG_URL, LOAD_POSTGRES), not
the test suite's.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg
from yarl import URL

CONNECT_TIMEOUT_S = 10.0


def database_name(prefix: str) -> str:
    """A name no other run on this server uses: `<prefix>_<pid>_<hex>`."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def database_url(admin_url: str, name: str) -> str:
    """The admin URL pointed at database `name` (same server, user and options)."""
    return str(URL(admin_url).with_path(f"/{name}"))


async def _execute(admin_url: str, sql: str) -> str:
    conn = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await conn.execute(sql)
        version: str = await conn.fetchval("SHOW server_version")
        return version
    finally:
        await conn.close()


def create_database(admin_url: str, name: str) -> str:
    """Create the database and return the server's version."""
    return asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database if it exists, closing any connection still open to it."""
    asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def reachable(admin_url: str) -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        asyncio.run(_execute(admin_url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
