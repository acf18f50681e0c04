"""create_app(settings): wiring and lifespan, nothing else."""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI

from relay import __version__
from relay.auth.cache import ClientCache
from relay.auth.notify import make_feed
from relay.auth.tokens import TokenCodec
from relay.backends import make_backend
from relay.backends.guarded import CircuitBreaker, GuardedBackend
from relay.config import Settings
from relay.errors import install_error_handlers
from relay.limits.policy import RateLimiter
from relay.middleware import RequestMiddleware
from relay.observability.metrics import Metrics
from relay.responses import JSONResponse
from relay.routes import admin, auth, chat, health, history, tools
from relay.routes import metrics as metrics_route
from relay.services.chat import ChatService
from relay.services.clients import ClientService
from relay.services.health import HealthService
from relay.services.history import HistoryService
from relay.services.idempotency import Idempotency
from relay.services.tools import ToolService, load_tool_file
from relay.state import Relay
from relay.storage import Store, make_store


async def jwt_secret(settings: Settings, store: Store) -> str:
    """The configured secret, or one generated once and kept in the database."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    return await store.get_or_create_setting("jwt_secret", secrets.token_urlsafe(48))


async def build_relay(settings: Settings, store: Store, metrics: Metrics) -> Relay:
    tokens = TokenCodec(
        await jwt_secret(settings, store),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        default_ttl=settings.jwt_expiry,
    )
    cache = ClientCache(store, ttl=settings.client_cache_ttl)
    feed = make_feed(settings.database_url, settings.redis_url)
    clients = ClientService(store, cache, tokens, bcrypt_rounds=settings.bcrypt_rounds, feed=feed)
    breaker = CircuitBreaker(
        threshold=settings.backend_breaker_threshold, cooldown=settings.backend_breaker_cooldown
    )
    backend = GuardedBackend(make_backend(settings), breaker, metrics)
    limiter = RateLimiter(settings.redis_url)
    probe = limiter.probe if limiter.shared else None
    registry = load_tool_file(settings.tools_file)
    chat = ChatService(
        store,
        backend,
        idempotency=Idempotency(store),
        context_messages=settings.history_context_messages,
        max_message_chars=settings.max_message_chars,
        allowed_models=settings.allowed_model_set,
        tools=registry,
    )
    return Relay(
        settings=settings,
        store=store,
        cache=cache,
        tokens=tokens,
        clients=clients,
        backend=backend,
        health=HealthService(
            store, backend, backend_ttl=settings.backend_health_ttl, rate_limit_probe=probe
        ),
        chat=chat,
        history=HistoryService(store),
        tools=ToolService(backend, registry),
        limiter=limiter,
        metrics=metrics,
    )


# Collect the young generation after this many new tracked objects, not 700:
# a chat allocates hundreds and nearly all die young by reference counting, so
# most of those passes found nothing (-4% instructions per chat, measured in
# process). The garbage a pass can find is bounded by the same count.
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextmanager
def collector_tuned() -> Iterator[None]:
    """Keep what start-up built out of the collector's passes, and pass less often.

    All of it (modules, routes, models) lives as long as the app, yet every
    full collection walked it: about 90k objects, a 20-40 ms stall of every
    request (measured in process). Frozen, a full pass walks only what requests
    left behind. Undone when the app stops, so a process that builds many apps
    (tests) can still free the ones it is done with.
    """
    gc.collect()  # what start-up threw away is freed, not frozen for good
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = make_store(settings.database_url, pool_size=settings.database_pool_size)
        await store.open()
        try:
            await store.migrate()
            relay = await build_relay(settings, store, metrics)
            app.state.relay = relay
            await relay.clients.feed.start(relay.cache.on_change)
            with collector_tuned():
                yield
            await relay.clients.feed.stop()
            await relay.backend.close()
        finally:
            await store.close()

    app = FastAPI(
        title="Relay",
        version=__version__,
        summary="Authenticated gateway between AI assistants and the apps that talk to them.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # Relay reports its own Prometheus metrics; FastAPI's OpenTelemetry hooks
        # would only cost a check of the environment on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    # Routes go straight onto the app, hot ones first and ahead of the docs
    # routes FastAPI adds: every request is matched against the list in order,
    # and include_router would add a wrapper layer each request walks through.
    modules = (chat, tools, history, auth, health, metrics_route, admin)
    app.router.routes[0:0] = [route for module in modules for route in module.router.routes]
    return app
