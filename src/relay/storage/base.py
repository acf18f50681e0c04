"""The Store protocol: every query the services need, nothing dialect-specific."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from relay.storage.records import (
    ClientRecord,
    ConversationRecord,
    ConversationSummary,
    IdempotencyRecord,
    KeptAnswer,
    MessageRecord,
    SearchQuery,
)

# Columns an admin change may write; anything else is a programming error.
CLIENT_UPDATABLE = frozenset(
    {"name", "scopes", "active", "rate_limits", "token_ttl", "metadata", "key_prefix", "key_hash"}
)


class StoreUnavailable(Exception):
    """The database cannot be reached, or refused to work (disk full, locked)."""


class Store(Protocol):
    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self) -> list[str]: ...
    async def ping(self) -> None:
        """Return once a read answers and a write commits; raise StoreUnavailable if not."""
        ...

    async def get_or_create_setting(self, name: str, value: str) -> str: ...

    async def create_client(self, client: ClientRecord) -> None: ...
    async def get_client(self, client_id: str) -> ClientRecord | None: ...
    async def get_client_by_prefix(self, key_prefix: str) -> ClientRecord | None: ...
    async def list_clients(
        self, *, active: bool | None, limit: int, before: str | None
    ) -> list[ClientRecord]: ...
    async def update_client(
        self, client_id: str, changes: Mapping[str, Any], *, bump_generation: bool
    ) -> ClientRecord | None:
        """The client as this change left it (None: no such client), from the one
        statement that made it: if this raises, nothing was changed."""
        ...

    async def delete_client(self, client_id: str) -> bool: ...
    async def touch_client(self, client_id: str, when: datetime) -> None: ...

    async def get_conversation(
        self, client_id: str, conversation_id: str
    ) -> ConversationRecord | None: ...
    async def add_messages(
        self,
        messages: Sequence[MessageRecord],
        *,
        new_conversation: ConversationRecord | None = None,
        answer: KeptAnswer | None = None,
    ) -> list[MessageRecord]:
        """Store `messages` in this order, after creating `new_conversation` if given,
        and keep `answer` with its Idempotency-Key if its owner still holds the key.

        One transaction: all of it is stored, or none.
        """
        ...

    async def finish_message(
        self, message_id: str, *, content: str | None, status: str
    ) -> None: ...
    async def recent_messages(self, conversation_id: str, limit: int) -> list[MessageRecord]: ...
    async def list_messages(
        self, client_id: str, *, conversation_id: str | None, limit: int, before: int | None
    ) -> list[MessageRecord]: ...
    async def list_conversations(
        self, client_id: str, *, limit: int, before: int | None, preview_chars: int
    ) -> list[ConversationSummary]:
        """The client's conversations, most recently active first; `before` is a
        `last_seq` from an earlier page."""
        ...

    async def search_messages(
        self,
        client_id: str,
        query: SearchQuery,
        *,
        conversation_id: str | None,
        limit: int,
        offset: int,
    ) -> list[MessageRecord]: ...

    async def get_idempotency(self, client_id: str, key: str) -> IdempotencyRecord | None: ...
    async def claim_idempotency(
        self, record: IdempotencyRecord, *, expired_before: datetime
    ) -> bool:
        """Take the key for `record.owner`: True if it was free, its claim's lease ended
        before `record.created_at`, or it was created before `expired_before`."""
        ...

    async def renew_idempotency(
        self, client_id: str, key: str, owner: str, lease_until: datetime
    ) -> bool:
        """Extend `owner`'s claim; False when it holds the key no more (or it has an answer)."""
        ...

    async def release_idempotency(self, client_id: str, key: str, owner: str) -> None:
        """Free the key if `owner` still claims it and no answer was kept."""
        ...

    async def purge_idempotency(self, older_than: datetime) -> int: ...
