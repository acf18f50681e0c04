"""Pure ASGI middleware: request id, body cap and the access log, with no per-request task."""

from __future__ import annotations

import logging
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.errors import error_response
from relay.ids import random_hex
from relay.observability.access_log import AccessLog
from relay.observability.metrics import Metrics

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI passes it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.access_log = AccessLog(logging.getLogger("relay.access"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _watched_headers(scope)
        request_id = _request_id(headers)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = state.get("response_headers", ())
                message["headers"] = [*message.get("headers", []), header, *extra]
            await send(message)

        try:
            if _declared_length(headers) > self.max_body_bytes:
                await self._refuse(scope, receive, send_with_id, 413, "payload_too_large")
            elif not _accepts_body_type(scope, headers):
                await self._refuse(scope, receive, send_with_id, 415, "unsupported_media_type")
            else:
                await self.app(scope, self._capped(receive), send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(route, scope["method"], status, seconds)
            self._log(scope, route, status, seconds)

    def _log(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        if not self.access_log.enabled:
            return
        state = scope["state"]
        fields = {
            "request_id": state.get("request_id"),
            "client_id": state.get("client_id"),
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        self.access_log.write(fields)

    def _capped(self, receive: Receive) -> Receive:
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return capped_receive

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str
    ) -> None:
        message = {
            413: f"The request body is larger than {self.max_body_bytes} bytes.",
            415: "Send the request body as JSON (Content-Type: application/json).",
        }[status]
        await error_response(scope, status, code, message)(scope, receive, send)


WATCHED = (b"x-request-id", b"content-length", b"content-type")
WITH_BODY = ("POST", "PUT", "PATCH")


def _watched_headers(scope: Scope) -> dict[bytes, bytes]:
    """The few request headers this middleware reads, in one pass (first one wins)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in WATCHED and name not in found:
            found[name] = value
    return found


def _request_id(headers: dict[bytes, bytes]) -> str:
    candidate = headers.get(b"x-request-id", b"").decode("latin-1")
    return candidate if REQUEST_ID.match(candidate) else random_hex(16)


def _declared_length(headers: dict[bytes, bytes]) -> int:
    value = headers.get(b"content-length", b"")
    return int(value) if value.isdigit() else 0


def _accepts_body_type(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Bodies are JSON: any other declared type is refused; none is read as JSON."""
    if scope["method"] not in WITH_BODY:
        return True
    value = headers.get(b"content-type")
    if value is None:
        # Name the type, so FastAPI parses the body as JSON.
        scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
        return True
    media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


def _route_template(scope: Scope) -> str:
    """The matched route's template: raw paths would leak ids and explode label counts."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
