"""Server-sent events: `event:` and one `data:` line each, keep-alive comments while waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

KEEPALIVE = b": keep-alive\n\n"
Event = tuple[str, dict[str, Any]]


def encode(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def with_keepalive(events: AsyncIterator[Event], interval: float) -> AsyncIterator[bytes]:
    """Encode events; when none comes for `interval` seconds, send a comment line."""
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield KEEPALIVE
                continue
            try:
                name, data = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield encode(name, data)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await events.aclose()  # type: ignore[attr-defined]


def sse_response(events: AsyncIterator[Event], interval: float) -> StreamingResponse:
    return StreamingResponse(
        with_keepalive(events, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
