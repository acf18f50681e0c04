"""Target 3b, the lean ceiling: the framework ceiling through Relay's LeanRoute.

Relay's hot routes skip FastAPI's per-request handler (relay.routes.lean);
the ceiling of target 3 still pays it. The same fixed reply through the same
route class is the bare reply Relay's `GET /v1/tools` really starts from, so
Relay's tools divided by this is what auth, limits, metrics and logging cost.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from bench.baseline.serve import port_from_argv, serve
from relay.routes.lean import LeanRoute

router = APIRouter(route_class=LeanRoute)
TOOLS = b'{"tools":[]}'


@router.get("/v1/tools")
async def tools(request: Request) -> Response:
    return Response(TOOLS, media_type="application/json")


@router.get("/health")
async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


# The same FastAPI configuration as Relay's (its OpenTelemetry hooks off);
# routes added as Relay adds them (see relay.app.create_app).
app = FastAPI(openapi_url=None, telemetry={"tracing": False, "metrics": False, "logs": False})
app.router.routes[0:0] = router.routes


if __name__ == "__main__":
    serve(app, port_from_argv(__doc__ or "lean ceiling"))
