"""Any OpenAI-compatible chat-completions server through the official `openai` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion

from relay.backends._sdk import SdkBackend, http_client, sdk_error_kinds
from relay.backends.base import (
    BackendError,
    BackendMisconfigured,
    ChatRequest,
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from relay.config import Settings

ERRORS = sdk_error_kinds(
    api_error=openai.APIError,
    status_error=openai.APIStatusError,
    connection_error=openai.APIConnectionError,
    timeout_error=openai.APITimeoutError,
)
NO_KEY = "not-needed"  # local servers (vLLM, Ollama) want none, but the SDK insists on one


class OpenAIBackend(SdkBackend):
    name = "openai"
    errors = ERRORS

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.openai_model, settings.backend_timeout)
        key = settings.openai_api_key
        if key is None and settings.openai_base_url is None:
            # Local servers (OPENAI_BASE_URL) may want no key; api.openai.com always does.
            raise BackendMisconfigured(
                "OPENAI_API_KEY is required when RELAY_BACKEND=openai and OPENAI_BASE_URL is unset"
            )
        self._client = openai.AsyncOpenAI(
            api_key=key.get_secret_value() if key else NO_KEY,
            base_url=settings.openai_base_url,
            timeout=settings.backend_timeout,
            max_retries=settings.backend_max_retries,
            http_client=http_client(openai.DefaultAioHttpClient),
        )
        self._probe_client = self._client.with_options(max_retries=0)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        turns = [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {
            "model": request.model or self.default_model,
            "messages": system + turns,
        }
        if request.tools:
            params["tools"] = [_function_tool(tool) for tool in request.tools]
        return params

    async def complete(self, request: ChatRequest) -> Completion:
        params = self._params(request)
        with self._guard():
            answer = await self._within_deadline(
                lambda: self._client.chat.completions.create(**params)
            )
            return _completion(answer)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        params = self._params(request)
        model, usage, finished = params["model"], Usage(), False
        with self._guard():
            chunks = await self._within_deadline(
                lambda: self._client.chat.completions.create(
                    **params, stream=True, stream_options={"include_usage": True}
                )
            )
            async with chunks:
                async for chunk in chunks:
                    model = chunk.model or model
                    usage = _usage(chunk.usage) if chunk.usage else usage
                    for choice in chunk.choices:
                        finished = finished or choice.finish_reason is not None
                        if choice.delta.content:
                            yield TextDelta(choice.delta.content)
            if not finished:
                raise BackendError("openai backend stream ended before its finish_reason")
        yield StreamEnd(model, usage)

    async def _list_models(self) -> object:
        return await self._probe_client.models.list()

    async def close(self) -> None:
        await self._client.close()


def _function_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        },
    }


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens, usage.completion_tokens)


def _completion(answer: ChatCompletion) -> Completion:
    if not answer.choices:
        raise BackendError("openai backend answered without a choice")
    return Completion(answer.choices[0].message.content or "", answer.model, _usage(answer.usage))
