"""Durations as Relay reports them."""

from __future__ import annotations

import time


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), to the hundredth."""
    return round((time.perf_counter() - started) * 1000, 2)
