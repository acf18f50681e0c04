"""Target 4, the naive forwarding gateway: what forwarding alone costs on Relay's stack.

Per request: PyJWT decode (HS256, audience and issuer checked, as Relay does),
parse the body, forward to the stub over one shared aiohttp session (the client
Relay uses), answer the stub's JSON. No store, limits, metrics or logs, so
Relay's chat over this is the price of everything Relay adds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import jwt
import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.baseline import FASTAPI_OPTIONS, OrjsonResponse

UNAUTHORIZED = {"error": {"code": "invalid_token", "message": "The token is not valid."}}


class _Upstream:
    """The one aiohttp session, open for the app's lifespan."""

    session: aiohttp.ClientSession | None = None


def naive_app(
    secret: str, upstream_url: str, issuer: str = "relay", audience: str = "relay-api"
) -> FastAPI:
    """The gateway, checking tokens signed with `secret` and forwarding to `upstream_url`."""
    chat_url = upstream_url.rstrip("/") + "/v1/chat"
    upstream = _Upstream()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        upstream.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(sock_connect=60, sock_read=60),
        )
        yield
        await upstream.session.close()

    app = FastAPI(default_response_class=OrjsonResponse, lifespan=lifespan, **FASTAPI_OPTIONS)

    @app.post("/v1/chat")
    async def chat(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            jwt.decode(token, secret, algorithms=["HS256"], audience=audience, issuer=issuer)
        except jwt.PyJWTError:
            return OrjsonResponse(UNAUTHORIZED, status_code=401)
        body: dict[str, Any] = orjson.loads(await request.body())
        payload = {"messages": [{"role": "user", "content": body["message"]}], "stream": False}
        assert upstream.session is not None
        async with upstream.session.post(chat_url, json=payload) as answer:
            data = await answer.json(content_type=None, loads=orjson.loads)
        return OrjsonResponse(data, status_code=answer.status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
