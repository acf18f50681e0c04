"""History and search over one client's own messages, never anyone else's."""

from __future__ import annotations

from typing import Any

from relay.errors import NotFound, ValidationFailed
from relay.services.cursors import decode_cursor, encode_cursor
from relay.storage.base import Store
from relay.views import message_view


class HistoryService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _check_conversation(self, client_id: str, conversation_id: str | None) -> None:
        # Another client's conversation answers exactly as an unknown one.
        if conversation_id is None:
            return
        if await self.store.get_conversation(client_id, conversation_id) is None:
            raise NotFound("conversation")

    async def list(
        self, client_id: str, *, conversation_id: str | None, limit: int, before: str | None
    ) -> dict[str, Any]:
        position = decode_cursor(before)
        await self._check_conversation(client_id, conversation_id)
        # One extra row tells whether another page exists without a second query.
        rows = await self.store.list_messages(
            client_id, conversation_id=conversation_id, limit=limit + 1, before=position
        )
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].seq) if len(rows) > limit else None
        return {"messages": [message_view(m) for m in page], "next_cursor": next_cursor}

    async def search(
        self,
        client_id: str,
        query: str,
        *,
        conversation_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        if not query.strip():
            raise ValidationFailed("q", "The search text is empty.")
        offset = decode_cursor(cursor, "cursor") or 0
        await self._check_conversation(client_id, conversation_id)
        rows = await self.store.search_messages(
            client_id, query, conversation_id=conversation_id, limit=limit + 1, offset=offset
        )
        page = rows[:limit]
        next_cursor = encode_cursor(offset + limit) if len(rows) > limit else None
        results = [{**message_view(m), "snippet": m.snippet} for m in page]
        return {"results": results, "next_cursor": next_cursor}
