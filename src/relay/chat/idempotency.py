"""Idempotency-Key: a retried chat returns its first answer instead of paying twice.

Keys are per client and kept 24 hours. A key is claimed before the backend is
called, so two racing retries cannot both reach it.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson

from relay.chat.events import Reply
from relay.errors import RelayError
from relay.storage.base import Store
from relay.storage.records import IdempotencyRecord, utc_now

KEY_LIFETIME = timedelta(hours=24)


class IdempotencyConflict(RelayError):
    """The key was used with another body, or its first request is still running."""


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Idempotency:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def begin(self, client_id: str, key: str, body_hash: str) -> Reply | None:
        """The stored answer to replay, or None once this request holds the key."""
        record = IdempotencyRecord(client_id, key, body_hash, None, utc_now())
        if await self.store.claim_idempotency(record):
            return None
        existing = await self.store.get_idempotency(client_id, key)
        if existing is None:  # released between our two statements: try once more
            return await self.begin(client_id, key, body_hash)
        if existing.created_at < utc_now() - KEY_LIFETIME:
            await self.store.purge_idempotency(utc_now() - KEY_LIFETIME)
            return await self.begin(client_id, key, body_hash)
        if existing.request_hash != body_hash:
            raise IdempotencyConflict("This Idempotency-Key was used with a different body.")
        if existing.response is None:
            raise IdempotencyConflict("A request with this Idempotency-Key is still running.")
        return Reply.from_record(existing.response)

    async def finish(self, client_id: str, key: str, reply: Reply) -> None:
        await self.store.save_idempotency_response(client_id, key, reply.to_record())

    async def abandon(self, client_id: str, key: str) -> None:
        """Free the key after a failure, so the client's retry can run."""
        await self.store.release_idempotency(client_id, key)
