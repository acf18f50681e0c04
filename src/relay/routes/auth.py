"""POST /auth/token: trade an API key for a short-lived JWT."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from relay.limits.deps import check_auth_failures, count_auth_failure
from relay.routes.openapi import errors
from relay.routes.schemas import TokenRequest
from relay.services.clients import InvalidApiKey
from relay.state import relay_of

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    responses=errors(401, 413, 415, 422, 429, 503),
)
async def issue_token(body: TokenRequest, request: Request) -> dict[str, Any]:
    relay = relay_of(request)
    await check_auth_failures(request)
    try:
        issued = await relay.clients.exchange(body.api_key)
    except InvalidApiKey:
        relay.metrics.token_exchanges.labels("invalid_api_key").inc()
        await count_auth_failure(request)
        raise
    relay.metrics.token_exchanges.labels("issued").inc()
    return {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "scopes": list(issued.scopes),
    }
