"""create_app(settings): the FastAPI app, its middleware, routes and lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from relay import __version__
from relay.config import Settings
from relay.container import running
from relay.observability.metrics import Metrics
from relay.web.errors import install_error_handlers
from relay.web.middleware.access import AccessMiddleware
from relay.web.middleware.body import BodyMiddleware
from relay.web.middleware.context import ContextMiddleware
from relay.web.middleware.cors import CorsMiddleware
from relay.web.openapi import install_security_scheme
from relay.web.responses import JSONResponse
from relay.web.routes import admin, auth, chat, health, history, metrics, tools

# Collect the young generation after this many new tracked objects, not 700:
# a chat allocates hundreds and nearly all die young by reference counting, so
# most of those passes found nothing. The garbage a pass can find is bounded by
# the same count.
YOUNG_COLLECTION_THRESHOLD = 10_000

DESCRIPTION = """\
Trade an API key for a short-lived JWT at `POST /auth/token`, then call the
protected endpoints with `Authorization: Bearer <jwt>` (in these docs: the
*Authorize* button, with the token). Every error has one shape:
`{"error": {"code", "message", "request_id"}}`. Every response carries
`X-Request-ID` and `Server-Timing` (`relay;dur=<ms>`, plus `backend;dur=<ms>`
when a backend was called); the limited ones carry `X-RateLimit-*`.
"""


@contextmanager
def collector_tuned() -> Iterator[None]:
    """Keep what start-up built out of the collector's passes, and pass less often.

    All of it (modules, routes, models) lives as long as the app, yet every
    full collection would walk it, stalling every request meanwhile. Frozen, a
    full pass walks only what requests left behind. Undone when the app stops,
    so a process that builds many apps (tests) can still free the ones it is
    done with.
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
    observed = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings, observed) as relay:
            app.state.relay = relay
            with collector_tuned():
                yield

    # The hot routes first: every request is matched against the routes in order.
    # Given to the app as its own routes (a public parameter), ahead of the docs
    # routes FastAPI adds, and without include_router's wrapper to walk through.
    modules = (chat, tools, history, auth, health, metrics, admin)
    # FastAPIOffline: a FastAPI whose /docs and /redoc load Swagger UI and ReDoc from
    # files of that package, served by Relay itself (no CDN: they work offline).
    app = FastAPIOffline(
        routes=[route for module in modules for route in module.router.routes],
        title="Relay",
        version=__version__,
        summary="Authenticated gateway between AI assistants and the apps that talk to them.",
        description=DESCRIPTION,
        # No badge fetched from Swagger's online validator: the page asks only Relay.
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # Relay reports its own Prometheus metrics; FastAPI's OpenTelemetry hooks
        # would only cost a check of the environment on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A trailing slash is a 404, not a redirect: Starlette's redirect is built from
        # the request's Host header, so anyone could make Relay point elsewhere.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    install_security_scheme(app)
    # Added innermost first: a request meets the context (its id, its timing), the access
    # log, CORS (so that every answer, errors included, carries its headers), the body cap.
    app.add_middleware(BodyMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origin_list:  # none by default: no cost on any request
        app.add_middleware(CorsMiddleware, origins=settings.cors_origin_list)
    app.add_middleware(AccessMiddleware, metrics=observed)
    app.add_middleware(ContextMiddleware)
    return app
