"""Server-sent events: a chat's events as `event:` and one `data:` line each, with
keep-alive comments while the backend is silent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from relay.chat.events import ChatEvent, ReplyDelta, ReplyFinished, ReplyStarted
from relay.storage.base import StoreUnavailable
from relay.storage.records import rfc3339
from relay.web.errors import backend_problem
from relay.web.views import usage_view

KEEPALIVE = b": keep-alive\n\n"
STORE_FAILED = "The database is unavailable; the reply could not be stored."


def encode(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def render(event: ChatEvent) -> bytes:
    """One chat event as the stream sends it (docs/API.md lists the events)."""
    if isinstance(event, ReplyDelta):
        return encode("delta", {"text": event.text})
    if isinstance(event, ReplyStarted):
        start = {"id": event.id, "conversation_id": event.conversation_id, "model": event.model}
        return encode("message_start", start)
    if isinstance(event, ReplyFinished):
        end = {
            "id": event.id,
            "usage": usage_view(event.usage),
            "created_at": rfc3339(event.created_at),
        }
        return encode("message_end", end)
    if isinstance(event.error, StoreUnavailable):
        code, message = "database_unavailable", STORE_FAILED
    else:
        problem = backend_problem(event.error)
        code, message = problem.code, problem.message
    return encode("error", {"error": {"code": code, "message": message}})


async def with_keepalive(events: AsyncIterator[ChatEvent], interval: float) -> AsyncIterator[bytes]:
    """Render events; when none comes for `interval` seconds, send a comment line."""
    pending: asyncio.Task[ChatEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield KEEPALIVE
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield render(event)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await events.aclose()  # type: ignore[attr-defined]


def sse_response(events: AsyncIterator[ChatEvent], interval: float) -> StreamingResponse:
    return StreamingResponse(
        with_keepalive(events, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
