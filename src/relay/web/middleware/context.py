"""The request's context: its id (the caller's X-Request-ID if sane, else a new one),
and the headers the context asks for on the way out (X-Request-ID, Server-Timing,
the rate limit's).

Server-Timing is added here rather than by a middleware of its own: one layer
fewer on every request, and this one already builds the answer's extra headers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.ids import random_hex
from relay.observability.timing import BackendTime, backend_time
from relay.web.context import start_context
from relay.web.server_timing import server_timing

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class ContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        backend = BackendTime()
        token = backend_time.set(backend)
        context = start_context(scope, request_id_of(scope["headers"]), started, backend)
        id_header = (b"x-request-id", context.request_id.encode())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                timing = (b"server-timing", server_timing(started, backend))
                headers = [*message.get("headers", []), id_header, timing]
                limit = context.limit
                if limit is not None:
                    headers += [
                        (b"x-ratelimit-limit", str(limit.limit).encode()),
                        (b"x-ratelimit-remaining", str(limit.remaining).encode()),
                        (b"x-ratelimit-reset", str(limit.reset_seconds).encode()),
                    ]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            backend_time.reset(token)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID (the first) if it is sane, else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if REQUEST_ID.match(candidate) else random_hex(16)
    return random_hex(16)
