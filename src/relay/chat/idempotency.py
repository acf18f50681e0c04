"""Idempotency-Key: a retried chat returns its first answer instead of paying twice.

Keys are per client and kept 24 hours. A key is claimed before the backend is
called, so two racing retries cannot both reach it. The reply is kept with the
key in the transaction that stores it (see `Claim.answer`), so a retry gets
exactly the answer that was stored, whatever became of the first request's
connection.

A claim is a lease: its request renews it while it runs (`Idempotency.held`),
and frees the key if it fails. When it cannot (the database failed too, or the
instance died with the request), the lease runs out and a retry takes the key
over, instead of being told "still running" for a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from relay.chat.events import Reply
from relay.errors import RelayError
from relay.ids import random_hex
from relay.storage.base import Store, StoreUnavailable
from relay.storage.records import IdempotencyRecord, KeptAnswer, utc_now

logger = logging.getLogger("relay.chat")
KEY_LIFETIME = timedelta(hours=24)
DEFAULT_LEASE_SECONDS = 30.0
# A claim is renewed this many times per lease, so one or two lost renewals (a
# database slow for a moment) do not let a retry take over a running request.
RENEWALS_PER_LEASE = 3
CLAIM_ATTEMPTS = 3  # a key freed between our claim and our read is claimed again


class IdempotencyConflict(RelayError):
    """The key was used with another body, or its first request is still running."""


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's hold on a key."""

    client_id: str
    key: str
    owner: str

    def answer(self, reply: Reply) -> KeptAnswer:
        """The reply to keep with the key, in the transaction that stores it."""
        return KeptAnswer(self.client_id, self.key, self.owner, reply.to_record())


class Idempotency:
    def __init__(self, store: Store, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.store = store
        self.lease = timedelta(seconds=lease_seconds)

    async def begin(self, client_id: str, key: str, body_hash: str) -> Reply | Claim:
        """The stored answer to replay, or this request's claim once it holds the key.

        Raises IdempotencyConflict for another body, or while another request
        holds the key and its lease runs.
        """
        for _ in range(CLAIM_ATTEMPTS):
            now = utc_now()
            claim = Claim(client_id, key, random_hex(8))
            record = IdempotencyRecord(
                client_id, key, body_hash, None, now, claim.owner, now + self.lease
            )
            if await self.store.claim_idempotency(record, expired_before=now - KEY_LIFETIME):
                return claim
            existing = await self.store.get_idempotency(client_id, key)
            if existing is None:  # freed between our two statements
                continue
            if existing.request_hash != body_hash:
                raise IdempotencyConflict("This Idempotency-Key was used with a different body.")
            if existing.response is not None:
                return Reply.from_record(existing.response)
            break
        raise IdempotencyConflict("A request with this Idempotency-Key is still running.")

    @contextlib.asynccontextmanager
    async def held(self, claim: Claim) -> AsyncIterator[None]:
        """Renew the claim's lease until the block ends."""
        renewing = asyncio.create_task(self._renew(claim))
        try:
            yield
        finally:
            renewing.cancel()

    async def _renew(self, claim: Claim) -> None:
        interval = self.lease.total_seconds() / RENEWALS_PER_LEASE
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.store.renew_idempotency(
                    claim.client_id, claim.key, claim.owner, utc_now() + self.lease
                )
            except StoreUnavailable:
                continue  # the lease may run out: then a retry may take the key over
            if not held:
                return

    async def abandon(self, claim: Claim) -> None:
        """Free the key after a failure, so the client's retry can run; never raises.

        Finished even if the request is being cancelled (the client left). If the
        database cannot free it, the lease will.
        """
        await asyncio.shield(asyncio.ensure_future(self._release(claim)))

    async def _release(self, claim: Claim) -> None:
        try:
            await self.store.release_idempotency(claim.client_id, claim.key, claim.owner)
        except StoreUnavailable:
            logger.warning("could not free an Idempotency-Key; its lease will")
