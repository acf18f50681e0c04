"""Fake backend servers speaking the real wire protocols, for the backend contract tests."""

from tests.support.servers.anthropic_server import AnthropicServer
from tests.support.servers.base import FakeServer, Plan, Recorded, reply_for, served_model
from tests.support.servers.openai_server import OpenAIServer
from tests.support.servers.upstream_server import UpstreamServer

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
