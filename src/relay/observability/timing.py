"""Durations as Relay reports them, and the backend time of the request being served."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), to the hundredth."""
    return round((time.perf_counter() - started) * 1000, 2)


@dataclass(slots=True)
class BackendTime:
    """How long one request waited on the backend, every call added up."""

    seconds: float = 0.0
    called: bool = False


# The request's BackendTime, set by the web layer when a request starts (and reset
# when it ends). A mutable holder rather than a float: tasks a request spawns (a
# stream's body, health checks run together) get copies of the context, and a
# copy of the holder's reference still adds to the request's own total.
backend_time: ContextVar[BackendTime | None] = ContextVar("relay_backend_time", default=None)


def add_backend_time(seconds: float) -> None:
    """Count `seconds` of backend time to the request being served, if any."""
    spent = backend_time.get()
    if spent is not None:
        spent.seconds += seconds
        spent.called = True
