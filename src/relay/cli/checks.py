"""What `serve` must find before it listens, each check failing with one line.

`relay serve` runs them in order and stops at the first failure; `relay
doctor` runs them all and prints one line each. A failure is a
StartupFailure: its message names the variable and the cause (never a
password, a key or a backend's own words) and its exit code says whose fault
it is: 2, the configuration (a bad value, a database or user that does not
exist, a port taken); 3, a service that cannot be reached.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import redis.asyncio as redis
from pydantic import ValidationError

from relay.backends import make_backend
from relay.backends.base import Backend, BackendMisconfigured
from relay.config import Settings, describe_error
from relay.storage import Store, StoreUnavailable, make_store
from relay.tools.registry import ToolFileError, load_tool_file

CONFIGURATION = 2
UNREACHABLE = 3
CONNECT_TIMEOUT = 3.0  # seconds: a start-up check must not hang on a silent host


class StartupFailure(Exception):
    """Relay cannot serve: one line for the operator, and the process's exit code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise StartupFailure(CONFIGURATION, describe_error(exc)) from None


def check_tools(settings: Settings) -> str:
    try:
        registry = load_tool_file(settings.tools_file)
    except ToolFileError as exc:
        raise StartupFailure(CONFIGURATION, str(exc)) from None
    return f"{len(registry)} tools from TOOLS_FILE" if settings.tools_file else "no TOOLS_FILE"


def checked_backend(settings: Settings) -> Backend:
    """The configured backend, built (no call made); a missing setting is a StartupFailure."""
    try:
        return make_backend(settings)
    except BackendMisconfigured as exc:
        raise StartupFailure(CONFIGURATION, str(exc)) from None


def check_port(host: str, port: int) -> str:
    """Bind the address and let go: a port in use is reported before any start-up work."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            # As uvicorn binds: a port left in TIME_WAIT by a stopped Relay is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        cause = exc.strerror or type(exc).__name__
        raise StartupFailure(
            CONFIGURATION, f"RELAY_HOST/RELAY_PORT: cannot listen on {where}: {cause}"
        ) from None
    return f"{where} is free"


def _where(url: str) -> str:
    """host:port of a URL, without its user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def describe_database(url: str) -> str:
    """The database a URL names, fit to print: never its password."""
    if url.startswith("sqlite:///"):
        return f"SQLite at {sqlite_file(url)}"
    name = unquote(urlsplit(url).path.lstrip("/")) or "(default)"
    return f"PostgreSQL database {name!r} at {_where(url)}"


def sqlite_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///")).expanduser()


def check_sqlite_directory(url: str) -> None:
    """The SQLite file's folder exists (or can be made) and can be written."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    folder = sqlite_file(url).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cause = exc.strerror or type(exc).__name__
        raise StartupFailure(
            CONFIGURATION, f"DATABASE_URL: cannot create the SQLite folder {folder}: {cause}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StartupFailure(
            CONFIGURATION,
            f"DATABASE_URL: cannot write the SQLite folder {folder}: permission denied",
        )


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__


def database_failure(url: str, exc: BaseException) -> StartupFailure:
    """What went wrong opening the database, classified by its root cause."""
    cause = exc.__cause__ or exc
    where = describe_database(url)
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return StartupFailure(CONFIGURATION, f"DATABASE_URL: {where} does not exist")
    if isinstance(
        cause, (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError)
    ):
        user = urlsplit(url).username or "(default)"
        return StartupFailure(
            CONFIGURATION, f"DATABASE_URL: {where} refused user {unquote(user)!r}"
        )
    if isinstance(cause, OSError | TimeoutError):
        reason = _network_reason(cause)
        return StartupFailure(UNREACHABLE, f"DATABASE_URL: cannot reach {where}: {reason}")
    if isinstance(exc, StoreUnavailable):
        return StartupFailure(UNREACHABLE, f"DATABASE_URL: {where}: {exc}")
    return StartupFailure(UNREACHABLE, f"DATABASE_URL: {where}: {type(cause).__name__}")


async def open_database(settings: Settings, *, pool_size: int) -> tuple[Store, list[str]]:
    """The store, open and migrated, and the migrations this call applied."""
    check_sqlite_directory(settings.database_url)
    store = make_store(settings.database_url, pool_size=pool_size)
    try:
        await store.open()
        applied = await store.migrate()
    except Exception as exc:  # any driver's failure: one line, never a traceback
        await store.close()
        raise database_failure(settings.database_url, exc) from None
    return store, applied


async def check_redis(url: str | None) -> str:
    if not url:
        return "not configured (rate limits counted per process)"
    where = _where(url)
    try:
        client = redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT
        )
    except ValueError as exc:
        raise StartupFailure(CONFIGURATION, f"REDIS_URL: {exc}") from None
    try:
        await client.ping()
    except redis.AuthenticationError:
        raise StartupFailure(
            CONFIGURATION, f"REDIS_URL: Redis at {where} refused the credentials"
        ) from None
    except (redis.RedisError, OSError) as exc:
        # redis-py's connection errors name the host and the cause, never the password.
        reason = str(exc) if isinstance(exc, redis.ConnectionError) else type(exc).__name__
        raise StartupFailure(
            UNREACHABLE, f"REDIS_URL: cannot reach Redis at {where}: {reason}"
        ) from None
    finally:
        await client.aclose()
    return f"Redis at {where} answers"
