"""GET /health: Relay's own state and its dependencies', without auth or secrets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.web.context import relay_of
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.views import HealthReport, health_view

router = APIRouter(tags=["health"], route_class=Route)


@router.get(
    "/health",
    response_model=HealthReport,
    responses={
        503: {
            "model": HealthReport,
            "description": "The database is unreachable (same body, status down)",
        }
    },
)
async def health(request: Request) -> Response:
    """Relay's state and each dependency's, timed. No auth; never a secret or a URL.

    `degraded`: Relay serves, but a dependency (the backend, Redis) is down.
    """
    report = await relay_of(request).health.report()
    return JSONResponse(health_view(report), status_code=503 if report.status == "down" else 200)
