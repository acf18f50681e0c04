"""Claude through the official `anthropic` SDK (Messages API)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anthropic
from anthropic.lib.credentials import default_credentials
from anthropic.types import Message

from relay.backends._sdk import SdkBackend, http_client, sdk_error_kinds
from relay.backends.base import (
    BackendError,
    BackendMisconfigured,
    ChatRequest,
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from relay.config import Settings

ERRORS = sdk_error_kinds(
    api_error=anthropic.APIError,
    status_error=anthropic.APIStatusError,
    connection_error=anthropic.APIConnectionError,
    timeout_error=anthropic.APITimeoutError,
)


class AnthropicBackend(SdkBackend):
    name = "anthropic"
    errors = ERRORS

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.anthropic_model, settings.backend_timeout)
        self._max_tokens = settings.anthropic_max_tokens
        key = settings.anthropic_api_key
        # Without a key the SDK falls back to its own sources (environment, profiles).
        if key is None and not _sdk_finds_credentials(settings.anthropic_base_url):
            raise BackendMisconfigured(
                "ANTHROPIC_API_KEY is required when RELAY_BACKEND=anthropic (the Anthropic SDK"
                " finds no other credentials: no ANTHROPIC_AUTH_TOKEN, no profile)"
            )
        self._client = anthropic.AsyncAnthropic(
            api_key=key.get_secret_value() if key else None,
            base_url=settings.anthropic_base_url,
            timeout=settings.backend_timeout,
            max_retries=settings.backend_max_retries,
            http_client=http_client(anthropic.DefaultAioHttpClient),
        )
        self._probe_client = self._client.with_options(max_retries=0)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.default_model,
            "max_tokens": self._max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [tool.as_dict() for tool in request.tools]
        return params

    async def complete(self, request: ChatRequest) -> Completion:
        params = self._params(request)
        with self._guard():
            message = await self._within_deadline(lambda: self._client.messages.create(**params))
            return _completion(message)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        manager = self._client.messages.stream(**self._params(request))
        with self._guard():
            async with AsyncExitStack() as stack:
                events = await self._within_deadline(lambda: stack.enter_async_context(manager))
                async for event in events:
                    if event.type == "text":
                        yield TextDelta(event.text)
                final = await events.get_final_message()
                if final.stop_reason is None:
                    raise BackendError("anthropic backend stream ended before message_stop")
        yield StreamEnd(final.model, _usage(final))

    async def _list_models(self) -> object:
        return await self._probe_client.models.list(limit=1)

    async def close(self) -> None:
        await self._client.close()


def _usage(message: Message) -> Usage:
    return Usage(message.usage.input_tokens, message.usage.output_tokens)


def _completion(message: Message) -> Completion:
    """Text blocks only: a tool_use block has no text to relay."""
    text = "".join(block.text for block in message.content if block.type == "text")
    return Completion(text, message.model, _usage(message))


def _sdk_finds_credentials(base_url: str | None) -> bool:
    """Whether the SDK would find credentials of its own, as its constructor looks for them.

    Without any, every call would fail with "could not resolve authentication
    method"; better to say so before serving.
    """
    if os.environ.get("ANTHROPIC_API_KEY"):
        return True
    try:
        return default_credentials(base_url=base_url or "https://api.anthropic.com") is not None
    except anthropic.AnthropicError as exc:  # a named profile that cannot be read
        raise BackendMisconfigured(
            f"ANTHROPIC_PROFILE: the Anthropic SDK could not load it ({type(exc).__name__})"
        ) from None
