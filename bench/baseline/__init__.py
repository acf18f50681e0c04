"""The baselines Relay is measured against, on the same server stack as Relay.

ceiling (target 3, and 3b, the lean ceiling) and naive (target 4); serve.py
runs one as a server: `python -m bench.baseline.serve NAME --port PORT`.
This module holds what they share with Relay: its FastAPI options and its
JSON rendering, so a baseline differs from Relay only by what it does per request.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

# The same FastAPI configuration as Relay's, its OpenTelemetry hooks off.
FASTAPI_OPTIONS: dict[str, Any] = {
    "openapi_url": None,
    "telemetry": {"tracing": False, "metrics": False, "logs": False},
}


class OrjsonResponse(JSONResponse):
    """The same orjson rendering as Relay's own JSONResponse."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
