"""Target 3, the framework ceiling: FastAPI on Relay's stack answering fixed JSON.

Nothing else runs per request, so Relay's `GET /v1/tools` divided by this is
what auth, limits, metrics and logging cost together.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bench.baseline.serve import OrjsonResponse, port_from_argv, serve

# The same FastAPI configuration as Relay's (its OpenTelemetry hooks off).
app = FastAPI(
    default_response_class=OrjsonResponse,
    openapi_url=None,
    telemetry={"tracing": False, "metrics": False, "logs": False},
)
TOOLS: dict[str, Any] = {"tools": []}


@app.get("/v1/tools")
async def tools() -> dict[str, Any]:
    return TOOLS


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    serve(app, port_from_argv(__doc__ or "ceiling"))
