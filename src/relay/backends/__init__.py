"""Chat backends: one protocol (base.py), one module each, chosen by RELAY_BACKEND.

The SDK backends are imported only when chosen: importing the anthropic and
openai SDKs takes seconds, which every CLI command would otherwise pay.
"""

from __future__ import annotations

from relay.backends.base import Backend
from relay.backends.echo import EchoBackend
from relay.config import Settings


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
