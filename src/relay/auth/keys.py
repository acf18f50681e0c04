"""API keys: `rly_<prefix>_<secret>`. The prefix finds the row; only a bcrypt hash is kept.

bcrypt is slow on purpose, so it always runs in a worker thread, and the number
of hashes at once is bounded so a flood of guesses cannot starve the machine.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import weakref
from functools import lru_cache

import bcrypt

KEY_PATTERN = re.compile(r"^(rly_[0-9a-f]{10})_[A-Za-z0-9_-]{43}$")
# Hashes at once: leave a core to the event loop, so a flood of token exchanges
# cannot starve authenticated requests of CPU.
BCRYPT_SLOTS = max(1, (os.cpu_count() or 2) - 1)
# One semaphore per event loop: an asyncio.Semaphore binds to the first loop that
# waits on it, and a process may run several loops (the CLI, tests, threads).
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _bcrypt_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = _slots_by_loop[loop] = asyncio.Semaphore(BCRYPT_SLOTS)
    return slots


def generate_key() -> tuple[str, str]:
    """A new (api_key, key_prefix); 56 bytes, under bcrypt's 72-byte limit."""
    prefix = f"rly_{secrets.token_hex(5)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def prefix_of(api_key: str) -> str | None:
    match = KEY_PATTERN.match(api_key)
    return match.group(1) if match else None


async def hash_key(api_key: str, rounds: int) -> str:
    salt = bcrypt.gensalt(rounds)
    async with _bcrypt_slots():
        hashed = await asyncio.to_thread(bcrypt.hashpw, api_key.encode(), salt)
    return hashed.decode()


@lru_cache(maxsize=8)
def _decoy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds))


async def verify_key(api_key: str, key_hash: str | None, rounds: int) -> bool:
    """Check a key; with no hash (unknown prefix) spend the same time and say no."""
    candidate = api_key.encode()[:72]
    async with _bcrypt_slots():
        if key_hash is None:
            decoy = await asyncio.to_thread(_decoy_hash, rounds)
            await asyncio.to_thread(bcrypt.checkpw, candidate, decoy)
            return False
        return await asyncio.to_thread(bcrypt.checkpw, candidate, key_hash.encode())
