"""Each request observed once it is answered: counted in the metrics, one access line."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.observability.access_log import AccessLog
from relay.observability.metrics import Metrics
from relay.web.context import context_of


class AccessMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = AccessLog(logging.getLogger("relay.access"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before it answers

        async def send_watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(route, scope["method"], status, seconds)
            if self.access_log.enabled:
                context = context_of(scope)
                self.access_log.write(
                    {
                        "request_id": context.request_id,
                        "client_id": context.client_id,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    }
                )


def _route_template(scope: Scope) -> str:
    """The matched route's template: raw paths would leak ids and explode label counts."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
