"""Pure ASGI middleware: request id, body cap and the access log, with no per-request task."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.errors import error_response
from relay.observability.metrics import Metrics

logger = logging.getLogger("relay.access")
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
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
            if _declared_length(scope) > self.max_body_bytes:
                await self._refuse(scope, receive, send_with_id, 413, "payload_too_large")
            elif not _json_or_empty(scope):
                await self._refuse(scope, receive, send_with_id, 415, "unsupported_media_type")
            else:
                _default_to_json(scope)
                await self.app(scope, self._capped(receive), send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(route, scope["method"], status, seconds)
            _log_request(scope, route, status, seconds)

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


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if REQUEST_ID.match(candidate):
                return candidate
            break
    return secrets.token_hex(16)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _json_or_empty(scope: Scope) -> bool:
    """Bodies are JSON: a missing Content-Type is read as JSON, any other type is refused."""
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return True
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return True


def _route_template(scope: Scope) -> str:
    """The matched route's template: raw paths would leak ids and explode label counts."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _default_to_json(scope: Scope) -> None:
    """Name the JSON type when a body came without one, so FastAPI parses it as JSON."""
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return
    if any(name == b"content-type" for name, _ in scope["headers"]):
        return
    scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]


def _log_request(scope: Scope, route: str, status: int, seconds: float) -> None:
    if not logger.isEnabledFor(logging.INFO):
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
    # Built and handled directly: logger.info() would also walk the stack to
    # find its caller, which is the same line every time (half the cost, 10 us).
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 0, "request", (), None, None, fields
    )
    logger.handle(record)
