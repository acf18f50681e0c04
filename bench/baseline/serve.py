"""Run a baseline app on the same server stack as Relay: uvicorn, uvloop, httptools.

Relay's `serve` leaves uvicorn on `auto`, which picks uvloop and httptools when
installed; the baselines name them explicitly so a missing extra fails loudly
instead of quietly measuring the slower pure-Python stack.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    """The same orjson rendering as Relay's own JSONResponse."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def port_from_argv(description: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    port: int = parser.parse_args().port
    return port


def serve(app: Any, port: int) -> None:
    """One worker on 127.0.0.1, no access log (a baseline does nothing else)."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )
