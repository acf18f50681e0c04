"""POST /auth/token: trade an API key for a short-lived JWT."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from relay.routes.schemas import TokenRequest
from relay.state import relay_of

router = APIRouter(tags=["auth"])


@router.post("/auth/token", responses={401: {"description": "Invalid API key"}})
async def issue_token(body: TokenRequest, request: Request) -> dict[str, Any]:
    issued = await relay_of(request).clients.exchange(body.api_key)
    return {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "scopes": list(issued.scopes),
    }
