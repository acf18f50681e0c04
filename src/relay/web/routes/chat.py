"""POST /v1/chat: one message in, the assistant's reply out (JSON or SSE)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.chat.events import Reply
from relay.chat.service import ChatInput
from relay.errors import InvalidInput
from relay.web.auth import admit, authorize
from relay.web.context import context_of, relay_of
from relay.web.openapi import PROTECTED, documented, errors
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.schemas import ChatBody, read_json
from relay.web.sse import sse_response
from relay.web.views import ChatReply, reply_view

router = APIRouter(tags=["chat"], route_class=Route)

# Each event of the stream, as an SSE parser hands it over (the way OpenAPI 3.2 describes
# event streams): its name, and its data, one JSON object (the description says which).
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["message_start", "delta", "message_end", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
        "description": 'The reply as JSON, or with `"stream": true` its server-sent events',
    },
    **errors(*PROTECTED, 404, 409, 413, 415, 502, 503, 504),
}
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 255}


DESCRIPTION = """\
Send one message; the assistant's reply comes back. Without `conversation_id`
a new conversation starts. The user's message and the reply are both stored.

With `Idempotency-Key` (1 to 255 characters, kept 24 h per client), a retry
with the same body gets the first answer again without calling the backend;
another body with the same key, or a retry while the first still runs, is
`409 idempotency_conflict`. A first request that failed without freeing its key
(the database failed too) holds it at most `IDEMPOTENCY_LEASE` seconds (30 by
default); a retry then runs.

**Streaming.** With `"stream": true` the answer is `text/event-stream`: each
event is an `event:` line and one `data:` line of JSON, then a blank line.

- `message_start` `{"id", "conversation_id", "model"}`: once, first.
- `delta` `{"text"}`: one or more; joined, they are the reply as stored.
- `message_end` `{"id", "usage": {"input_tokens", "output_tokens"}, "created_at"}`:
  once, last.
- `error` `{"error": {"code", "message"}}`: instead of `message_end` when the
  stream breaks after it started (the text so far is stored `incomplete`); the
  codes are those of the error answers (`backend_error`, `backend_timeout`, ...).
- `: keep-alive`: a comment line every 15 s while the backend is silent; skip it.

A failure before the first event is a plain error answer, not a stream.
"""


@router.post(
    "/v1/chat",
    response_model=ChatReply,
    responses=RESPONSES,
    description=DESCRIPTION,
    openapi_extra=documented(
        protected=True, body=ChatBody, headers={"Idempotency-Key": IDEMPOTENCY_KEY}
    ),
)
async def chat(request: Request) -> Response:
    principal = await authorize(request, "chat", unless_full=("chat",))
    body = await read_json(request, ChatBody)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidInput("Idempotency-Key", "It must be 1 to 255 characters.")
    relay = relay_of(request)
    request_id = context_of(request.scope).request_id
    answer = await relay.chat.answer(
        principal.client.id,
        ChatInput(body.message, body.conversation_id, body.model, body.system, body.stream),
        request_id=request_id,
        idempotency_key=idempotency_key,
        admit=lambda: admit(request, principal, "chat"),
    )
    if isinstance(answer, Reply):
        return JSONResponse(reply_view(answer))
    return sse_response(answer, relay.settings.sse_keepalive_seconds, request_id)
