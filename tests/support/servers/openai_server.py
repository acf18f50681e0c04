"""A fake OpenAI chat-completions server: POST /v1/chat/completions (plain, SSE), /v1/models."""

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

CREATED = 1_735_689_600
ERRORS = {  # kind -> (type, code), as OpenAI-compatible servers write them
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "overloaded": ("server_error", "overloaded"),
    "auth": ("invalid_request_error", "invalid_api_key"),
    "server": ("server_error", None),
}


class OpenAIServer(FakeServer):
    overloaded_status = 503
    chat_path = "/v1/chat/completions"
    stream_marker: ClassVar[Json] = {"stream": True, "stream_options": {"include_usage": True}}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)

    def key_ok(self, request: web.Request) -> bool:
        return self.bearer_ok(request)

    def error_body(self, kind: ErrorKind, message: str) -> Json:
        kind_type, code = ERRORS[kind]
        return {"error": {"message": message, "type": kind_type, "param": None, "code": code}}

    def error_event(self, kind: ErrorKind, message: str) -> SseEvent:
        return sse_json(None, self.error_body(kind, message))

    @staticmethod
    def wire_request(request: ChatRequest, model: str) -> Json:
        system = [{"role": "system", "content": request.system}] if request.system else []
        return {"model": model, "messages": system + turns(request)}

    @staticmethod
    def wire_tool(tool: ToolSpec) -> Json:
        function = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        }
        return {"type": "function", "function": function}

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        answer = planned(Answer.to(body), request[PLAN])
        if not body.get("stream"):
            return web.json_response(_completion(answer))
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choice: Json | None, usage: Json | None = None) -> SseEvent:
            return sse_json(None, _chunk(answer, choice, usage, with_usage))

        head = [chunk(_choice({"role": "assistant", "content": ""}))]
        deltas = [chunk(_choice({"content": piece})) for piece in split_words(answer.text)]
        tail = [chunk(_choice({}, "stop"))]
        if with_usage:
            tail.append(chunk(None, _usage(answer)))
        tail.append((None, "[DONE]"))
        return await self.send_stream(request, head, deltas, tail)

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": "gpt-test", "object": "model", "created": CREATED, "owned_by": "tests"}
        return web.json_response({"object": "list", "data": [model]})


def _usage(answer: Answer) -> Json:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _completion(answer: Answer) -> Json:
    message = {"role": "assistant", "content": answer.text}
    choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": answer.model,
        "choices": [choice],
        "usage": _usage(answer),
    }


def _choice(delta: Json, finish_reason: str | None = None) -> Json:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason}


def _chunk(answer: Answer, choice: Json | None, usage: Json | None, with_usage: bool) -> Json:
    """One chunk; with include_usage every chunk has "usage" (null until the last)."""
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": answer.model,
        "choices": [] if choice is None else [choice],
    }
    if with_usage:
        chunk["usage"] = usage
    return chunk
