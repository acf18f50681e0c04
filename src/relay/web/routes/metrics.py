"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from relay.web.context import relay_of
from relay.web.routing import Route

router = APIRouter(tags=["health"], route_class=Route)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latencies, backend calls, token exchanges."""
    return Response(relay_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
