"""The circuit breaker in GuardedBackend, on a scripted backend; then once through the API.

`ScriptedBackend` is a test double for the backend side only: it implements
the Backend protocol, fails or succeeds as told, and counts the calls that
reached it, so "fails fast" can be checked as "the backend was not called".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from relay.backends.base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatMessage,
    ChatRequest,
    Completion,
    HealthReport,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from relay.backends.guarded import CircuitBreaker, GuardedBackend
from relay.config import Settings
from relay.observability.metrics import Metrics
from tests.conftest import Running
from tests.support.ports import closed_port

COOLDOWN = 0.2
REQUEST = ChatRequest([ChatMessage("user", "hello")], request_id="req-1")


class ScriptedBackend:
    name = "scripted"
    default_model = "scripted-1"

    def __init__(self) -> None:
        self.calls = 0
        self.failure: BaseException | None = None
        self.gate: asyncio.Event | None = None  # when set, calls wait for it

    async def _answer(self) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure

    async def complete(self, request: ChatRequest) -> Completion:
        await self._answer()
        return Completion("ok", self.default_model, Usage(1, 1))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await self._answer()
        yield TextDelta("ok")
        yield StreamEnd(self.default_model, Usage(1, 1))

    async def tools(self) -> list[ToolSpec]:
        return []

    async def health(self) -> HealthReport:
        return HealthReport("ok", 0.5)

    async def close(self) -> None:
        return None


def guarded(threshold: int = 3) -> tuple[GuardedBackend, ScriptedBackend, Metrics]:
    inner = ScriptedBackend()
    backend: Backend = inner  # checks ScriptedBackend against the protocol
    metrics = Metrics()
    breaker = CircuitBreaker(threshold=threshold, cooldown=COOLDOWN)
    return GuardedBackend(backend, breaker, metrics), inner, metrics


async def fail(guard: GuardedBackend, expected: type[BaseException] = BackendError) -> None:
    with pytest.raises(expected) as caught:
        await guard.complete(REQUEST)
    if expected is BackendError:  # a real failure, not the breaker's own refusal
        assert not isinstance(caught.value, BackendUnavailable)


async def open_breaker(guard: GuardedBackend, inner: ScriptedBackend) -> None:
    inner.failure = BackendError("broken")
    for _ in range(guard.breaker.threshold):
        await fail(guard)
    assert state(guard) == "open"


async def drain(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


def state(guard: GuardedBackend) -> str:
    """The breaker's state, read fresh (a plain str, so checks are not narrowed away)."""
    return guard.breaker.state


def errors(metrics: Metrics, kind: str) -> float:
    labels = {"backend": "scripted", "kind": kind}
    return metrics.registry.get_sample_value("relay_backend_errors_total", labels) or 0.0


async def test_opens_after_threshold_failures_then_fails_fast() -> None:
    guard, inner, metrics = guarded(threshold=3)
    inner.failure = BackendError("broken")
    for calls in (1, 2):
        await fail(guard)
        assert (inner.calls, state(guard)) == (calls, "closed")
    await fail(guard)
    assert (inner.calls, state(guard)) == (3, "open")
    assert errors(metrics, "error") == 3

    inner.failure = None  # even a healed backend is not called until the cooldown ends
    for _ in range(3):
        with pytest.raises(BackendUnavailable) as caught:
            await guard.complete(REQUEST)
        assert caught.value.retry_after >= 1
    with pytest.raises(BackendUnavailable):
        await drain(guard.stream(REQUEST))
    assert inner.calls == 3
    assert errors(metrics, "error") == 3


async def test_failures_must_be_in_a_row() -> None:
    guard, inner, _ = guarded(threshold=3)
    for _ in range(3):
        inner.failure = BackendError("broken")
        await fail(guard)
        await fail(guard)
        inner.failure = None
        assert (await guard.complete(REQUEST)).content == "ok"
    assert state(guard) == "closed"
    assert inner.calls == 9


async def test_half_opens_after_cooldown_and_a_good_probe_closes() -> None:
    guard, inner, _ = guarded()
    await open_breaker(guard, inner)
    await asyncio.sleep(COOLDOWN + 0.05)
    assert state(guard) == "half_open"
    inner.failure = None
    assert (await guard.complete(REQUEST)).content == "ok"
    assert inner.calls == 4
    assert state(guard) == "closed"
    # Closed means closed: calls flow, and it takes `threshold` new failures to open again.
    for _ in range(3):
        await guard.complete(REQUEST)
    inner.failure = BackendError("broken")
    await fail(guard)
    assert state(guard) == "closed"
    assert inner.calls == 8


async def test_a_failed_probe_opens_again_for_a_full_cooldown() -> None:
    guard, inner, _ = guarded()
    await open_breaker(guard, inner)
    await asyncio.sleep(COOLDOWN + 0.05)
    await fail(guard)  # the probe reaches the backend and fails
    assert inner.calls == 4
    assert state(guard) == "open"
    await fail(guard, BackendUnavailable)  # one failure was enough: open at once
    assert inner.calls == 4
    # A new cooldown, counted from the failed probe.
    await asyncio.sleep(COOLDOWN + 0.05)
    inner.failure = None
    assert (await guard.complete(REQUEST)).content == "ok"
    assert state(guard) == "closed"


