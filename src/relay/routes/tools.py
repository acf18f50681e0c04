"""GET /v1/tools (scope `tools`): what the assistant can use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from relay.auth.deps import Principal, require_scope
from relay.routes.openapi import PROTECTED, errors
from relay.state import relay_of

router = APIRouter(tags=["tools"])


@router.get(
    "/v1/tools",
    responses=errors(*PROTECTED, 502, 503, 504),
)
async def tools(
    request: Request, principal: Annotated[Principal, Depends(require_scope("tools"))]
) -> dict[str, Any]:
    return {"tools": await relay_of(request).tools.list()}
