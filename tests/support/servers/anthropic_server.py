"""A fake Anthropic Messages API: POST /v1/messages (plain and SSE) and GET /v1/models."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from relay.backends.base import ChatRequest, ToolSpec
from tests.support.servers.base import (
    BODY,
    PLAN,
    Answer,
    ErrorKind,
    FakeServer,
    Json,
    SseEvent,
    planned,
    split_words,
    sse_json,
    turns,
)

MODEL_ID = "claude-test"
ERROR_TYPES = {
    "rate_limit": "rate_limit_error",
    "overloaded": "overloaded_error",
    "auth": "authentication_error",
    "server": "api_error",
}


class AnthropicServer(FakeServer):
    overloaded_status = 529
    chat_path = "/v1/messages"
    stream_marker: ClassVar[Json] = {"stream": True}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._models)

    def key_ok(self, request: web.Request) -> bool:
        """x-api-key, or a bearer token: the SDK (2.x) sends its API key the latter way."""
        return request.headers.get("x-api-key") == self.api_key or self.bearer_ok(request)

    def error_body(self, kind: ErrorKind, message: str) -> Json:
        return {"type": "error", "error": {"type": ERROR_TYPES[kind], "message": message}}

    def error_event(self, kind: ErrorKind, message: str) -> SseEvent:
        return sse_json("error", self.error_body(kind, message))

    @staticmethod
    def wire_request(request: ChatRequest, model: str) -> Json:
        shape: Json = {"model": model, "messages": turns(request)}
        if request.system:
            shape["system"] = request.system
        return shape

    @staticmethod
    def wire_tool(tool: ToolSpec) -> Json:
        return tool.as_dict()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        answer = planned(Answer.to(request[BODY]), request[PLAN])
        if not request[BODY].get("stream"):
            return web.json_response(_message(answer, answer.text, answer.output_tokens))
        head = [
            sse_json("message_start", {"type": "message_start", "message": _message(answer)}),
            sse_json("content_block_start", _block("content_block_start", text="")),
            sse_json("ping", {"type": "ping"}),
        ]
        deltas = [
            sse_json("content_block_delta", _block("content_block_delta", delta=piece))
            for piece in split_words(answer.text)
        ]
        tail = [
            sse_json("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse_json("message_delta", _message_delta(answer)),
            sse_json("message_stop", {"type": "message_stop"}),
        ]
        return await self.send_stream(request, head, deltas, tail)

    async def _models(self, request: web.Request) -> web.Response:
        model = {
            "type": "model",
            "id": MODEL_ID,
            "display_name": "Claude Test",
            "created_at": "2025-01-01T00:00:00Z",
        }
        page = {"data": [model], "has_more": False, "first_id": MODEL_ID, "last_id": MODEL_ID}
        return web.json_response(page)


def _message(answer: Answer, text: str | None = None, output_tokens: int = 1) -> Json:
    """A Message object: complete (with text), or the empty one message_start carries."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": None if text is None else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": output_tokens},
    }


def _block(kind: str, *, text: str | None = None, delta: str | None = None) -> Json:
    event: dict[str, Any] = {"type": kind, "index": 0}
    if text is not None:
        event["content_block"] = {"type": "text", "text": text}
    if delta is not None:
        event["delta"] = {"type": "text_delta", "text": delta}
    return event


def _message_delta(answer: Answer) -> Json:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": answer.output_tokens},
    }
