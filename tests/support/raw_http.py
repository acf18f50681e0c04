"""HTTP/1.x by hand over a socket, for what no HTTP client sends: heads too large or
never finished, bytes trickled one at a time, HTTP/1.0."""

from __future__ import annotations

import re
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

import orjson

from tests.support.processes import Instance

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in the order sent
    body: bytes  # as it came on the wire (chunked framing included)

    def header(self, name: str) -> str | None:
        """The first value of header `name`, or None."""
        return next((value for key, value in self.headers if key == name.lower()), None)

    def json(self) -> Any:
        return orjson.loads(self.body)


def connect(instance: Instance, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the instance; each recv or send waits at most `timeout` s."""
    host, port = instance.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def answered(sock: socket.socket, wait: float = 0.0) -> bool:
    """Whether the server sent something (an answer, or its close) within `wait` s."""
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


def send(sock: socket.socket, data: bytes) -> bool:
    """Send all of `data`; False if the server had closed the connection first."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def read_to_close(sock: socket.socket, deadline: float = 10.0) -> bytes:
    """Everything the server sends until it closes; TimeoutError if it is still open
    after `deadline` seconds. A reset ends the reading like a close."""
    received = bytearray()
    ends = time.monotonic() + deadline
    while True:
        left = ends - time.monotonic()
        if left <= 0 or not answered(sock, left):
            raise TimeoutError(f"still open after {deadline} s; got {bytes(received[:200])!r}")
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


def parse(raw: bytes) -> RawResponse:
    """One response: its status line, headers and the rest as the body."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete response head in {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return RawResponse(int(status_line.split()[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    """A chunked body's content (RFC 9112, section 7.1; no chunk extensions or trailers)."""
    content = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(content)
        content += body[:size]
        assert body[size : size + 2] == b"\r\n", f"bad chunk end in {body[:200]!r}"
        body = body[size + 2 :]


def exchange(instance: Instance, request: bytes, deadline: float = 10.0) -> RawResponse:
    """Send `request` on a new connection and read the answer until the server closes."""
    with connect(instance) as sock:
        send(sock, request)
        return parse(read_to_close(sock, deadline))


def assert_refused(
    response: RawResponse, status: int, code: str, request_id: str | None = None
) -> str:
    """A refusal of the connection itself: the one error shape, the connection closing,
    and `request_id` (the caller's) or a new one. Returns the error's message."""
    assert response.status == status, response
    assert response.header("content-type") == "application/json"
    assert response.header("connection") == "close"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.header("x-request-id")
    if request_id is None:
        assert GENERATED_ID.match(error["request_id"])
    else:
        assert error["request_id"] == request_id
    message: str = error["message"]
    return message
