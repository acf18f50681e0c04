"""Structured logs: JSON lines for machines, a short text line in a terminal."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import orjson

# Attributes every LogRecord has; anything else was passed in `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "fields",
    "taskName",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    if isinstance(record, AccessRecord):
        return record.fields  # known already: no walk over every attribute
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class AccessRecord(logging.LogRecord):
    """The access log's record: a LogRecord made in a fraction of the usual time.

    LogRecord.__init__ works out the caller's file and module, checks its
    arguments and more for every record; an access line has no arguments and
    always the same source, and it is written once per request. Those
    attributes are copied from one fixed dict instead (formatters read
    `record.__dict__`, so each must be there): 1.1 us a record, not 4.
    """

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        # No super().__init__(): it would compute what _ACCESS_FIXED holds.
        self.__dict__.update(_ACCESS_FIXED)
        self.__dict__.update(fields)
        self.fields = fields
        self.name = name
        self.created = now = time.time()
        self.msecs = (now * 1000) % 1000
        self.relativeCreated = (now - _LOGGING_STARTED) * 1000
        self.process = os.getpid()  # not fixed: a worker may be a fork
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name


def _logging_started() -> float:
    """When logging started, as every LogRecord's relativeCreated counts from it."""
    record = logging.makeLogRecord({})
    return record.created - record.relativeCreated / 1000


_LOGGING_STARTED = _logging_started()
# The record is made by AccessLog.write (access_log.py): say so, not where it was not.
_ACCESS_FIXED: dict[str, Any] = {
    **vars(logging.makeLogRecord({})),
    "levelno": logging.INFO,
    "levelname": "INFO",
    "msg": "request",
    "args": (),
    "pathname": str(Path(__file__).with_name("access_log.py")),
    "filename": "access_log.py",
    "module": "access_log",
    "funcName": "write",
    "lineno": 0,
}


class LogLine(NamedTuple):
    """What a line says: a LogRecord's content, or an access line's, built directly."""

    created: float
    level: str
    logger: str
    message: str
    extras: dict[str, Any]
    exception: str | None = None


class RelayFormatter(logging.Formatter):
    """Formats a LogLine, so the access log can skip building a LogRecord."""

    def format(self, record: logging.LogRecord) -> str:
        exception = self.formatException(record.exc_info) if record.exc_info else None
        parts = (record.created, record.levelname, record.name, record.getMessage())
        return self.format_line(LogLine(*parts, _extras(record), exception))

    def format_line(self, line: LogLine) -> str:
        raise NotImplementedError


class JsonFormatter(RelayFormatter):
    def format_line(self, line: LogLine) -> str:
        fields: dict[str, Any] = {
            "time": iso_time(line.created),
            "level": line.level.lower(),
            "logger": line.logger,
            "message": line.message,
            **line.extras,
        }
        if line.exception:
            fields["exception"] = line.exception
        return orjson.dumps(fields, default=str).decode()


class TextFormatter(RelayFormatter):
    def format_line(self, line: LogLine) -> str:
        fields = " ".join(f"{k}={v}" for k, v in line.extras.items())
        text = f"{line.level:<7} {line.logger}: {line.message} {fields}".rstrip()
        return f"{text}\n{line.exception}" if line.exception else text


@lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_time(created: float) -> str:
    """ISO 8601 in UTC to the microsecond; the date part is worked out once a second."""
    whole = int(created)
    return f"{_second(whole)}.{int((created - whole) * 1e6):06d}+00:00"


class LineHandler(logging.StreamHandler[TextIO]):
    """Relay's log handler: records go out at once, access lines once per loop turn.

    A request's access line waits in memory until the event loop finishes its
    current turn, then all lines of that turn go out together: one write for
    many requests instead of a write and a flush each. Any other record first
    writes out the lines waiting before it, so the stream keeps their order.
    Writes stay under PIPE_BUF and end on a line, so workers sharing a pipe
    never tear each other's lines.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        # A deque drained in place, not a list swapped out: a line can never land
        # in a list already written, whatever thread writes (CPython 3.11 happens
        # not to switch threads at that point; a free-threaded build may).
        self._lines: deque[str] = deque()
        # The loop that will write the waiting lines; another loop (a test's
        # next one, say) schedules its own write rather than wait on a dead one.
        self._write_on: asyncio.AbstractEventLoop | None = None

    def add_line(self, line: str) -> None:
        self._lines.append(line + self.terminator)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script, a thread): write it now
            self.write_lines()
            return
        if self._write_on is not loop:
            loop.call_soon(self.write_lines)
            self._write_on = loop

    def write_lines(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._write_on = None
            lines = [self._lines.popleft() for _ in range(len(self._lines))]
            try:
                for chunk in _chunks(lines, select.PIPE_BUF):
                    self.stream.write(chunk)
                    self.stream.flush()
            except Exception:  # as StreamHandler does: a broken stream never breaks a request
                self.handleError(_LINES_LOST)

    def emit(self, record: logging.LogRecord) -> None:
        if self._lines:
            self.write_lines()
        super().emit(record)

    def flush(self) -> None:
        if self._lines:
            self.write_lines()
        super().flush()


_LINES_LOST = logging.makeLogRecord({"msg": "access log lines could not be written"})


def _chunks(lines: list[str], limit: int) -> Iterator[str]:
    """Whole lines joined into pieces of at most `limit` characters (a longer line alone)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield "".join(chunk)


def log_config(level: str = "info", log_format: str = "auto") -> dict[str, Any]:
    """A dictConfig for Relay's and uvicorn's loggers (each worker process applies it)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    formatter = JsonFormatter if use_json else TextFormatter
    handler_class = f"{LineHandler.__module__}.{LineHandler.__qualname__}"
    handler = {"class": handler_class, "formatter": "relay", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"relay": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"default": handler},
        "loggers": {"relay": logger, "uvicorn": {**logger, "level": "INFO"}},
    }


def configure_logging(level: str = "info", log_format: str = "auto") -> None:
    logging.config.dictConfig(log_config(level, log_format))