async def probe_held_at_the_gate(
    guard: GuardedBackend, inner: ScriptedBackend
) -> tuple[asyncio.Task[Completion], asyncio.Event]:
    """Open the breaker, wait out the cooldown, and start a probe the backend holds."""
    await open_breaker(guard, inner)
    await asyncio.sleep(COOLDOWN + 0.05)
    gate = asyncio.Event()
    inner.failure, inner.gate = None, gate
    probe = asyncio.create_task(guard.complete(REQUEST))
    await asyncio.sleep(0.01)
    return probe, gate


async def test_only_one_probe_at_a_time() -> None:
    guard, inner, _ = guarded()
    probe, gate = await probe_held_at_the_gate(guard, inner)
    assert inner.calls == 4
    await fail(guard, BackendUnavailable)  # while the probe is out
    assert inner.calls == 4
    gate.set()
    assert (await asyncio.wait_for(probe, 1)).content == "ok"
    assert state(guard) == "closed"


async def test_a_cancelled_probe_does_not_leave_the_breaker_stuck_open() -> None:
    guard, inner, _ = guarded()
    probe, _ = await probe_held_at_the_gate(guard, inner)
    probe.cancel()  # e.g. the client went away while the probe was out
    with pytest.raises(asyncio.CancelledError):
        await probe
    inner.gate = None
    assert (await guard.complete(REQUEST)).content == "ok"  # a new probe goes through
    assert inner.calls == 5
    assert state(guard) == "closed"


async def test_busy_answers_do_not_count() -> None:
    guard, inner, metrics = guarded(threshold=2)
    inner.failure = BackendBusy("slow down", retry_after=3)
    for _ in range(5):
        await fail(guard, BackendBusy)
    assert inner.calls == 5
    assert state(guard) == "closed"
    assert errors(metrics, "busy") == 5
    # Real failures still count as usual.
    inner.failure = BackendError("broken")
    await fail(guard)
    await fail(guard)
    assert state(guard) == "open"


async def test_timeouts_and_stream_failures_count() -> None:
    guard, inner, metrics = guarded(threshold=2)
    inner.failure = BackendTimeout("too slow")
    await fail(guard, BackendTimeout)
    inner.failure = BackendError("broken mid-stream")
    with pytest.raises(BackendError):
        await drain(guard.stream(REQUEST))
    assert state(guard) == "open"
    assert (errors(metrics, "timeout"), errors(metrics, "error")) == (1, 1)

    await asyncio.sleep(COOLDOWN + 0.05)
    inner.failure = None
    events = await drain(guard.stream(REQUEST))  # a streamed probe closes it as well
    assert isinstance(events[-1], StreamEnd)
    assert state(guard) == "closed"


async def test_health_says_down_while_open() -> None:
    guard, inner, _ = guarded()
    assert (await guard.health()).status == "ok"
    await open_breaker(guard, inner)
    report = await guard.health()  # the backend's own probe says ok, the breaker knows better
    assert report.status == "down"
    assert report.detail


# --- through the API --------------------------------------------------------------------------


async def test_api_answers_503_backend_unavailable_once_open(
    make_settings: Callable[..., Settings],
    start_relay: Callable[[Settings], AbstractAsyncContextManager[Running]],
) -> None:
    pytest.importorskip(
        "relay.backends.upstream", reason="the upstream backend is not importable yet"
    )
    settings = make_settings(
        relay_backend="upstream",
        upstream_url=f"http://127.0.0.1:{closed_port()}",
        backend_breaker_threshold=2,
        backend_max_retries=0,
    )
    async with start_relay(settings) as relay:
        headers = await relay.bearer("chat")

        async def chat() -> tuple[int, str, str | None]:
            response = await relay.client.post(
                "/v1/chat", json={"message": "hello"}, headers=headers
            )
            code: str = response.json()["error"]["code"]
            return response.status_code, code, response.headers.get("retry-after")

        for _ in range(2):
            assert (await chat())[:2] == (502, "backend_error")
        for _ in range(2):
            status, code, retry_after = await chat()
            assert (status, code) == (503, "backend_unavailable")
            assert retry_after is not None
            assert 1 <= int(retry_after) <= settings.backend_breaker_cooldown

        # Only the first two reached the backend.
        metrics = (await relay.client.get("/metrics")).text
        assert 'relay_backend_errors_total{backend="upstream",kind="error"} 2.0' in metrics

        response = await relay.client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["backend"]["status"] == "down"


async def test_a_stream_the_client_left_is_no_verdict_on_the_backend() -> None:
    guard, inner, _ = guarded(threshold=3)
    inner.failure = BackendError("broken")
    for _ in range(2):
        await fail(guard)
    inner.failure = None
    stream = guard.stream(REQUEST)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]  # left before the final event
    assert guard.breaker.failures == 2  # not reset as a success would
    assert guard.breaker.state == "closed"
    await drain(guard.stream(REQUEST))  # a whole stream is a success
    assert guard.breaker.failures == 0
