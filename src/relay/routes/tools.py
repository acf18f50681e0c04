"""GET /v1/tools (scope `tools`): what the assistant can use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from relay.auth.deps import require_scope
from relay.routes.lean import LeanRoute
from relay.routes.openapi import PROTECTED, errors
from relay.state import relay_of

router = APIRouter(tags=["tools"], route_class=LeanRoute)
authorize = require_scope("tools")


class Tool(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolList(BaseModel):
    tools: list[Tool]


@router.get(
    "/v1/tools",
    response_model=ToolList,  # documents the body; the route sends it pre-encoded
    responses=errors(*PROTECTED, 502, 503, 504),
)
async def tools(request: Request) -> Response:
    await authorize(request)  # called, not a Depends: see relay.auth.deps
    # The list changes only when it is refreshed, so its JSON is encoded then,
    # not on every request (FastAPI would validate and encode the dict each time).
    body = await relay_of(request).tools.rendered()
    return Response(body, media_type="application/json")
