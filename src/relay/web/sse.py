"""Server-sent events: a chat's events as `event:` and one `data:` line each, with
keep-alive comments while the backend is silent.

A stream always ends cleanly: with `message_end`, or with one `error` event,
even when its events fail with an exception after the answer began (the
status line is long sent: a cut-off body would be all the client saw).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from relay.backends.base import BackendError
from relay.chat.events import ChatEvent, ReplyDelta, ReplyFailed, ReplyFinished, ReplyStarted
from relay.storage.base import StoreUnavailable
from relay.storage.records import rfc3339
from relay.web.errors import backend_problem
from relay.web.views import usage_view

logger = logging.getLogger("relay.errors")
KEEPALIVE = b": keep-alive\n\n"
STORE_FAILED = "The database is unavailable; the reply could not be stored."
INTERNAL_ERROR = {"code": "internal_error", "message": "Something went wrong on our side."}


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


def failure(exc: Exception, request_id: str) -> bytes:
    """The `error` event for events that raised instead of ending with one."""
    if isinstance(exc, BackendError | StoreUnavailable):
        logger.warning(
            "stream failed", extra={"request_id": request_id, "error": type(exc).__name__}
        )
        return render(ReplyFailed(exc))
    # As for a 500: the traceback goes to the log, never to the client.
    logger.error("unhandled error in a stream", exc_info=exc, extra={"request_id": request_id})
    return encode("error", {"error": INTERNAL_ERROR})


async def with_keepalive(
    events: AsyncIterator[ChatEvent], interval: float, request_id: str = ""
) -> AsyncIterator[bytes]:
    """Render events; when none comes for `interval` seconds, send a comment line.

    If the events raise, the stream ends with an `error` event (unless it ended
    already) and no exception escapes.
    """
    pending: asyncio.Task[ChatEvent] | None = None
    ended = False  # message_end or error sent: the client has its last event
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
            except Exception as exc:
                pending = None
                last = failure(exc, request_id)
                if not ended:
                    yield last
                return
            pending = None
            ended = isinstance(event, ReplyFinished | ReplyFailed)
            yield render(event)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await events.aclose()  # type: ignore[attr-defined]


def sse_response(
    events: AsyncIterator[ChatEvent], interval: float, request_id: str
) -> StreamingResponse:
    return StreamingResponse(
        with_keepalive(events, interval, request_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
