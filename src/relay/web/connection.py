"""One HTTP/1.x connection: uvicorn's httptools protocol, with the bounds it lacks.

uvicorn with httptools (what `relay serve` runs: `http="auto"` picks it when it is
installed) takes request heads of any size: a header still arriving is buffered
whole, however large, and headers are not counted. Nor does it bound the time a
client takes to send a request: a connection that sends nothing, or one header
line a second, is held for as long as the client likes. uvicorn has no public
option for these (its `h11_max_incomplete_event_size` applies to h11 only), so
`relay serve` names this protocol to uvicorn through `uvicorn.Config`'s public
`http=` parameter. It adds:

- a cap on the request head (the request line and the headers together,
  `MAX_HEADER_BYTES`) and on the number of headers (`MAX_HEADERS`): past either,
  `431` in Relay's error shape, and the connection closes;
- a time to receive each request, head and body, from its first byte
  (`REQUEST_READ_TIMEOUT`): past it, `408` (if no answer has begun) and the
  connection closes;
- the keep-alive time (`KEEPALIVE_TIMEOUT`, uvicorn's own timer) before a
  connection's first request too, and whatever the client sends between
  requests (blank lines) does not restart it: uvicorn starts it only once an
  answer is sent, and stops it at any byte;
- Relay's error shape for a request the parser refuses (`400`), where uvicorn
  answers plain text;
- an HTTP/1.0 request's answer of unknown length (an SSE stream) ended by the
  close, where uvicorn chunks it (`CloseDelimitedCycle`).

The timeouts bound receiving a request, never answering it: once a request has
been read, its answer (an SSE stream of minutes) takes as long as it needs.

A refusal is written, then the connection stops sending (FIN) and drops what the
client still sends for a moment before it closes: closed at once with unread
bytes, the socket would reset, and the client could lose the answer unread.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

import httptools
from uvicorn._types import ASGISendEvent, HTTPResponseStartEvent
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from relay.config import Settings
from relay.jsonutil import dumps
from relay.web.errors import Problem, error_body
from relay.web.middleware.context import request_id_of

logger = logging.getLogger("relay.http")

# How long a refused connection still reads (and drops) what the client sends.
LINGER_SECONDS = 2.0
# ": " and CRLF around each header line; httptools hands over the name and value only.
HEADER_FRAMING = 4
NOT_HTTP = Problem(400, "bad_request", "The request is not valid HTTP/1.1.")


@dataclass(frozen=True, slots=True)
class ConnectionBounds:
    """What one connection allows a client (see the settings of the same names)."""

    max_header_bytes: int
    max_headers: int
    request_read_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionBounds:
        return cls(settings.max_header_bytes, settings.max_headers, settings.request_read_timeout)


@cache
def process_bounds() -> ConnectionBounds:
    """The bounds, read once per process from the settings, as `create_app` reads them.

    uvicorn builds each connection's protocol itself, in every worker, from the class
    named to it: reading the settings is the only way in for Relay's values.
    """
    return ConnectionBounds.from_settings(Settings())


class CloseDelimitedCycle(RequestResponseCycle):
    """An HTTP/1.0 request's cycle: an answer of unknown length (an SSE stream) goes out
    as it comes and ends with the connection, never chunked.

    HTTP/1.0 has no chunked transfer coding, and a server must not send one to an
    HTTP/1.0 client (RFC 9112, section 6.1), which would read the chunk sizes as part
    of the body. uvicorn's cycle chunks every answer that declares no length; this one
    marks such an answer as not chunked, then lets each part through as a length of
    its own. uvicorn closes an HTTP/1.0 connection after its answer, which ends it.
    """

    close_delimited = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            if _length_unknown(message, self.scope["method"]):
                self.close_delimited = True
                self.chunked_encoding = False  # so uvicorn adds no Transfer-Encoding
        elif message["type"] == "http.response.body" and self.close_delimited:
            # uvicorn checks each part against the length left: each part is all there is.
            self.expected_content_length = len(message.get("body", b""))
        await super().send(message)


def _length_unknown(start: HTTPResponseStartEvent, method: str) -> bool:
    """Whether uvicorn would chunk this answer: it has a body and declares no length."""
    if method == "HEAD" or start["status"] in (204, 304):
        return False
    headers = start["headers"] = list(start.get("headers", ()))  # read twice: not an iterator
    return not any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)


class HeadRefused(Exception):
    """Raised in a parser callback to stop the parser; the refusal is already decided."""


class RelayHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol, bounded. Its per-request work is a few attribute updates:
    a request head's size is known exactly only when it might be too large.

    httptools hands over each header once it is whole; a header still arriving
    waits in its buffer, unseen. So the head is measured by the chunks it came in:
    `head_first`, the chunk it began in, and `head_later`, every chunk that arrived
    while it was open. Their sum bounds its size from above: only past the cap is
    the head measured exactly, once whole. `head_later` alone bounds it from below
    while it is unfinished (each such chunk is the head's, whole), so a header that
    never ends is refused once `head_later` passes the cap.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds = process_bounds()
        self.chunk_size = 0  # of the chunk being parsed
        self.head_open = False
        self.head_first = 0
        self.head_later = 0
        self.refusal: Problem | None = None  # decided in a callback, answered after it
        self.refused = False
        self.reading = False  # from a request's first byte to its last
        self.read_deadline: float | None = None  # the arriving request's, while it counts
        self.read_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse `data`; a head past its bounds, or what the parser refuses, is refused.

        Unlike uvicorn's, this does not stop the keep-alive timer: a request's first
        byte does (`on_message_begin`), so bytes that begin no request keep nothing open.
        """
        if self.refused:
            return  # the refusal is out: what still comes is dropped until the close
        self.chunk_size = len(data)
        if self.head_open:
            self.head_later += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserError:
            self.refuse(self.refusal or NOT_HTTP)
        else:
            # Still open after this chunk (a head that began in it starts from 0 again).
            if self.head_open and self.head_later > self.bounds.max_header_bytes:
                self.refuse(self._head_too_large())

    def _upgrade(self) -> None:
        """What uvicorn does with an upgrade request (WebSocket, or a warning)."""
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_open = True
        self.head_first = self.chunk_size
        self.head_later = 0
        self._unset_keepalive_if_required()
        self.reading = True
        if not self._answering_another():
            self._start_read_timer()
        # else: pipelined behind an answer still due; its time starts after that answer.

    def on_headers_complete(self) -> None:
        self.head_open = False
        bounds = self.bounds
        if len(self.headers) > bounds.max_headers or (
            self.head_first + self.head_later > bounds.max_header_bytes
            and self._head_size() > bounds.max_header_bytes
        ):
            self.refusal = self._head_too_large()
            raise HeadRefused
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before and self.scope["http_version"] == "1.0":
            # uvicorn makes the cycle itself; its class changes here, before the app's
            # task (just created) first runs. It adds no state, only its own `send`.
            self.cycle.__class__ = CloseDelimitedCycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading = False
        self.read_deadline = None

    def on_response_complete(self) -> None:
        """After uvicorn's: a request still arriving may now have the connection's attention."""
        super().on_response_complete()
        if self.reading and not self.refused:
            self._unset_keepalive_if_required()  # uvicorn set it, but a request is under way
            if self.read_deadline is None and not self._answering_another():
                self._start_read_timer()

    def _head_size(self) -> int:
        """The whole head's size, as httptools handed it over (request target, headers)."""
        framed = sum(len(name) + len(value) + HEADER_FRAMING for name, value in self.headers)
        return len(self.url) + framed

    def _head_too_large(self) -> Problem:
        bounds = self.bounds
        if self.headers is not None and len(self.headers) > bounds.max_headers:
            message = f"The request has more than {bounds.max_headers} headers."
        else:
            message = f"The request line and headers exceed {bounds.max_header_bytes} bytes."
        return Problem(431, "headers_too_large", message)

    # The request's time. One timer per connection, not per request: a request read
    # in time only clears its deadline, and the timer, when it fires, moves on to the
    # deadline of the request arriving then, if any.

    def _start_read_timer(self) -> None:
        self.read_deadline = deadline = self.loop.time() + self.bounds.request_read_timeout
        if self.read_timer is None:
            self.read_timer = self.loop.call_at(deadline, self._read_timer_fired)

    def _cancel_read_timer(self) -> None:
        self.read_deadline = None
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _read_timer_fired(self) -> None:
        self.read_timer = None
        deadline = self.read_deadline
        if deadline is None:
            return  # no request is arriving against the clock
        if deadline > self.loop.time():  # a later request's deadline
            self.read_timer = self.loop.call_at(deadline, self._read_timer_fired)
            return
        seconds = self.bounds.request_read_timeout
        message = f"The request was not received within {seconds:g} seconds."
        self.refuse(Problem(408, "request_timeout", message))

    # Whose answer is due

    def _own_cycle(self) -> RequestResponseCycle | None:
        """The cycle of the request arriving, once its head is in (uvicorn makes it then)."""
        return self.cycle if self.reading and not self.head_open else None

    def _answering_another(self) -> bool:
        """Whether an answer to an earlier request than the one arriving is still due."""
        if self.pipeline:  # requests queued behind one being answered
            return True
        cycle = self.cycle
        return cycle is not None and cycle is not self._own_cycle() and not cycle.response_complete

    # Refusals

    def refuse(self, problem: Problem) -> None:
        """Answer `problem` in Relay's error shape and close the connection.

        Answers go out in the order of the requests: while an earlier request's answer
        is still due, or once the refused request has an answer of the app's under way,
        there is no room for this one, and the connection just closes. If the app is
        reading the refused request, it learns that the client is gone, and whatever
        it answers is dropped.
        """
        own = self._own_cycle()
        no_room = self._answering_another() or (own is not None and own.response_started)
        self.refused = True
        self.reading = False
        self._cancel_read_timer()
        self._unset_keepalive_if_required()
        if no_room:
            self.transport.close()
            return
        if own is not None:
            own.disconnected = True
            own.message_event.set()
        # The caller's X-Request-ID, if its header came before the refusal.
        request_id = request_id_of(self.headers or ())
        logger.info(
            "request refused",
            extra={"request_id": request_id, "status": problem.status, "error": problem.code},
        )
        self.transport.write(self._answer(problem, request_id))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _answer(self, problem: Problem, request_id: str) -> bytes:
        body = dumps(error_body(problem.code, problem.message, request_id))
        parts = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: %s\r\n" % request_id.encode(),
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(parts)
