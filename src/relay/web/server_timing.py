"""Server-Timing, as every response carries it (middleware.context adds the header).

`relay;dur=<ms>` is the time from the request's arrival to its response headers
less the time spent waiting on the backend; `backend;dur=<ms>` (only when a
backend was called) is that wait, measured where the calls are made
(backends.guarded, through observability.timing). A stream's headers go out
once the backend's first event is in, so for a stream both say time until then.
"""

from __future__ import annotations

import time

from relay.observability.timing import BackendTime


def server_timing(started: float, backend: BackendTime) -> bytes:
    """The header's value for a request that started at `started` (a perf_counter reading).

    Bytes, formatted with `%`: this runs on every request, and it is the cheapest way.
    """
    total_ms = (time.perf_counter() - started) * 1000
    if not backend.called:
        return b"relay;dur=%.2f" % total_ms
    backend_ms = backend.seconds * 1000
    # Calls made side by side (health checks) can add up to more than the wall time.
    return b"relay;dur=%.2f, backend;dur=%.2f" % (max(total_ms - backend_ms, 0.0), backend_ms)
