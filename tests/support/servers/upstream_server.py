"""A fake upstream assistant service: POST /v1/chat (JSON or Relay's SSE), /v1/tools, /health."""

from __future__ import annotations

from typing import ClassVar

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

DEFAULT_MODEL = "upstream-model"
ERROR_CODES = {
    "rate_limit": "rate_limited",
    "overloaded": "backend_busy",
    "auth": "invalid_token",
    "server": "internal_error",
}
TOOLS = [
    ToolSpec(
        "lookup_weather",
        "Current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    ),
    ToolSpec("get_time", "The current time.", {"type": "object", "properties": {}}),
]


class UpstreamServer(FakeServer):
    overloaded_status = 503
    chat_path = "/v1/chat"
    stream_marker: ClassVar[Json] = {"stream": True}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat", self._chat)
        app.router.add_get("/v1/tools", self._tools)
        app.router.add_get("/health", self._health)

    def key_ok(self, request: web.Request) -> bool:
        return self.bearer_ok(request)

    def error_body(self, kind: ErrorKind, message: str) -> Json:
        return {"error": {"code": ERROR_CODES[kind], "message": message, "request_id": "up-req"}}

    def error_event(self, kind: ErrorKind, message: str) -> SseEvent:
        return sse_json("error", {"error": {"code": ERROR_CODES[kind], "message": message}})

    @staticmethod
    def wire_request(request: ChatRequest, model: str) -> Json:
        shape: Json = {"messages": turns(request), "model": model}
        if request.system:
            shape["system"] = request.system
        return shape

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        answer = planned(Answer.to(body, DEFAULT_MODEL), request[PLAN])
        usage = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer.text}
            return web.json_response({"message": message, "model": answer.model, "usage": usage})
        start = {"id": "up-msg", "conversation_id": "up-conv", "model": answer.model}
        end = {"id": "up-msg", "usage": usage, "created_at": "2025-01-01T00:00:00Z"}
        deltas = [sse_json("delta", {"text": piece}) for piece in split_words(answer.text)]
        return await self.send_stream(
            request, [sse_json("message_start", start)], deltas, [sse_json("message_end", end)]
        )

    async def _tools(self, request: web.Request) -> web.Response:
        return web.json_response({"tools": [tool.as_dict() for tool in TOOLS]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": "test", "checks": {}})
