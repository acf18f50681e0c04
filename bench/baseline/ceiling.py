"""Target 3, the framework ceiling, and 3b, the lean ceiling: fixed JSON, nothing else.

The plain ceiling is FastAPI on Relay's stack answering `GET /v1/tools` with
a plain route, so Relay's tools over it is what Relay costs against a plain
FastAPI route (issue 5's ceiling).

Relay's hot routes skip FastAPI's per-request handler through Relay's own
route class; the plain ceiling still pays that handler. The lean ceiling
gives the same fixed reply through the same route class: the bare reply
Relay's `GET /v1/tools` really starts from, so Relay's tools over it is what
auth, limits, metrics and logging cost (a stricter reading of ours).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from bench.baseline import FASTAPI_OPTIONS, OrjsonResponse
from bench.relay_api import Route

TOOLS: dict[str, Any] = {"tools": []}
TOOLS_BYTES = b'{"tools":[]}'


def plain_app() -> FastAPI:
    """The framework ceiling: plain FastAPI routes, orjson rendering."""
    app = FastAPI(default_response_class=OrjsonResponse, **FASTAPI_OPTIONS)

    @app.get("/v1/tools")
    async def tools() -> dict[str, Any]:
        return TOOLS

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def lean_app() -> FastAPI:
    """The lean ceiling: the same answers through Relay's route class."""
    router = APIRouter(route_class=Route)

    @router.get("/v1/tools")
    async def tools(request: Request) -> Response:
        return Response(TOOLS_BYTES, media_type="application/json")

    @router.get("/health")
    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    # The app's own routes, ahead of FastAPI's docs routes, as Relay's create_app gives them.
    return FastAPI(routes=router.routes, **FASTAPI_OPTIONS)
