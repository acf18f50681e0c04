"""Random hex for ids, drawn from the OS a few kilobytes at a time.

Every request needs a request id and every chat three record ids; one
`os.urandom` system call each is most of their cost. The bytes are the same
kernel randomness, fetched in bulk; a forked child starts with an empty pool,
so no two processes hand out the same bytes. Keys and secrets still come
from `secrets`: these bytes wait in memory until an id uses them.
"""

from __future__ import annotations

import os
import threading

POOL_BYTES = 4096
_pool = bytearray()
# Two threads must never take the same bytes. CPython 3.11 cannot switch threads
# between the slice and the del below, but a free-threaded build can.
_taking = threading.Lock()


def random_hex(nbytes: int) -> str:
    """`nbytes` random bytes as hex (twice as many characters), like `secrets.token_hex`."""
    global _pool
    with _taking:
        if len(_pool) < nbytes:
            _pool = bytearray(os.urandom(max(POOL_BYTES, nbytes)))
        taken = _pool[-nbytes:]
        del _pool[-nbytes:]
    return taken.hex()


def _forget_pool() -> None:
    global _pool
    _pool = bytearray()


os.register_at_fork(after_in_child=_forget_pool)
