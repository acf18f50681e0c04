"""Fake backend servers speaking the real wire protocols, for the backend contract tests."""

from tests.servers.anthropic_server import AnthropicServer
from tests.servers.base import FakeServer, Plan, Recorded, reply_for, served_model
from tests.servers.openai_server import OpenAIServer
from tests.servers.upstream_server import UpstreamServer

__all__ = [
    "AnthropicServer",
    "FakeServer",
    "OpenAIServer",
    "Plan",
    "Recorded",
    "UpstreamServer",
    "reply_for",
    "served_model",
]
