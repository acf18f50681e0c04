"""Chat backends: one protocol, one module each. (Temporary: echo only.)"""

from __future__ import annotations

from relay.backends.base import Backend
from relay.backends.echo import EchoBackend
from relay.config import Settings


def make_backend(settings: Settings) -> Backend:
    return EchoBackend()
