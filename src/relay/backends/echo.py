"""The built-in echo backend: answers the user's own words, free and always healthy."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from relay.backends.base import (
    ChatRequest,
    Completion,
    HealthReport,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)

WORD_WITH_SPACE = re.compile(r"\s*\S+|\s+$")


def _usage(request: ChatRequest, reply: str) -> Usage:
    words_in = sum(len(m.content.split()) for m in request.messages)
    return Usage(input_tokens=words_in, output_tokens=len(reply.split()))


class EchoBackend:
    name = "echo"
    default_model = "echo"

    async def complete(self, request: ChatRequest) -> Completion:
        reply = request.messages[-1].content
        return Completion(reply, request.model or self.default_model, _usage(request, reply))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        reply = request.messages[-1].content
        # Split keeping the whitespace, so the deltas join back to the exact text.
        for piece in _split_words(reply):
            yield TextDelta(piece)
        yield StreamEnd(request.model or self.default_model, _usage(request, reply))

    async def tools(self) -> list[ToolSpec]:
        return []

    async def health(self) -> HealthReport:
        return HealthReport("ok", 0.0)

    async def close(self) -> None:
        return None


def _split_words(text: str) -> list[str]:
    """'a b  c' -> ['a', ' b', '  c']: each word with the whitespace before it."""
    return WORD_WITH_SPACE.findall(text)
