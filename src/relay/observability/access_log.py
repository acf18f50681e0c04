"""The access log: one line per request, by the cheapest route the logging setup allows."""

from __future__ import annotations

import logging
import time
from typing import Any

from relay.observability.logging import AccessRecord, LineHandler, LogLine, RelayFormatter


class AccessLog:
    """Writes each request's access line.

    When Relay set up logging itself (`relay serve`), the line is formatted
    from its fields and handed straight to Relay's LineHandler: no LogRecord,
    no walk up the loggers, no write of its own. Under any other setup (pytest's
    caplog, an embedding application's handlers or filters) it is an ordinary
    record given to the logger, so every handler and filter sees it. The route
    is chosen once, when the app starts, after logging is configured.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._direct = _sole_line_handler(logger)

    @property
    def direct(self) -> bool:
        return self._direct is not None

    @property
    def enabled(self) -> bool:
        """Whether a line would be written: callers skip building its fields when not."""
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._direct is None:
            self.logger.handle(AccessRecord(self.logger.name, fields))
            return
        handler, formatter = self._direct
        line = LogLine(time.time(), "INFO", self.logger.name, "request", fields)
        handler.add_line(formatter.format_line(line))


def _sole_line_handler(logger: logging.Logger) -> tuple[LineHandler, RelayFormatter] | None:
    """The handler a record of `logger` would reach, if it is the only one and Relay's own."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    formatter = handler.formatter
    if not isinstance(handler, LineHandler) or not isinstance(formatter, RelayFormatter):
        return None
    if handler.filters or handler.level > logging.INFO:
        return None
    return handler, formatter
