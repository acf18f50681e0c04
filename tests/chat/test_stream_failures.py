"""A stream whose events raise after it began still ends with one `error` event, cleanly.

By then the status line is sent: an exception escaping the body would cut the
connection mid-transfer (curl's error 18) with nothing said.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from relay.backends.base import BackendTimeout, Usage
from relay.chat.events import ChatEvent, ReplyDelta, ReplyFailed, ReplyFinished, ReplyStarted
from relay.storage.base import StoreUnavailable
from relay.web.sse import with_keepalive
from tests.chat.test_streaming import Event, parse_sse


async def streamed(events: AsyncIterator[ChatEvent]) -> list[Event]:
    """The events a client reads; no exception may come out of the body."""
    body = b"".join([chunk async for chunk in with_keepalive(events, 1.0, "req-1")])
    return parse_sse(body.decode())


async def started_then(error: Exception) -> AsyncIterator[ChatEvent]:
    yield ReplyStarted("msg_1", "conv_1", "echo")
    yield ReplyDelta("so far")
    raise error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StoreUnavailable("SQLite: the writer process exited"), "database_unavailable"),
        (BackendTimeout("no answer"), "backend_timeout"),
        (RuntimeError("a bug"), "internal_error"),
    ],
)
async def test_events_that_raise_end_with_an_error_event(
    error: Exception, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = await streamed(started_then(error))
    assert [name for name, _ in events] == ["message_start", "delta", "error"]
    assert events[-1][1]["error"]["code"] == code
    # What the exception said stays in the log, never in the stream.
    assert str(error) not in events[-1][1]["error"]["message"]
    logged = [r for r in caplog.records if r.name == "relay.errors"]
    assert [r.request_id for r in logged] == ["req-1"]  # type: ignore[attr-defined]
    if code == "internal_error":
        assert logged[0].levelno == logging.ERROR and logged[0].exc_info is not None


async def test_a_failure_after_the_last_event_adds_no_second_one() -> None:
    """The stream said how it ended: a failure while cleaning up is the log's, not the client's."""

    async def ended(last: ChatEvent) -> AsyncIterator[ChatEvent]:
        yield ReplyStarted("msg_1", "conv_1", "echo")
        try:
            yield last
        finally:
            raise StoreUnavailable("the key could not be freed")

    finished = ReplyFinished("msg_1", Usage(1, 1), datetime.now(UTC))
    for last, name in ((finished, "message_end"), (ReplyFailed(BackendTimeout()), "error")):
        assert [n for n, _ in await streamed(ended(last))] == ["message_start", name]
