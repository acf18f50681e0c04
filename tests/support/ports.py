"""Local TCP ports for tests: one to listen on, one that refuses connections."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at the moment of the call.

    The port is released before it is returned, so another process could take it
    before the caller binds it; tests accept that small race for a simple API.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once).

    The same as free_port(); the name says what the test relies on: a refusal.
    """
    return free_port()
