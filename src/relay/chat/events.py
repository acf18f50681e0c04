"""What a chat answers: a finished Reply, or the events of a streamed one.

Plain records: `relay.web` renders them as JSON or server-sent events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.backends.base import BackendError, Usage
from relay.storage.base import StoreUnavailable
from relay.storage.records import rfc3339


@dataclass(frozen=True, slots=True)
class Reply:
    """The assistant's stored reply to one message."""

    id: str
    conversation_id: str
    content: str
    model: str
    usage: Usage
    created_at: datetime

    def to_record(self) -> dict[str, Any]:
        """The form kept for an idempotent replay (the shape the API answered with)."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "message": {"role": "assistant", "content": self.content},
            "model": self.model,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
            },
            "created_at": rfc3339(self.created_at),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Reply:
        usage = record["usage"]
        return cls(
            id=record["id"],
            conversation_id=record["conversation_id"],
            content=record["message"]["content"],
            model=record["model"],
            usage=Usage(usage["input_tokens"], usage["output_tokens"]),
            created_at=datetime.fromisoformat(record["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    id: str
    conversation_id: str
    model: str


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """The last event of a stream that completed; the reply is stored."""

    id: str
    usage: Usage
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """The last event of a stream that broke; what arrived is stored `incomplete`."""

    error: BackendError | StoreUnavailable


ChatEvent = ReplyStarted | ReplyDelta | ReplyFinished | ReplyFailed
