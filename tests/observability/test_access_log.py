"""The access log's direct route: same lines as the logging route, batched per loop turn."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import select
from datetime import UTC, datetime
from typing import Any

import pytest

from relay.observability.access_log import AccessLog
from relay.observability.logging import (
    AccessRecord,
    JsonFormatter,
    LineHandler,
    LogLine,
    TextFormatter,
    configure_logging,
    iso_time,
)

FIELDS = {
    "request_id": "req-1",
    "client_id": "cl_1",
    "method": "GET",
    "route": "/v1/tools",
    "status": 200,
    "duration_ms": 1.25,
}


class RecordingStream(io.StringIO):
    """A stream that remembers each write call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def relay_like_logger() -> tuple[logging.Logger, RecordingStream]:
    """A logger set up as `relay serve` sets up Relay's: one LineHandler, no propagation.

    Made inside the test: pytest adds its capture handler to every logger that
    does not propagate when a test phase starts, which would make a second handler.
    """
    logger = logging.getLogger(f"relay-test-access.{secrets.token_hex(4)}")
    stream = RecordingStream()
    handler = LineHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


def write_on_a_loop_that_stops(access: AccessLog, fields: dict[str, Any]) -> None:
    """Write a line on a loop that stops (and closes) before its turn's callbacks run."""
    loop = asyncio.new_event_loop()

    def write_and_stop() -> None:
        access.write(fields)
        loop.stop()  # callbacks scheduled from here on never run

    loop.call_soon(write_and_stop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_lines_wait_for_the_loop_turn_and_stay_in_order_with_other_records() -> None:
    logger, stream = relay_like_logger()
    access = AccessLog(logger)
    assert access.direct
    for number in range(3):
        access.write({**FIELDS, "request_id": f"req-{number}"})
    assert stream.getvalue() == ""  # not yet: the loop's turn is not over
    logger.warning("something else")  # goes out at once, after the lines before it
    access.write({**FIELDS, "request_id": "req-3"})
    assert [line.get("request_id") for line in lines(stream)] == ["req-0", "req-1", "req-2", None]
    await asyncio.sleep(0)  # the turn ends: the waiting line is written
    written = lines(stream)
    assert [line["message"] for line in written] == ["request"] * 3 + ["something else", "request"]
    assert written[-1]["request_id"] == "req-3"


def test_direct_line_is_the_line_the_formatter_makes_of_a_record() -> None:
    logger, stream = relay_like_logger()
    AccessLog(logger).write(FIELDS)  # no running loop: written at once
    (direct,) = lines(stream)
    from_record = json.loads(JsonFormatter().format(AccessRecord(logger.name, FIELDS)))
    assert direct.keys() == from_record.keys()
    assert {**direct, "time": None} == {**from_record, "time": None}
    assert datetime.fromisoformat(direct["time"]).tzinfo is not None


def test_text_format_matches_too() -> None:
    record = AccessRecord("relay.access", FIELDS)
    formatter = TextFormatter()
    direct = formatter.format_line(
        LogLine(record.created, "INFO", "relay.access", "request", FIELDS)
    )
    assert direct == formatter.format(record)
    assert direct.startswith("INFO    relay.access: request request_id=req-1")


async def test_writes_end_on_a_line_and_fit_in_an_atomic_pipe_write() -> None:
    logger, stream = relay_like_logger()
    access = AccessLog(logger)
    sent = [f"req-{number:04d}-" + "x" * 100 for number in range(200)]
    for request_id in sent:
        access.write({**FIELDS, "request_id": request_id})
    await asyncio.sleep(0)
    assert len(stream.writes) > 1  # 200 lines do not fit in one atomic write
    for chunk in stream.writes:
        assert len(chunk.encode()) <= select.PIPE_BUF
        assert chunk.endswith("\n")
    assert [line["request_id"] for line in lines(stream)] == sent


def test_other_setups_get_ordinary_records() -> None:
    logger, stream = relay_like_logger()
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger.addHandler(Keep())  # a second handler: it must see the record too
    access = AccessLog(logger)
    assert not access.direct
    access.write(FIELDS)
    assert [getattr(record, "request_id", None) for record in seen] == ["req-1"]
    assert lines(stream)[0]["request_id"] == "req-1"

    filtered = logging.getLogger(f"{logger.name}.filtered")
    filtered.addFilter(lambda record: False)  # a filter must be able to drop it
    assert not AccessLog(filtered).direct


def test_nothing_is_built_below_info() -> None:
    logger, stream = relay_like_logger()
    logger.setLevel(logging.WARNING)
    AccessLog(logger).write(FIELDS)
    assert stream.getvalue() == ""


def test_handler_flush_writes_waiting_lines() -> None:
    """logging.shutdown() flushes handlers at exit: no waiting line may be lost."""
    logger, stream = relay_like_logger()
    (handler,) = logger.handlers
    assert isinstance(handler, LineHandler)

    write_on_a_loop_that_stops(AccessLog(logger), FIELDS)
    assert stream.getvalue() == ""
    handler.flush()
    assert [line["request_id"] for line in lines(stream)] == ["req-1"]


@pytest.mark.parametrize("created", [1764072000.0, 1764072000.5, 1764072000.000001, 1.999999])
def test_iso_time_is_isoformat_to_the_microsecond(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC)
    assert abs((datetime.fromisoformat(iso_time(created)) - expected).total_seconds()) < 2e-6
    assert iso_time(created).endswith("+00:00")


def test_a_new_loop_writes_lines_a_closed_loop_left_waiting() -> None:
    logger, stream = relay_like_logger()
    access = AccessLog(logger)

    write_on_a_loop_that_stops(access, {**FIELDS, "request_id": "on-the-first-loop"})
    assert stream.getvalue() == ""

    async def write_again() -> None:
        access.write({**FIELDS, "request_id": "on-the-second-loop"})

    asyncio.run(write_again())
    expected = ["on-the-first-loop", "on-the-second-loop"]
    assert [line["request_id"] for line in lines(stream)] == expected


def test_relay_serve_logging_takes_the_direct_route() -> None:
    relay_logger = logging.getLogger("relay")
    saved = (relay_logger.handlers[:], relay_logger.propagate, relay_logger.level)
    try:
        configure_logging("info", "json")
        assert AccessLog(logging.getLogger("relay.access")).direct
        configure_logging("warning", "text")  # still Relay's handler: direct, but silent
        access = AccessLog(logging.getLogger("relay.access"))
        assert access.direct and not access.logger.isEnabledFor(logging.INFO)
    finally:
        relay_logger.handlers[:], relay_logger.propagate = saved[0], saved[1]
        relay_logger.setLevel(saved[2])


async def test_a_broken_stream_loses_lines_but_never_breaks_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, _ = relay_like_logger()
    (handler,) = logger.handlers
    assert isinstance(handler, LineHandler)

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("the reader went away")

    handler.setStream(Broken())
    reported: list[str] = []
    monkeypatch.setattr(handler, "handleError", lambda record: reported.append(record.msg))
    access = AccessLog(logger)
    access.write(FIELDS)
    await asyncio.sleep(0)  # the turn's write fails: reported, not raised
    access.write(FIELDS)
    logger.warning("a record after it")  # writes the waiting line first: fails the same way
    assert reported == ["access log lines could not be written"] * 2 + ["a record after it"]
