"""Client state kept in process, so an authenticated request never waits on the database.

This instance updates the cache on each of its own admin changes. Entries also
expire after `ttl` seconds: the safety net for changes made elsewhere (the CLI,
another instance) until a notification channel invalidates them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from relay.storage.base import Store
from relay.storage.records import ClientRecord


@dataclass(slots=True)
class _Entry:
    client: ClientRecord | None  # None remembers that the client does not exist
    expires_at: float


class ClientCache:
    def __init__(self, store: Store, *, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}

    async def get(self, client_id: str) -> ClientRecord | None:
        entry = self._entries.get(client_id)
        if entry is not None and entry.expires_at > time.monotonic():
            return entry.client
        client = await self._store.get_client(client_id)
        self._remember(client_id, client)
        return client

    def put(self, client: ClientRecord) -> None:
        self._remember(client.id, client)

    def forget(self, client_id: str) -> None:
        """Drop an entry so the next request reads the database."""
        self._entries.pop(client_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def on_change(self, client_id: str | None) -> None:
        """A change made elsewhere: re-read this client (or every client) next time."""
        if client_id is None:
            self.clear()
        else:
            self.forget(client_id)

    def mark_deleted(self, client_id: str) -> None:
        self._remember(client_id, None)

    def _remember(self, client_id: str, client: ClientRecord | None) -> None:
        self._entries[client_id] = _Entry(client, time.monotonic() + self._ttl)
