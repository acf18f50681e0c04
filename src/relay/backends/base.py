"""The Backend protocol every chat backend implements, and the errors they raise.

Backends know nothing of HTTP status codes: they raise these errors, and
`relay.web.errors` maps them to responses in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[ChatMessage]  # the conversation so far, ending with the new user message
    model: str | None = None
    system: str | None = None
    request_id: str = ""
    tools: list[ToolSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    model: str
    usage: Usage


StreamEvent = TextDelta | StreamEnd


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: Literal["ok", "down"]
    latency_ms: float
    detail: str | None = None  # why it is down: built from safe words, never a URL or a key


class BackendMisconfigured(Exception):
    """A backend setting is missing or unusable: start-up stops, naming the variable.

    Not a BackendError: it is found before Relay serves, never while answering.
    """


class BackendError(Exception):
    """Any failure of the backend: maps to 502 backend_error."""


class BackendBusy(BackendError):
    """The backend said 429 or overloaded: maps to 503 backend_busy."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailable(BackendError):
    """Relay's circuit breaker is open: fail fast (503 backend_unavailable) until it probes."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendTimeout(BackendError):
    """No answer within BACKEND_TIMEOUT: maps to 504 backend_timeout."""


class Backend(Protocol):
    name: str
    default_model: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield TextDelta events, then exactly one StreamEnd."""
        ...

    async def tools(self) -> list[ToolSpec]: ...

    async def health(self) -> HealthReport:
        """A free check (never a paid model call)."""
        ...

    async def close(self) -> None: ...
