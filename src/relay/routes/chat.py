"""POST /v1/chat: one message in, the assistant's reply out (JSON or SSE)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from relay.auth.deps import require_scope
from relay.errors import ValidationFailed
from relay.responses import JSONResponse
from relay.routes.lean import LeanRoute
from relay.routes.openapi import PROTECTED, errors
from relay.routes.schemas import NO_NUL, Id, Strict, read_json
from relay.routes.sse import sse_response
from relay.services.chat import ChatInput
from relay.state import relay_of

router = APIRouter(tags=["chat"], route_class=LeanRoute)
authorize = require_scope("chat", limits=("default", "chat"))

CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The reply, or its SSE stream"},
    **errors(*PROTECTED, 404, 409, 413, 415, 502, 503, 504),
}


class ChatBody(Strict):
    message: str = Field(min_length=1, pattern=NO_NUL)
    conversation_id: Id | None = None
    stream: bool = False
    model: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    system: str | None = Field(None, max_length=100_000, pattern=NO_NUL)


IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 255}
# The body and the header are read by hand (measured: FastAPI's parameter
# machinery costs about 100 us a request on this route); the schema still
# documents both, so /docs and the OpenAPI fuzzer see exactly what is checked.
CHAT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ChatBody.model_json_schema()}},
    },
    "parameters": [
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": IDEMPOTENCY_KEY}
    ],
}


@router.post("/v1/chat", responses=CHAT_RESPONSES, openapi_extra=CHAT_OPENAPI)
async def chat(request: Request) -> Response:
    principal = await authorize(request)  # called, not a Depends: see relay.auth.deps
    body = await read_json(request, ChatBody)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationFailed("Idempotency-Key", "It must be 1 to 255 characters.")
    relay = relay_of(request)
    answer = await relay.chat.answer(
        principal.client.id,
        ChatInput(body.message, body.conversation_id, body.model, body.system, body.stream),
        request_id=request.scope["state"]["request_id"],
        idempotency_key=idempotency_key,
    )
    if isinstance(answer, dict):
        return JSONResponse(answer)
    return sse_response(answer, relay.settings.sse_keepalive_seconds)
