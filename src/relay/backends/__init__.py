"""Chat backends: one protocol, one module each, chosen by RELAY_BACKEND.

The SDK backends are imported only when chosen: importing the anthropic and
openai SDKs costs seconds, which every CLI command would otherwise pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay.backends.base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatMessage,
    ChatRequest,
    Completion,
    HealthReport,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from relay.backends.echo import EchoBackend
from relay.config import Settings

if TYPE_CHECKING:
    from relay.backends.anthropic import AnthropicBackend
    from relay.backends.openai import OpenAIBackend
    from relay.backends.upstream import UpstreamBackend

__all__ = [
    "AnthropicBackend",
    "Backend",
    "BackendBusy",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "EchoBackend",
    "HealthReport",
    "OpenAIBackend",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolSpec",
    "UpstreamBackend",
    "Usage",
    "make_backend",
]

_LAZY = {
    "AnthropicBackend": "relay.backends.anthropic",
    "OpenAIBackend": "relay.backends.openai",
    "UpstreamBackend": "relay.backends.upstream",
}


def __getattr__(name: str) -> Any:
    """Import a backend class on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_backend(settings: Settings) -> Backend:
    """The backend RELAY_BACKEND names, configured from settings (no I/O yet)."""
    match settings.relay_backend:
        case "anthropic":
            from relay.backends.anthropic import AnthropicBackend

            return AnthropicBackend(settings)
        case "openai":
            from relay.backends.openai import OpenAIBackend

            return OpenAIBackend(settings)
        case "upstream":
            from relay.backends.upstream import UpstreamBackend

            return UpstreamBackend(settings)
        case _:
            return EchoBackend()
