"""History and search over one client's own messages, never anyone else's."""

from __future__ import annotations

from dataclasses import dataclass

from relay.errors import InvalidInput, NotFound
from relay.history.cursors import decode_cursor, encode_cursor
from relay.history.search_query import parse
from relay.storage.base import Store
from relay.storage.records import ConversationSummary, MessageRecord

# How much of a conversation's first user message a list shows.
PREVIEW_CHARS = 120


@dataclass(frozen=True, slots=True)
class Page:
    """Messages, newest first (or best match first, for a search, each with its snippet);
    `next_cursor` fetches the rest, None on the last page."""

    messages: list[MessageRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """Conversations, most recently active first; `next_cursor` fetches the rest."""

    conversations: list[ConversationSummary]
    next_cursor: str | None


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
    ) -> Page:
        position = decode_cursor(before)
        await self._check_conversation(client_id, conversation_id)
        # One extra row tells whether another page exists without a second query.
        rows = await self.store.list_messages(
            client_id, conversation_id=conversation_id, limit=limit + 1, before=position
        )
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].seq) if len(rows) > limit else None
        return Page(page, next_cursor)

    async def conversations(
        self, client_id: str, *, limit: int, before: str | None
    ) -> ConversationPage:
        position = decode_cursor(before)
        rows = await self.store.list_conversations(
            client_id, limit=limit + 1, before=position, preview_chars=PREVIEW_CHARS
        )
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].last_seq) if len(rows) > limit else None
        return ConversationPage(page, next_cursor)

    async def search(
        self,
        client_id: str,
        text: str,
        *,
        conversation_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        if not text.strip():
            raise InvalidInput("q", "The search text is empty.")
        offset = decode_cursor(cursor, "cursor") or 0
        await self._check_conversation(client_id, conversation_id)
        rows = await self.store.search_messages(
            client_id, parse(text), conversation_id=conversation_id, limit=limit + 1, offset=offset
        )
        next_cursor = encode_cursor(offset + limit) if len(rows) > limit else None
        return Page(rows[:limit], next_cursor)
