"""API keys: `rly_<prefix>_<secret>`. The prefix finds the row; only a bcrypt hash is kept.

bcrypt is slow on purpose, so it always runs in threads of its own, below the
event loop's CPU priority, and the number of hashes at once is bounded so a
flood of guesses cannot starve the machine. `Turns` bounds one source's share
of those threads, so a flood from one address cannot starve other addresses'
exchanges either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import bcrypt

KEY_PATTERN = re.compile(r"^(rly_[0-9a-f]{10})_[A-Za-z0-9_-]{43}$")
# Hashes at once, for the whole process (every event loop shares the threads):
# leave a core to the event loop, so a flood of token exchanges cannot starve
# authenticated requests of CPU. More wait in the pool's queue.
BCRYPT_SLOTS = max(1, (os.cpu_count() or 2) - 1)

# Niceness the hashing threads add to the loop's: when a core is contended, the
# event loop gets about nine tenths of it, so token exchanges slow down before
# requests do (the bench: tools p99 during exchanges 1.57x quiet -> 1.16x).
BCRYPT_NICENESS = 10

# Key checks one source (an address) may have in the hashing threads at once;
# its others wait their turn outside, so another source's check is queued
# behind at most this many of the flood's.
CHECKS_PER_SOURCE = 2
T = TypeVar("T")


def _lower_priority() -> None:
    """Runs first in each hashing thread. Linux gives each thread its own nice value."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        thread = threading.get_native_id()
        inherited = os.getpriority(os.PRIO_PROCESS, thread)  # the loop thread's
        os.setpriority(os.PRIO_PROCESS, thread, min(19, inherited + BCRYPT_NICENESS))


_hashing_threads = ThreadPoolExecutor(
    max_workers=BCRYPT_SLOTS, thread_name_prefix="relay-bcrypt", initializer=_lower_priority
)


_in_pool = 0  # hashes handed to the threads and not finished (queued or running)
_in_pool_lock = threading.Lock()  # event loops of several threads share the pool


def checks_in_pool() -> int:
    """Hashes and key checks handed to the hashing threads, queued or running, right now."""
    return _in_pool


def _count_in_pool(change: int) -> None:
    global _in_pool
    with _in_pool_lock:
        _in_pool += change


async def _off_the_loop(work: Callable[..., T], *args: object) -> T:
    _count_in_pool(1)
    try:
        return await asyncio.get_running_loop().run_in_executor(_hashing_threads, work, *args)
    finally:
        _count_in_pool(-1)


@dataclass(slots=True)
class _Source:
    turn: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CHECKS_PER_SOURCE))
    users: int = 0  # holding or waiting for a turn; the entry goes when none is left


class Turns:
    """At most CHECKS_PER_SOURCE key checks at once per source; the others wait in line.

    Waiting is bounded by the caller: the token route admits at most
    RATE_LIMIT_AUTH_FAILURES exchanges per address at once.
    """

    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}

    @contextlib.asynccontextmanager
    async def turn(self, source: str) -> AsyncIterator[None]:
        """Wait for `source`'s turn to check a key, and hold it for the block."""
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = _Source()
        entry.users += 1
        try:
            async with entry.turn:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._sources[source]


def generate_key() -> tuple[str, str]:
    """A new (api_key, key_prefix); 56 bytes, under bcrypt's 72-byte limit."""
    prefix = f"rly_{secrets.token_hex(5)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def prefix_of(api_key: str) -> str | None:
    match = KEY_PATTERN.match(api_key)
    return match.group(1) if match else None


async def hash_key(api_key: str, rounds: int) -> str:
    salt = bcrypt.gensalt(rounds)
    hashed = await _off_the_loop(bcrypt.hashpw, api_key.encode(), salt)
    return hashed.decode()


@lru_cache(maxsize=8)
def _decoy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds))


async def verify_key(api_key: str, key_hash: str | None, rounds: int) -> bool:
    """Check a key; with no hash (unknown prefix) spend the same time and say no."""
    candidate = api_key.encode()[:72]
    if key_hash is None:
        decoy = await _off_the_loop(_decoy_hash, rounds)
        await _off_the_loop(bcrypt.checkpw, candidate, decoy)
        return False
    return await _off_the_loop(bcrypt.checkpw, candidate, key_hash.encode())
