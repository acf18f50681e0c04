"""Failure handling every backend shares, so all of them map errors the same way.

Busy answers (429, 503, Anthropic's 529, or a "busy" error code) become
BackendBusy; running out of time becomes BackendTimeout; anything
else becomes BackendError. Messages are built here from safe tokens only (a
status number, an error code matching a strict pattern): never from the
backend's own text, which may echo a key, nor from a URL.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from relay.backends.base import BackendBusy, BackendError, BackendTimeout, HealthReport
from relay.observability.timing import elapsed_ms

# 503 is "unavailable for now" whatever the body says (servers write "overloaded"
# many ways, often with no code): the client should come back, not see a failure.
BUSY_STATUSES = frozenset({429, 503, 529})
BUSY_CODES = frozenset(
    {
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limited",
        "overloaded_error",
        "overloaded",
        "server_overloaded",
        "backend_busy",
    }
)
SAFE_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEALTH_TIMEOUT_CAP = 5.0  # a health probe must stay quick, whatever BACKEND_TIMEOUT is
RETRY_BASE_DELAY = 0.5  # the SDKs' own backoff: 0.5 s doubling, at most 8 s
RETRY_MAX_DELAY = 8.0


def _non_negative(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if given."""
    if headers is None:
        return None
    millis = _non_negative(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = headers.get("retry-after")
    seconds = _non_negative(raw)
    if seconds is not None or raw is None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_codes(body: object) -> list[str]:
    """The error code/type of any of the three protocols' error bodies, if safe to repeat."""
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(inner, Mapping):
        return []
    values = (inner.get("code"), inner.get("type"))
    return [v for v in values if isinstance(v, str) and SAFE_CODE.match(v)]


def is_busy(status: int | None, codes: list[str]) -> bool:
    """429, 503 or 529, or a busy error code."""
    return status in BUSY_STATUSES or any(code in BUSY_CODES for code in codes)


def status_failure(
    name: str, status: int | None, headers: Mapping[str, str] | None, body: object
) -> BackendError:
    """The error for a backend's error answer; status None means an error event mid-stream."""
    codes = error_codes(body)
    detail = f" ({codes[0]})" if codes else ""
    if is_busy(status, codes):
        return BackendBusy(f"{name} backend is busy{detail}", parse_retry_after(headers))
    if status in (401, 403):
        # Relay's own key was refused: a server-side fault, never the client's credentials.
        return BackendError(f"{name} backend refused Relay's credentials (HTTP {status})")
    if status is None or status < 400:
        return BackendError(f"{name} backend reported an error mid-answer{detail}")
    return BackendError(f"{name} backend answered HTTP {status}{detail}")


@dataclass(frozen=True, slots=True)
class ErrorKinds:
    """Which exception classes of a client library mean what."""

    timeout: tuple[type[BaseException], ...] = (TimeoutError,)
    connection: tuple[type[BaseException], ...] = (OSError,)
    status: tuple[type[BaseException], ...] = ()  # has .response (status_code, headers) and .body
    with_body: tuple[type[BaseException], ...] = ()  # has .body: an error event mid-stream


def to_backend_error(name: str, exc: Exception, kinds: ErrorKinds) -> BackendError:
    """Classify any exception raised while talking to a backend."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, kinds.timeout) and _really_timed_out(exc):
        return BackendTimeout(f"{name} backend did not answer in time")
    if isinstance(exc, kinds.status):
        response: Any = getattr(exc, "response", None)
        return status_failure(name, response.status_code, response.headers, _body(exc))
    if isinstance(exc, kinds.connection):
        return BackendError(f"{name} backend could not be reached or the connection broke")
    if isinstance(exc, kinds.with_body):
        return status_failure(name, None, None, _body(exc))
    return BackendError(f"{name} backend sent an answer Relay could not read")


def _really_timed_out(exc: BaseException) -> bool:
    """False when a "timeout" was caused by a refused or dropped connection.

    The aiohttp transport vendored in the openai SDK reports every failed
    connection as a ConnectTimeout; the root cause tells the truth.
    """
    root, seen = exc, {id(exc)}
    while root.__cause__ is not None and id(root.__cause__) not in seen:
        root = root.__cause__
        seen.add(id(root))
    return root is exc or isinstance(root, TimeoutError) or not isinstance(root, OSError)


def _body(exc: BaseException) -> object:
    return getattr(exc, "body", None)


@contextmanager
def translated(name: str, kinds: ErrorKinds) -> Iterator[None]:
    """Raise a BackendError for any failure inside, without chaining the original.

    The original exception is dropped on purpose: its text or its request may
    carry the API key, the Authorization header or a URL with credentials, and
    a logged traceback would print them.
    """
    try:
        yield
    except Exception as exc:
        raise to_backend_error(name, exc, kinds) from None


def health_timeout(backend_timeout: float) -> float:
    return min(backend_timeout, HEALTH_TIMEOUT_CAP)


async def probe(
    name: str, within: float, kinds: ErrorKinds, check: Callable[[], Awaitable[object]]
) -> HealthReport:
    """Run a free check and report ok/down with its latency; never raises."""
    started = time.perf_counter()
    try:
        with translated(name, kinds):
            async with asyncio.timeout(within):
                await check()
    except BackendError as exc:
        return HealthReport("down", elapsed_ms(started), str(exc))
    return HealthReport("ok", elapsed_ms(started))


def retry_delay(attempt: int) -> float:
    """The SDKs' backoff, for the backend that has no SDK: jittered, doubling, capped."""
    delay = min(RETRY_BASE_DELAY * 2.0**attempt, RETRY_MAX_DELAY)
    return delay * (1 - 0.25 * random.random())
