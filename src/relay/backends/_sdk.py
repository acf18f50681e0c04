"""What the anthropic and openai backends share.

Both official SDKs come from the same generator: the same error classes, the
same retry loop (which obeys an `x-should-retry` answer header), the same
`DefaultAioHttpClient`. So the error mapping, the health probe and the HTTP
client set-up live here once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import httpx2

from relay.backends._failures import (
    ErrorKinds,
    health_timeout,
    is_busy,
    probe,
    translated,
)
from relay.backends.base import HealthReport, ToolSpec

T = TypeVar("T")


def sdk_error_kinds(
    *,
    api_error: type[Exception],
    status_error: type[Exception],
    connection_error: type[Exception],
    timeout_error: type[Exception],
) -> ErrorKinds:
    """An SDK's classes, plus the raw httpx2 errors a stream can raise while being read."""
    return ErrorKinds(
        timeout=(timeout_error, httpx2.TimeoutException, TimeoutError),
        connection=(connection_error, httpx2.TransportError, OSError),
        status=(status_error,),
        with_body=(api_error,),
    )


async def _keep_busy_answers_unretried(response: httpx2.Response) -> None:
    """Stop the SDK from sleeping through a busy answer's Retry-After (it has no cap).

    Relay hands the wait to its own client as 503 + Retry-After instead; the
    SDK's retries still cover 5xx answers and broken connections.
    """
    if is_busy(response.status_code, []):
        response.headers["x-should-retry"] = "false"


def http_client(client_class: type[httpx2.AsyncClient]) -> httpx2.AsyncClient:
    """The SDK's aiohttp-based client (cheaper in CPU than httpx), with the busy hook."""
    return client_class(event_hooks={"response": [_keep_busy_answers_unretried]})


class SdkBackend(ABC):
    """The shell both SDK backends share: deadlines, error mapping, health, no tool listing."""

    name: str
    default_model: str
    errors: ErrorKinds

    def __init__(self, default_model: str, timeout: float) -> None:
        self.default_model = default_model
        self._timeout = timeout

    def _guard(self) -> AbstractContextManager[None]:
        return translated(self.name, self.errors)

    async def _within_deadline(self, call: Callable[[], Awaitable[T]]) -> T:
        """BACKEND_TIMEOUT bounds the whole answer, SDK retries included."""
        async with asyncio.timeout(self._timeout):
            return await call()

    async def tools(self) -> list[ToolSpec]:
        return []  # neither API lists tools; the registry's come from TOOLS_FILE

    async def health(self) -> HealthReport:
        return await probe(self.name, health_timeout(self._timeout), self.errors, self._list_models)

    @abstractmethod
    async def _list_models(self) -> object:
        """GET /v1/models: free, unlike a completion."""

    @abstractmethod
    async def close(self) -> None: ...
