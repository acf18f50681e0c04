"""Plain records the storage layer hands out: no driver types leak above it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from relay.ids import random_hex

MessageStatus = str  # "complete" | "failed" | "incomplete" | "pending"


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    """UTC with milliseconds and a Z, as the API promises."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    role: str
    content: str
    status: MessageStatus
    created_at: datetime
    seq: int = 0
    snippet: str | None = None
    rank: float = field(default=0.0, compare=False)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    client_id: str
    key: str
    request_hash: str
    response: dict[str, Any] | None
    created_at: datetime
