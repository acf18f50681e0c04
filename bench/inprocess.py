"""`python -m bench inprocess TARGET [REQUESTS] [CONCURRENCY]`: one request's cost, no server.

The ASGI app is called directly. TARGET: relay-tools, relay-chat,
relay-history, ceiling or ceiling-lean (GET /v1/tools) or naive (POST
/v1/chat). Relay runs on a fresh SQLite file, or on DATABASE_URL (an empty
PostgreSQL database) when set; chat uses the echo backend, or the upstream
one when UPSTREAM_URL is set (point it at the bench's nginx stub, or any
server of the upstream protocol). Prints µs of CPU per request.

Without a server, wrk or nginx on the same cores, the figure moves much less
than req/s. For a figure that does not move at all, count instructions: run it
twice under `valgrind --tool=callgrind` with different REQUESTS and divide the
difference of the totals by the difference of the counts (startup cancels out).
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import tempfile
import time
from typing import Any

import jwt
import uvloop
from starlette.types import ASGIApp, Message

from bench.baseline.serve import app_for
from bench.relay_api import Settings, create_app, log_config

SECRET = "bench-inprocess-" + "x" * 32
CHAT_BODY = b'{"message":"Hello Relay, how are you today?"}'
ROUTES = {
    "tools": ("GET", "/v1/tools", b""),
    "history": ("GET", "/v1/history", b""),
    "chat": ("POST", "/v1/chat", CHAT_BODY),
}


def scope_for(app: Any, method: str, path: str, token: str, body: bytes) -> dict[str, Any]:
    """An HTTP scope as uvicorn would pass it, with the bearer token and the body's headers."""
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "app": app,
    }


async def drive(
    app: ASGIApp, template: dict[str, Any], body: bytes, count: int, width: int
) -> float:
    """CPU µs per request over `count` requests, `width` at a time (after a warm-up)."""
    statuses: dict[int, int] = {}

    async def one() -> None:
        messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app({**template, "state": {}}, receive, send)

    async def worker(requests: int) -> None:
        for _ in range(requests):
            await one()

    await worker(200)
    per_worker = max(1, count // width)
    started = time.process_time()
    await asyncio.gather(*(worker(per_worker) for _ in range(width)))
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"bench inprocess: answers other than 200: {statuses}")
    return spent / (per_worker * width) * 1e6


def quiet_logs() -> None:
    """Relay's own logging at info (the access line is part of a request's cost), to devnull."""
    logging.config.dictConfig(log_config("info", "json"))
    for handler in logging.getLogger("relay").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)


async def relay(endpoint: str, count: int, width: int) -> float:
    """CPU µs per request of Relay's `endpoint` (tools, chat or history) on a fresh store."""
    database = os.environ.get("DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/relay.db"
    upstream = os.environ.get("UPSTREAM_URL")
    settings = Settings(
        database_url=database,
        relay_backend="upstream" if upstream else "echo",
        upstream_url=upstream,
        jwt_secret=SECRET,
        rate_limit_default="1000000/second",
        rate_limit_chat="1000000/second",
        bcrypt_rounds=4,
    )
    quiet_logs()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        service = app.state.relay.clients
        new = await service.create("bench", scopes=["chat", "history", "tools"])
        token = (await service.exchange(new.api_key)).access_token
        if endpoint == "history":  # a full page to read: 50 of the messages chats stored
            chat = scope_for(app, "POST", "/v1/chat", token, CHAT_BODY)
            await drive(app, chat, CHAT_BODY, 50, 1)
        method, path, body = ROUTES[endpoint]
        return await drive(app, scope_for(app, method, path, token, body), body, count, width)


async def baseline(name: str, count: int, width: int) -> float:
    """CPU µs per request of a baseline (ceiling, ceiling-lean or naive)."""
    upstream = os.environ.get("UPSTREAM_URL", "")
    if name == "naive" and not upstream:
        raise SystemExit("bench inprocess: naive forwards to UPSTREAM_URL; set it")
    now = int(time.time())
    claims = {"sub": "cl_bench", "iat": now, "exp": now + 3600, "iss": "relay", "aud": "relay-api"}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    app = app_for(name, {"BENCH_JWT_SECRET": SECRET, "BENCH_UPSTREAM_URL": upstream})
    method, path, body = ROUTES["chat" if name == "naive" else "tools"]
    async with app.router.lifespan_context(app):
        return await drive(app, scope_for(app, method, path, token, body), body, count, width)


def main(target: str = "relay-tools", count: int = 4000, width: int = 16) -> int:
    """Measure `count` requests to `target`, `width` at a time, and print the CPU per request."""
    if target.startswith("relay-"):
        cost = uvloop.run(relay(target.removeprefix("relay-"), count, width))
    else:
        cost = uvloop.run(baseline(target, count, width))
    print(f"{target}: {cost:.1f} us CPU per request ({count} requests, {width} at a time)")
    return 0
