"""Applying limits to requests: per client on protected routes, per address on /auth/token."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from relay.errors import RelayError
from relay.limits.policy import Decision
from relay.state import Relay, relay_of
from relay.storage.records import ClientRecord

logger = logging.getLogger("relay.limits")


class RateLimited(RelayError):
    def __init__(self, decision: Decision, message: str) -> None:
        retry_after = str(max(1, decision.reset_seconds))
        super().__init__(429, "rate_limited", message, headers={"Retry-After": retry_after})


def _add_headers(connection: HTTPConnection, decision: Decision) -> None:
    # RequestMiddleware puts these on the response, whatever the route returns.
    connection.scope["state"]["response_headers"] = decision.headers()


async def limit_client(
    connection: HTTPConnection, relay: Relay, client: ClientRecord, kinds: Sequence[str]
) -> None:
    """Count one request against each of the client's limits named in `kinds`."""
    shown: Decision | None = None
    for kind in kinds:
        rate = client.rate_limits.get(kind) or relay.settings.default_rate(kind)
        decision = await relay.limiter.hit(rate, kind, client.id)
        if shown is None or decision.remaining < shown.remaining or not decision.allowed:
            shown = decision
        if not decision.allowed:
            _add_headers(connection, decision)
            relay.metrics.rate_limited.labels(kind).inc()
            raise RateLimited(decision, f"Too many requests; the {kind} limit is {rate}.")
    if shown is not None:
        _add_headers(connection, shown)


def source_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


async def check_auth_failures(connection: HTTPConnection) -> None:
    """Refuse every exchange from an address past its failed-attempt limit."""
    relay = relay_of(connection)
    rate = relay.settings.rate_limit_auth_failures
    blocked = await relay.limiter.is_blocked(rate, "auth_failures", source_address(connection))
    if blocked is not None:
        _add_headers(connection, blocked)
        relay.metrics.rate_limited.labels("auth_failures").inc()
        raise RateLimited(blocked, "Too many failed attempts from this address; wait and retry.")


async def count_auth_failure(connection: HTTPConnection) -> None:
    relay = relay_of(connection)
    rate = relay.settings.rate_limit_auth_failures
    await relay.limiter.hit(rate, "auth_failures", source_address(connection))
