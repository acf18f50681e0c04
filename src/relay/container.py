"""The running gateway's parts, wired once: the web app and the CLI both build them here."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from relay.backends import make_backend
from relay.backends.base import Backend
from relay.backends.guarded import CircuitBreaker, GuardedBackend
from relay.chat.idempotency import Idempotency
from relay.chat.service import ChatService
from relay.clients.cache import ClientCache
from relay.clients.change_feed import make_feed
from relay.clients.service import ClientService
from relay.clients.tokens import TokenCodec
from relay.config import Settings
from relay.health.service import HealthService
from relay.history.service import HistoryService
from relay.limits.policy import Limits, RateLimiter
from relay.observability.metrics import Metrics
from relay.storage import Store, make_store
from relay.tools.registry import load_tool_file
from relay.tools.service import ToolService


@dataclass(slots=True)
class Relay:
    settings: Settings
    store: Store
    clients: ClientService
    backend: Backend
    health: HealthService
    chat: ChatService
    history: HistoryService
    tools: ToolService
    limits: Limits
    metrics: Metrics


async def jwt_secret(settings: Settings, store: Store) -> str:
    """The configured secret, or one generated once and kept in the database."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    return await store.get_or_create_setting("jwt_secret", secrets.token_urlsafe(48))


async def build_clients(settings: Settings, store: Store, *, cache_ttl: float) -> ClientService:
    """Client management and authentication; the CLI caches nothing (`cache_ttl` 0)."""
    tokens = TokenCodec(
        await jwt_secret(settings, store),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        default_ttl=settings.jwt_expiry,
    )
    return ClientService(
        store,
        ClientCache(store, ttl=cache_ttl),
        tokens,
        bcrypt_rounds=settings.bcrypt_rounds,
        feed=make_feed(settings.database_url, settings.redis_url, store=store),
    )


async def build(settings: Settings, store: Store, metrics: Metrics) -> Relay:
    """Every part, on an open store; no connection to a backend is made yet."""
    breaker = CircuitBreaker(
        threshold=settings.backend_breaker_threshold, cooldown=settings.backend_breaker_cooldown
    )
    backend = GuardedBackend(make_backend(settings), breaker, metrics)
    limiter = RateLimiter(settings.redis_url)
    registry = load_tool_file(settings.tools_file)
    chat = ChatService(
        store,
        backend,
        idempotency=Idempotency(store, lease_seconds=settings.idempotency_lease),
        context_messages=settings.history_context_messages,
        max_message_chars=settings.max_message_chars,
        allowed_models=settings.allowed_model_set,
        tools=registry,
    )
    health = HealthService(
        store,
        backend,
        backend_ttl=settings.backend_health_ttl,
        rate_limit_probe=limiter.probe if limiter.shared else None,
    )
    return Relay(
        settings=settings,
        store=store,
        clients=await build_clients(settings, store, cache_ttl=settings.client_cache_ttl),
        backend=backend,
        health=health,
        chat=chat,
        history=HistoryService(store),
        tools=ToolService(backend, registry),
        limits=Limits(settings, limiter, metrics),
        metrics=metrics,
    )


@asynccontextmanager
async def open_store(settings: Settings, *, pool_size: int) -> AsyncIterator[Store]:
    """The configured store, open and migrated; closed on the way out."""
    store = make_store(settings.database_url, pool_size=pool_size)
    await store.open()
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def running(settings: Settings, metrics: Metrics) -> AsyncIterator[Relay]:
    """Relay started (store open, change feed listening) until the block ends."""
    async with open_store(settings, pool_size=settings.database_pool_size) as store:
        relay = await build(settings, store, metrics)
        await relay.clients.feed.start(relay.clients.cache.on_change)
        try:
            yield relay
        finally:
            await relay.clients.feed.stop()
            await relay.backend.close()
