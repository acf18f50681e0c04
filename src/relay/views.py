"""How records look on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.storage.records import ClientRecord, MessageRecord, rfc3339


def timestamp(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


def client_view(client: ClientRecord) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": client.name,
        "scopes": list(client.scopes),
        "active": client.active,
        "rate_limits": client.rate_limits,
        "token_ttl": client.token_ttl,
        "metadata": client.metadata,
        "key_prefix": client.key_prefix,
        "created_at": timestamp(client.created_at),
        "updated_at": timestamp(client.updated_at),
        "last_used_at": timestamp(client.last_used_at),
    }


def message_view(message: MessageRecord) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "created_at": timestamp(message.created_at),
        "status": message.status,
    }
