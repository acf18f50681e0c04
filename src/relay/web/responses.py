"""Relay's responses: JSON rendered with orjson (faster than the standard library's)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse

from relay.jsonutil import dumps


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)
