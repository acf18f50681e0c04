"""Run a baseline app on the same server stack as Relay: uvicorn, uvloop, httptools.

Relay's `serve` leaves uvicorn on `auto`, which picks uvloop and httptools when
installed; the baselines name them explicitly so a missing extra fails loudly
instead of quietly measuring the slower pure-Python stack.
"""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any

import orjson
import uvicorn
from starlette.responses import JSONResponse

from relay.app import YOUNG_COLLECTION_THRESHOLD


class OrjsonResponse(JSONResponse):
    """The same orjson rendering as Relay's own JSONResponse."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def tune_collector_like_relay() -> None:
    """Relay's collector settings (relay.app.collector_tuned), to compare tails on equal terms.

    Off by default: a naive gateway leaves the collector alone, and its full
    passes over the start-up heap are part of its tail. With this on, the
    tails differ only by what each does per request.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def port_from_argv(description: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    port: int = parser.parse_args().port
    return port


def serve(app: Any, port: int) -> None:
    """One worker on 127.0.0.1, no access log (a baseline does nothing else)."""
    if os.environ.get("BENCH_BASELINE_TUNED_GC", "") not in ("", "0"):
        tune_collector_like_relay()
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
