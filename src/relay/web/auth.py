"""Who a request acts for: its bearer token checked, its limits counted, its scope required."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import HTTPConnection

from relay.clients.keys import KEY_PATTERN
from relay.clients.service import Principal, Scope
from relay.clients.tokens import InvalidToken
from relay.limits.policy import LimitKind
from relay.web.context import context_of, relay_of

# The message never repeats the key: a key sent where a token goes may end up in logs.
KEY_AS_TOKEN = (
    "An API key is not an access token: trade it for one at POST /auth/token, "
    "then send that token as the bearer."
)


def bearer_token(connection: HTTPConnection) -> str:
    """The token of `Authorization: Bearer <token>`; InvalidToken if there is none."""
    # Straight from the ASGI scope: connection.headers would build a Headers object.
    for name, value in connection.scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                return str(token)
            break
    raise InvalidToken()


async def authorize(
    connection: HTTPConnection, scope: Scope, *, unless_full: Sequence[LimitKind] = ()
) -> Principal:
    """Authenticate, count the request against the client's general limit, check `scope`.

    In that order: a request with a bad token is a 401 whatever else is wrong
    with it (every route calls this before reading its parameters), and a
    request outside its scope still counts against its client's limit.
    `unless_full`: limits the route counts later, which refuse it now if full.
    """
    relay = relay_of(connection)
    token = bearer_token(connection)
    try:
        principal = await relay.clients.authenticate(token)
    except InvalidToken:
        if KEY_PATTERN.match(token):  # only once the token failed: no cost when it is good
            raise InvalidToken(KEY_AS_TOKEN) from None
        raise
    context = context_of(connection.scope)
    context.client_id = principal.client.id
    context.limit = await relay.limits.admit(principal.client, "default", unless_full=unless_full)
    principal.require(scope)
    return principal


async def admit(connection: HTTPConnection, principal: Principal, kind: LimitKind) -> None:
    """Count the request against the client's `kind` limit too; the tighter one is shown."""
    decision = await relay_of(connection).limits.admit(principal.client, kind)
    context = context_of(connection.scope)
    if context.limit is None or decision.remaining < context.limit.remaining:
        context.limit = decision


def source_address(connection: HTTPConnection) -> str:
    """The peer's address as Relay sees it (a reverse proxy's, behind one)."""
    return connection.client.host if connection.client else "unknown"
