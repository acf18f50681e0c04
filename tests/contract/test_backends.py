"""One contract for every backend, through the real SDKs and aiohttp against fake servers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal

import pytest

from relay.backends.base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    ChatMessage,
    ChatRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from tests.contract.conftest import BACKEND_KEY, BackendCase
from tests.support.servers import UpstreamServer
from tests.support.servers.base import split_words
from tests.support.servers.upstream_server import TOOLS as UPSTREAM_TOOLS

Mode = Literal["complete", "stream"]
MODES: list[Mode] = ["complete", "stream"]
OTHER_KEY = "sk-wrong-contract-SECRET-77d1"
HELLO = ChatRequest([ChatMessage("user", "hello there, relay")], request_id="req-hello")
CONVERSATION = ChatRequest(
    messages=[
        ChatMessage("user", "What is the capital of France?"),
        ChatMessage("assistant", "Paris."),
        ChatMessage("user", "And the capital of Italy?"),
    ],
    model="custom-model",
    system="Answer in one word.",
    request_id="req-conversation-1",
)
WEATHER = ToolSpec(
    "lookup_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def collect(
    backend: Backend, request: ChatRequest
) -> tuple[list[StreamEvent], BackendError | None]:
    """Every event the stream yielded, and the error that ended it, if any."""
    events: list[StreamEvent] = []
    try:
        async for event in backend.stream(request):
            events.append(event)
    except BackendError as error:
        return events, error
    return events, None


async def failure(backend: Backend, mode: Mode, request: ChatRequest = HELLO) -> BackendError:
    """The error a call raises, in either mode."""
    if mode == "complete":
        with pytest.raises(BackendError) as info:
            await backend.complete(request)
        return info.value
    _, error = await collect(backend, request)
    assert error is not None, "the stream should have failed"
    return error


def assert_clean(error: BaseException) -> None:
    """No key, header or URL in the error, nor in an exception chained to it."""
    for text in (str(error), repr(error)):
        for secret in (BACKEND_KEY, OTHER_KEY, "Bearer", "http://", "127.0.0.1"):
            assert secret not in text
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


async def test_complete_reports_content_model_and_usage(backend_case: BackendCase) -> None:
    backend = backend_case.make()
    completion = await backend.complete(HELLO)
    reply = backend_case.reply("hello there, relay")
    assert backend.name == backend_case.kind
    assert completion.content == reply
    assert completion.model == backend_case.model()
    assert completion.usage == Usage(input_tokens=3, output_tokens=len(reply.split()))


async def test_stream_yields_ordered_deltas_then_one_end(backend_case: BackendCase) -> None:
    backend = backend_case.make()
    events, error = await collect(backend, HELLO)
    completion = await backend.complete(HELLO)
    assert error is None
    deltas, end = events[:-1], events[-1]
    assert all(isinstance(event, TextDelta) for event in deltas)
    texts = [event.text for event in deltas if isinstance(event, TextDelta)]
    assert texts == split_words(completion.content)
    assert len(texts) > 1
    assert "".join(texts) == completion.content
    assert end == StreamEnd(completion.model, completion.usage)


@pytest.mark.parametrize("mode", MODES)
async def test_conversation_system_and_model_reach_the_backend(
    backend_case: BackendCase, mode: Mode
) -> None:
    backend = backend_case.make()
    if mode == "complete":
        model = (await backend.complete(CONVERSATION)).model
    else:
        events, _ = await collect(backend, CONVERSATION)
        assert isinstance(events[-1], StreamEnd)
        model = events[-1].model
    assert model == backend_case.model("custom-model")
    if backend_case.server is None:
        return  # echo has no wire protocol to inspect
    server = backend_case.server
    (sent,) = server.calls(server.chat_path)
    expected = server.wire_request(CONVERSATION, "custom-model")
    if mode == "stream":
        expected |= server.stream_marker
    assert sent.body | expected == sent.body
    assert "tools" not in sent.body
    if backend_case.kind == "anthropic":
        assert sent.body["max_tokens"] == 256


@pytest.mark.parametrize("mode", MODES)
async def test_tools_pass_through(backend_case: BackendCase, mode: Mode) -> None:
    if backend_case.kind not in ("anthropic", "openai"):
        pytest.skip(f"{backend_case.kind}: its protocol carries no tools in a chat request")
    server = backend_case.fake
    backend = backend_case.make()
    request = ChatRequest([ChatMessage("user", "weather in Paris?")], tools=[WEATHER])
    if mode == "complete":
        await backend.complete(request)
    else:
        await collect(backend, request)
    (sent,) = server.calls(server.chat_path)
    assert sent.body["tools"] == [server.wire_tool(WEATHER)]


async def test_tools_listing(backend_case: BackendCase) -> None:
    expected = UPSTREAM_TOOLS if backend_case.kind == "upstream" else []
    assert await backend_case.make().tools() == expected


async def test_health_ok(backend_case: BackendCase) -> None:
    report = await backend_case.make().health()
    assert report.status == "ok"
    assert report.latency_ms >= 0
    if backend_case.server is not None:
        (probe,) = backend_case.server.requests
        assert probe.method == "GET"  # a free listing, never a paid completion


async def test_health_down_and_calls_fail_when_server_stopped(backend_case: BackendCase) -> None:
    server = backend_case.fake
    backend = backend_case.make()
    await server.stop()
    report = await backend.health()
    assert report.status == "down"
    assert report.detail is not None
    for secret in (BACKEND_KEY, "127.0.0.1", "http"):
        assert secret not in report.detail
    error = await failure(backend, "complete")
    assert type(error) is BackendError
    assert_clean(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("header", ["seconds", "http-date"])
async def test_rate_limited_is_busy_with_retry_after(
    backend_case: BackendCase, mode: Mode, header: str
) -> None:
    server = backend_case.fake
    later = datetime.now(UTC) + timedelta(seconds=30)
    retry_after = "7" if header == "seconds" else format_datetime(later, usegmt=True)
    server.plan(status=429, kind="rate_limit", retry_after=retry_after)
    error = await failure(backend_case.make(backend_max_retries=1), mode)
    assert isinstance(error, BackendBusy)
    assert error.retry_after == pytest.approx(7.0 if header == "seconds" else 30.0, abs=2)
    assert len(server.calls(server.chat_path)) == 1  # the wait is the client's, not ours
    assert_clean(error)


@pytest.mark.parametrize("mode", MODES)
async def test_overloaded_is_busy(backend_case: BackendCase, mode: Mode) -> None:
    server = backend_case.fake
    server.plan(status=server.overloaded_status, kind="overloaded")
    error = await failure(backend_case.make(), mode)
    assert isinstance(error, BackendBusy)
    assert error.retry_after is None
    assert_clean(error)


@pytest.mark.parametrize("mode", MODES)
async def test_unavailable_without_a_busy_code_is_busy(
    backend_case: BackendCase, mode: Mode
) -> None:
    """A 503 whose body names no busy code (vLLM's, a proxy's) is still "come back later"."""
    backend_case.fake.plan(status=503, kind="server")
    error = await failure(backend_case.make(), mode)
    assert isinstance(error, BackendBusy)
    assert_clean(error)


async def test_busy_error_code_in_body_is_busy(backend_case: BackendCase) -> None:
    server = backend_case.fake
    server.plan(status=503, body={"error": {"code": "backend_busy", "message": "try later"}})
    error = await failure(backend_case.make(), "complete")
    assert isinstance(error, BackendBusy)
    assert "backend_busy" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_server_error_is_backend_error(backend_case: BackendCase, mode: Mode) -> None:
    backend_case.fake.plan(status=500, kind="server")
    error = await failure(backend_case.make(), mode)
    assert type(error) is BackendError
    assert "500" in str(error)
    assert_clean(error)


@pytest.mark.parametrize("mode", MODES)
async def test_refused_key_is_backend_error_not_auth(backend_case: BackendCase, mode: Mode) -> None:
    backend_case.fake  # noqa: B018  (skips echo)
    error = await failure(backend_case.make_with_key(OTHER_KEY), mode)
    assert type(error) is BackendError  # a 502 for Relay's client, never a 401/403
    assert "refused" in str(error)
    assert_clean(error)


async def test_refused_key_makes_health_down(backend_case: BackendCase) -> None:
    backend_case.fake  # noqa: B018  (skips echo)
    report = await backend_case.make_with_key(OTHER_KEY).health()
    assert report.status == "down"
    assert report.detail is not None
    assert OTHER_KEY not in report.detail


@pytest.mark.parametrize("mode", MODES)
async def test_slow_backend_times_out(backend_case: BackendCase, mode: Mode) -> None:
    backend_case.fake.plan(delay=2.0, times=None)
    started = time.perf_counter()
    error = await failure(backend_case.make(backend_timeout=0.3, backend_max_retries=1), mode)
    assert isinstance(error, BackendTimeout)
    assert time.perf_counter() - started < 1.5
    assert_clean(error)


async def test_stream_that_goes_silent_times_out_after_first_deltas(
    backend_case: BackendCase,
) -> None:
    backend_case.fake.plan(stall_after=2, stall=2.0)
    started = time.perf_counter()
    events, error = await collect(backend_case.make(backend_timeout=0.3), HELLO)
    assert len(events) == 2
    assert isinstance(error, BackendTimeout)
    assert time.perf_counter() - started < 1.5
    assert_clean(error)


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_answer_is_backend_error(backend_case: BackendCase, mode: Mode) -> None:
    backend_case.fake.plan(raw_body="{this is not json")
    error = await failure(backend_case.make(), mode)
    assert type(error) is BackendError
    assert_clean(error)


async def test_retries_are_bounded(backend_case: BackendCase) -> None:
    server = backend_case.fake
    server.plan(status=500, times=None)
    error = await failure(backend_case.make(backend_max_retries=1), "complete")
    assert type(error) is BackendError
    assert len(server.calls(server.chat_path)) == 2


async def test_a_retry_recovers_from_one_server_error(backend_case: BackendCase) -> None:
    server = backend_case.fake
    server.plan(status=502)
    completion = await backend_case.make(backend_max_retries=1).complete(HELLO)
    assert completion.content == backend_case.reply("hello there, relay")
    assert len(server.calls(server.chat_path)) == 2


@pytest.mark.parametrize("how", ["connection closed", "error event"])
async def test_stream_broken_midway_fails_after_first_deltas(
    backend_case: BackendCase, how: str
) -> None:
    server = backend_case.fake
    if how == "connection closed":
        server.plan(break_after=2)
    else:
        server.plan(error_after=2, kind="server")
    events, error = await collect(backend_case.make(backend_max_retries=1), HELLO)
    expected = split_words(backend_case.reply("hello there, relay"))[:2]
    assert events == [TextDelta(text) for text in expected]
    assert type(error) is BackendError
    assert_clean(error)
    assert len(server.calls(server.chat_path)) == 1  # never retried once deltas went out


async def test_upstream_gets_request_id_and_authorization(backend_case: BackendCase) -> None:
    if backend_case.kind != "upstream":
        pytest.skip("X-Request-ID and a bearer key are the upstream protocol's")
    server = backend_case.fake
    backend = backend_case.make()
    await backend.complete(CONVERSATION)
    await collect(backend, HELLO)
    await backend.tools()
    chat, stream, tools = server.requests
    assert chat.headers["X-Request-ID"] == CONVERSATION.request_id
    assert stream.headers["X-Request-ID"] == HELLO.request_id
    for sent in (chat, stream, tools):
        assert sent.headers["Authorization"] == f"Bearer {BACKEND_KEY}"


async def test_upstream_url_credentials_become_basic_auth_and_never_leak() -> None:
    server = UpstreamServer()
    url = await server.start()
    credentialed = url.replace("http://", "http://relay:pw-SECRET-123@")
    case = BackendCase("upstream", server)
    try:
        backend = case.make(upstream_url=credentialed, upstream_api_key=None)
        await backend.complete(HELLO)
        assert server.requests[0].headers["Authorization"].startswith("Basic ")
        await server.stop()
        error = await failure(backend, "complete")
        assert "pw-SECRET-123" not in str(error)
        assert_clean(error)
    finally:
        for made in case.made:
            await made.close()
        await server.stop()
