"""Every backend call goes through one door: timed for metrics and for the request it
serves (observability.timing, reported in Server-Timing), watched by a circuit breaker.

After `threshold` failures in a row the breaker opens: calls fail at once with
BackendUnavailable (503) for `cooldown` seconds instead of piling up on a sick
backend. Then one call is let through as a probe; its success closes the
breaker, its failure opens it again. A busy answer (429) is not a failure:
the backend is alive and asked us to slow down.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Literal

from relay.backends.base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatRequest,
    Completion,
    HealthReport,
    StreamEnd,
    StreamEvent,
    ToolSpec,
)
from relay.observability.metrics import Metrics
from relay.observability.timing import add_backend_time

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, *, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._cooled_down() else "open"

    def before_call(self) -> None:
        """Raise BackendUnavailable unless this call may go to the backend."""
        if self.opened_at is None:
            return
        if not self._cooled_down() or self._probing:
            remaining = self.opened_at + self.cooldown - time.monotonic()
            raise BackendUnavailable("circuit open", retry_after=max(1.0, remaining))
        self._probing = True

    def release(self) -> None:
        """A call ended with no verdict (cancelled): free the probe slot, count nothing."""
        self._probing = False

    def record(self, *, failed: bool) -> None:
        self._probing = False
        if not failed:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = time.monotonic()

    def _cooled_down(self) -> bool:
        return self.opened_at is not None and time.monotonic() - self.opened_at >= self.cooldown


def _kind(exc: BackendError) -> str:
    if isinstance(exc, BackendBusy):
        return "busy"
    if isinstance(exc, BackendTimeout):
        return "timeout"
    return "error"


class GuardedBackend:
    def __init__(self, backend: Backend, breaker: CircuitBreaker, metrics: Metrics) -> None:
        self.inner = backend
        self.breaker = breaker
        self.metrics = metrics
        self.name = backend.name
        self.default_model = backend.default_model

    async def complete(self, request: ChatRequest) -> Completion:
        started = self._start()
        try:
            completion = await self.inner.complete(request)
        except BackendError as exc:
            add_backend_time(time.perf_counter() - started)
            self._finish("complete", started, exc)
            raise
        except BaseException:
            # Cancelled (or a bug) before any answer: no verdict on the backend, but a
            # half-open breaker would refuse every call forever if its probe slot stayed taken.
            self.breaker.release()
            raise
        add_backend_time(time.perf_counter() - started)
        self._finish("complete", started, None)
        return completion

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        started = self._start()
        failure: BackendError | None = None
        answered = False  # the backend sent its final event
        waiting = True  # for the first event: the backend time a stream's headers report
        events = aiter(self.inner.stream(request))
        try:
            async for event in events:
                if waiting:
                    add_backend_time(time.perf_counter() - started)
                    waiting = False
                answered = answered or isinstance(event, StreamEnd)
                yield event
        except BackendError as exc:
            if waiting:
                add_backend_time(time.perf_counter() - started)
            failure = exc
            raise
        finally:
            if answered or failure is not None:
                self._finish("stream", started, failure)
            else:  # the client left mid-stream: no verdict on the backend
                self.breaker.release()
            await events.aclose()  # type: ignore[attr-defined]

    async def tools(self) -> list[ToolSpec]:
        started = time.perf_counter()
        try:
            return await self.inner.tools()
        finally:
            add_backend_time(time.perf_counter() - started)

    async def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            report = await self.inner.health()
        finally:
            add_backend_time(time.perf_counter() - started)
        if self.breaker.state == "open":
            return HealthReport("down", report.latency_ms, "circuit open")
        return report

    async def close(self) -> None:
        await self.inner.close()

    def _start(self) -> float:
        self.breaker.before_call()
        return time.perf_counter()

    def _finish(self, call: str, started: float, failure: BackendError | None) -> None:
        seconds = time.perf_counter() - started
        outcome = "ok" if failure is None else _kind(failure)
        self.metrics.observe_backend(self.name, call, outcome, seconds)
        if failure is not None:
            self.metrics.backend_errors.labels(self.name, outcome).inc()
        self.breaker.record(failed=failure is not None and not isinstance(failure, BackendBusy))
