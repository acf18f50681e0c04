"""GET /health: Relay's own state and its dependencies', without auth or secrets."""

from __future__ import annotations

from fastapi import APIRouter, Request

from relay import __version__
from relay.responses import JSONResponse
from relay.state import relay_of

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"description": "The database is unreachable (same body, status down)"}},
)
async def health(request: Request) -> JSONResponse:
    status_code, body = await relay_of(request).health.report()
    return JSONResponse({"version": __version__, **body}, status_code=status_code)
