"""Applying limits to requests: per client on protected routes, per address on /auth/token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NoReturn

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


def _refuse(
    connection: HTTPConnection, relay: Relay, kind: str, rate: str, refusal: Decision
) -> NoReturn:
    _add_headers(connection, refusal)
    relay.metrics.rate_limited.labels(kind).inc()
    raise RateLimited(refusal, f"Too many requests; the {kind} limit is {rate}.")


async def limit_client(
    connection: HTTPConnection, relay: Relay, client: ClientRecord, kinds: Sequence[str]
) -> None:
    """Count one request against each of the client's limits named in `kinds`, or none.

    With several limits, each is checked before any is counted: a chat refused
    by the chat limit must not use up the client's general limit too. (In
    memory the check and the count are one step; on Redis a request racing in
    between can still be counted by one limit and refused by the next.)
    """
    rates = [
        (kind, client.rate_limits.get(kind) or relay.settings.default_rate(kind)) for kind in kinds
    ]
    if len(rates) > 1:
        for kind, rate in rates:
            refusal = await relay.limiter.is_blocked(rate, kind, client.id)
            if refusal is not None:
                _refuse(connection, relay, kind, rate, refusal)
    shown: Decision | None = None
    for kind, rate in rates:
        decision = await relay.limiter.hit(rate, kind, client.id)
        if not decision.allowed:
            _refuse(connection, relay, kind, rate, decision)
        if shown is None or decision.remaining < shown.remaining:
            shown = decision
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
