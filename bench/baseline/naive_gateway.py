"""Target 4, the naive forwarding gateway: what forwarding alone costs on Relay's stack.

Per request: PyJWT decode (HS256, audience and issuer checked, as Relay does),
parse the body, forward to the stub over one shared aiohttp session (the client
Relay uses), answer the stub's JSON. No store, limits, metrics or logs, so
Relay's chat divided by this is the price of everything Relay adds.

Environment: BENCH_JWT_SECRET, BENCH_UPSTREAM_URL, BENCH_JWT_ISSUER, BENCH_JWT_AUDIENCE.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import jwt
import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.baseline.serve import OrjsonResponse, port_from_argv, serve

SECRET = os.environ["BENCH_JWT_SECRET"]
UPSTREAM = os.environ["BENCH_UPSTREAM_URL"].rstrip("/") + "/v1/chat"
ISSUER = os.environ.get("BENCH_JWT_ISSUER", "relay")
AUDIENCE = os.environ.get("BENCH_JWT_AUDIENCE", "relay-api")
UNAUTHORIZED = {"error": {"code": "invalid_token", "message": "The token is not valid."}}
session: aiohttp.ClientSession | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global session
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(sock_connect=60, sock_read=60),
    )
    yield
    await session.close()


# The same FastAPI configuration as Relay's (its OpenTelemetry hooks off).
app = FastAPI(
    default_response_class=OrjsonResponse,
    lifespan=lifespan,
    openapi_url=None,
    telemetry={"tracing": False, "metrics": False, "logs": False},
)


@app.post("/v1/chat")
async def chat(request: Request) -> Response:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    except jwt.PyJWTError:
        return OrjsonResponse(UNAUTHORIZED, status_code=401)
    body: dict[str, Any] = orjson.loads(await request.body())
    payload = {"messages": [{"role": "user", "content": body["message"]}], "stream": False}
    assert session is not None
    async with session.post(UPSTREAM, json=payload) as upstream:
        data = await upstream.json(content_type=None, loads=orjson.loads)
    return OrjsonResponse(data, status_code=upstream.status)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    serve(app, port_from_argv(__doc__ or "naive gateway"))
