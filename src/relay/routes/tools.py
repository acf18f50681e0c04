"""GET /v1/tools (scope `tools`): what the assistant can use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from relay.auth.deps import require_scope
from relay.routes.openapi import PROTECTED, errors
from relay.state import relay_of

router = APIRouter(tags=["tools"])
authorize = require_scope("tools")


@router.get(
    "/v1/tools",
    responses=errors(*PROTECTED, 502, 503, 504),
)
async def tools(request: Request) -> dict[str, Any]:
    await authorize(request)  # called, not a Depends: see relay.auth.deps
    return {"tools": await relay_of(request).tools.list()}
