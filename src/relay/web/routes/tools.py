"""GET /v1/tools (scope `tools`): what the assistant can use."""

from __future__ import annotations

from functools import lru_cache

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.tools.service import ToolList
from relay.web.auth import authorize
from relay.web.context import relay_of
from relay.web.openapi import PROTECTED, documented, errors
from relay.web.routing import Route
from relay.web.views import ToolListBody, tools_view

router = APIRouter(tags=["tools"], route_class=Route)


@lru_cache(maxsize=8)
def encoded(tools: ToolList) -> bytes:
    """The body of one list: it changes only when the list is refreshed (a new ToolList)."""
    return orjson.dumps(tools_view(tools))


@router.get(
    "/v1/tools",
    response_model=ToolListBody,
    responses=errors(*PROTECTED, 502, 503, 504),
    openapi_extra=documented(protected=True),
)
async def tools(request: Request) -> Response:
    """The tools the assistant can use: the backend's own and the configured registry's."""
    await authorize(request, "tools")
    tool_list = await relay_of(request).tools.list()
    return Response(encoded(tool_list), media_type="application/json")
