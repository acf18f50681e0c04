"""GET /v1/tools (scope `tools`): what the assistant can use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from relay.auth.deps import Principal, require_scope
from relay.state import relay_of

router = APIRouter(tags=["tools"])


@router.get(
    "/v1/tools",
    responses={
        401: {"description": "Invalid token"},
        403: {"description": "Missing scope `tools`"},
        429: {"description": "Rate limited"},
        502: {"description": "Backend error"},
    },
)
async def tools(
    request: Request, principal: Annotated[Principal, Depends(require_scope("tools"))]
) -> dict[str, Any]:
    return {"tools": await relay_of(request).tools.list()}
