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
from relay.web.views import reply_view

router = APIRouter(tags=["chat"], route_class=Route)

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The reply, or its SSE stream"},
    **errors(*PROTECTED, 404, 409, 413, 415, 502, 503, 504),
}
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 255}


@router.post(
    "/v1/chat",
    responses=RESPONSES,
    openapi_extra=documented(body=ChatBody, headers={"Idempotency-Key": IDEMPOTENCY_KEY}),
)
async def chat(request: Request) -> Response:
    principal = await authorize(request, "chat", unless_full=("chat",))
    body = await read_json(request, ChatBody)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidInput("Idempotency-Key", "It must be 1 to 255 characters.")
    relay = relay_of(request)
    answer = await relay.chat.answer(
        principal.client.id,
        ChatInput(body.message, body.conversation_id, body.model, body.system, body.stream),
        request_id=context_of(request.scope).request_id,
        idempotency_key=idempotency_key,
        admit=lambda: admit(request, principal, "chat"),
    )
    if isinstance(answer, Reply):
        return JSONResponse(reply_view(answer))
    return sse_response(answer, relay.settings.sse_keepalive_seconds)
