"""The running gateway's parts, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from relay.auth.cache import ClientCache
from relay.auth.tokens import TokenCodec
from relay.backends.base import Backend
from relay.config import Settings
from relay.limits.policy import RateLimiter
from relay.observability.metrics import Metrics
from relay.services.chat import ChatService
from relay.services.clients import ClientService
from relay.services.health import HealthService
from relay.services.history import HistoryService
from relay.services.tools import ToolService
from relay.storage.base import Store


@dataclass(slots=True)
class Relay:
    settings: Settings
    store: Store
    cache: ClientCache
    tokens: TokenCodec
    clients: ClientService
    backend: Backend
    health: HealthService
    chat: ChatService
    history: HistoryService
    tools: ToolService
    limiter: RateLimiter
    metrics: Metrics


def relay_of(connection: HTTPConnection) -> Relay:
    relay: Relay = connection.app.state.relay
    return relay
