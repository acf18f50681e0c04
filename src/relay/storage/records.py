"""Plain records the storage layer hands out: no driver types leak above it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from relay.ids import random_hex

Role = Literal["user", "assistant"]
MessageStatus = Literal["complete", "failed", "incomplete"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    """UTC with milliseconds and a Z, as the API promises."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_or_none(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


def new_id(prefix: str) -> str:
    """A time-ordered opaque id, so that listing by id lists by creation."""
    return f"{prefix}_{time.time_ns() // 1000:014x}{random_hex(5)}"


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    active: bool
    rate_limits: dict[str, str]
    token_ttl: int | None
    metadata: dict[str, Any]
    key_prefix: str
    key_hash: str
    key_generation: int
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    client_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    conversation_id: str
    client_id: str
    role: Role
    content: str
    status: MessageStatus
    created_at: datetime
    seq: int = 0
    snippet: str | None = None  # set on search results: the match, marked


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as a list shows it; `last_seq` orders by latest activity."""

    id: str
    created_at: datetime
    updated_at: datetime  # when its latest message was stored
    message_count: int
    preview: str  # the start of its first user message ("" if it has none)
    last_seq: int


@dataclass(frozen=True, slots=True)
class Term:
    """A search term: one word, or several for a phrase."""

    words: tuple[str, ...]
    negated: bool = False


# A full-text query: an AND of groups, each an OR of terms (history.search_query parses it).
SearchQuery = list[list[Term]]


def can_match(query: SearchQuery) -> bool:
    """False when the query has no term to look for (empty, or only exclusions)."""
    return any(not term.negated for group in query for term in group)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """An Idempotency-Key: the answer kept for it, or the claim of the request running it.

    A claim stands until `lease_until`, which its request renews while it runs;
    a claim whose lease ended (its request died with its instance, or the
    database failed while it ran) may be taken over by a retry.
    """

    client_id: str
    key: str
    request_hash: str
    response: dict[str, Any] | None
    created_at: datetime
    owner: str = ""  # the request that claimed it
    lease_until: datetime | None = None  # None: no lease (an answer, or an older claim)


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """A reply kept with its Idempotency-Key, in the transaction that stores the reply."""

    client_id: str
    key: str
    owner: str  # kept only while this owner still holds the key
    response: dict[str, Any]
