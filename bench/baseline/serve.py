"""`python -m bench.baseline.serve NAME --port PORT`: one baseline as a server.

NAME is ceiling, ceiling-lean or naive. It runs on the same server stack as
Relay: uvicorn, uvloop, httptools, one worker on 127.0.0.1, no access log.
Relay's `serve` leaves uvicorn on `auto`, which picks uvloop and httptools when
installed; the baselines name them explicitly so a missing extra fails loudly
instead of quietly measuring the slower pure-Python stack.

Environment: BENCH_JWT_SECRET and BENCH_UPSTREAM_URL (naive; BENCH_JWT_ISSUER
and BENCH_JWT_AUDIENCE default to Relay's), BENCH_BASELINE_TUNED_GC=1 for
Relay's collector settings.
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Mapping

import uvicorn
from fastapi import FastAPI

from bench.baseline.ceiling import lean_app, plain_app
from bench.baseline.naive import naive_app
from bench.relay_api import YOUNG_COLLECTION_THRESHOLD

NAMES = ("ceiling", "ceiling-lean", "naive")


def app_for(name: str, env: Mapping[str, str]) -> FastAPI:
    """Baseline `name`, configured from `env` (naive needs BENCH_JWT_SECRET, BENCH_UPSTREAM_URL)."""
    if name == "ceiling":
        return plain_app()
    if name == "ceiling-lean":
        return lean_app()
    if name == "naive":
        return naive_app(
            env["BENCH_JWT_SECRET"],
            env["BENCH_UPSTREAM_URL"],
            env.get("BENCH_JWT_ISSUER", "relay"),
            env.get("BENCH_JWT_AUDIENCE", "relay-api"),
        )
    raise ValueError(f"unknown baseline {name!r}; use one of {NAMES}")


def tune_collector_like_relay() -> None:
    """Relay's collector settings (see its create_app), to compare tails on equal terms.

    Off by default: a naive gateway leaves the collector alone, and its full
    passes over the start-up heap are part of its tail. With this on, the
    tails differ only by what each does per request.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def serve(app: FastAPI, port: int) -> None:
    """Serve `app` until stopped: one worker on 127.0.0.1, no access log."""
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


def main() -> None:
    """Parse NAME and --port, build the app, tune the collector if asked, serve."""
    parser = argparse.ArgumentParser(description="Serve one benchmark baseline.")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = app_for(args.name, os.environ)
    if os.environ.get("BENCH_BASELINE_TUNED_GC", "") not in ("", "0"):
        tune_collector_like_relay()
    serve(app, args.port)


if __name__ == "__main__":
    main()
