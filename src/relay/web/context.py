"""What one request carries from middleware to route and back: typed, in one place."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from relay.container import Relay
from relay.limits.decision import Decision
from relay.observability.timing import BackendTime

_KEY = "relay"  # the request's entry in the ASGI scope's `state`


@dataclass(slots=True)
class RequestContext:
    request_id: str
    client_id: str | None = None  # once the token is checked; for the access log
    limit: Decision | None = None  # the rate limit's state, sent back as headers
    started: float = 0.0  # for Server-Timing: when the request came in (perf_counter)
    backend: BackendTime | None = None  # and how long it waited on the backend


def start_context(
    scope: MutableMapping[str, Any], request_id: str, started: float, backend: BackendTime
) -> RequestContext:
    """Attach a new context to the request's scope (done once, by the outer middleware)."""
    context = RequestContext(request_id, started=started, backend=backend)
    scope.setdefault("state", {})[_KEY] = context
    return context


def context_of(scope: Any) -> RequestContext:
    """The request's context; a request that came in around the middleware gets a blank one."""
    context: RequestContext | None = scope.get("state", {}).get(_KEY)
    return context if context is not None else RequestContext("")


def relay_of(connection: HTTPConnection) -> Relay:
    """The running gateway's parts (set on the app by its lifespan)."""
    relay: Relay = connection.app.state.relay
    return relay
