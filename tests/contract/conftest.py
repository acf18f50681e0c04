"""Backend fixtures: every backend wired through its real client to its fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from relay.backends import make_backend
from relay.backends.base import Backend
from relay.config import Settings
from tests.support.servers import (
    AnthropicServer,
    FakeServer,
    OpenAIServer,
    UpstreamServer,
    reply_for,
    served_model,
)
from tests.support.servers.upstream_server import DEFAULT_MODEL as UPSTREAM_DEFAULT_MODEL

BACKENDS = ["echo", "anthropic", "openai", "upstream"]
BACKEND_KEY = "sk-relay-contract-SECRET-4f2a9c"  # must never show in an error
SERVERS: dict[str, type[FakeServer]] = {
    "anthropic": AnthropicServer,
    "openai": OpenAIServer,
    "upstream": UpstreamServer,
}
KEY_FIELDS = {
    "anthropic": "anthropic_api_key",
    "openai": "openai_api_key",
    "upstream": "upstream_api_key",
}


def backend_settings(kind: str, url: str, **overrides: Any) -> Settings:
    """Settings for one backend against a server at url; no .env file is read."""
    wiring: dict[str, dict[str, Any]] = {
        "echo": {},
        "anthropic": {"anthropic_base_url": url, "anthropic_model": "claude-test"},
        "openai": {"openai_base_url": f"{url}/v1", "openai_model": "gpt-test"},
        "upstream": {"upstream_url": url},
    }
    values: dict[str, Any] = {
        "relay_backend": kind,
        "anthropic_max_tokens": 256,
        "backend_timeout": 5.0,
        "backend_max_retries": 0,
        **wiring[kind],
    }
    if kind in KEY_FIELDS:
        values[KEY_FIELDS[kind]] = SecretStr(BACKEND_KEY)
    return Settings(_env_file=None, **{**values, **overrides})


@dataclass
class BackendCase:
    """One backend under test, its fake server (None for echo) and what it should answer."""

    kind: str
    server: FakeServer | None
    made: list[Backend] = field(default_factory=list)

    def make(self, **overrides: Any) -> Backend:
        """A backend through the factory; overrides are Settings fields."""
        url = self.server.url if self.server else ""
        backend = make_backend(backend_settings(self.kind, url, **overrides))
        self.made.append(backend)
        return backend

    def make_with_key(self, key: str, **overrides: Any) -> Backend:
        return self.make(**{KEY_FIELDS[self.kind]: SecretStr(key)}, **overrides)

    @property
    def fake(self) -> FakeServer:
        """The server, for tests that make it misbehave; echo has none to fail."""
        if self.server is None:
            pytest.skip("echo has no server: it cannot fail, time out or refuse a key")
        return self.server

    def reply(self, text: str) -> str:
        return text if self.kind == "echo" else reply_for(text)

    def model(self, requested: str | None = None) -> str:
        """The model the backend should report for a request naming `requested`."""
        defaults = {
            "echo": "echo",
            "anthropic": "claude-test",
            "openai": "gpt-test",
            "upstream": UPSTREAM_DEFAULT_MODEL,
        }
        name = requested or defaults[self.kind]
        return name if self.kind == "echo" else served_model(name)


@pytest.fixture(params=BACKENDS)
async def backend_case(request: pytest.FixtureRequest) -> AsyncIterator[BackendCase]:
    kind: str = request.param
    server = SERVERS[kind](api_key=BACKEND_KEY) if kind in SERVERS else None
    if server is not None:
        await server.start()
    case = BackendCase(kind, server)
    try:
        yield case
    finally:
        for backend in case.made:
            await backend.close()
        if server is not None:
            await server.stop()
