"""POST /auth/token: trade an API key for a short-lived JWT."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.clients.service import InvalidApiKey
from relay.web.auth import source_address
from relay.web.context import relay_of
from relay.web.openapi import documented, errors
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.schemas import TokenRequest, read_json
from relay.web.views import IssuedToken

router = APIRouter(tags=["auth"], route_class=Route)


@router.post(
    "/auth/token",
    response_model=IssuedToken,
    responses=errors(401, 413, 415, 422, 429, 503),
    openapi_extra=documented(body=TokenRequest),
)
async def issue_token(request: Request) -> Response:
    """Trade an API key for a short-lived access token (a JWT).

    A wrong, disabled or deleted key is `401 invalid_api_key`; failed exchanges
    are limited per source address (`429` once past `RATE_LIMIT_AUTH_FAILURES`),
    an exchange still being checked counting as a failed one until it is not.
    """
    relay = relay_of(request)
    body = await read_json(request, TokenRequest)
    address = source_address(request)
    async with relay.limits.exchange_attempt(address) as attempt:
        try:
            issued = await relay.clients.exchange(body.api_key, source=address)
        except InvalidApiKey:
            relay.metrics.token_exchanges.labels("invalid_api_key").inc()
            await attempt.failed()
            raise
    relay.metrics.token_exchanges.labels("issued").inc()
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "scopes": list(issued.scopes),
        }
    )
