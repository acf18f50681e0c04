"""How records look on the wire, and the models that document those bodies in OpenAPI.

The routes send these dicts through orjson as they are; the models are for the
documentation only (validating every answer would walk each message again).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from relay import __version__
from relay.backends.base import Usage
from relay.chat.events import Reply
from relay.clients.service import Scope, client_fields
from relay.health.service import Check, Health
from relay.history.service import ConversationPage, Page
from relay.storage.records import MessageRecord, rfc3339
from relay.tools.service import ToolList

client_view = client_fields


def message_view(message: MessageRecord) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "created_at": rfc3339(message.created_at),
        "status": message.status,
    }


def history_view(page: Page) -> dict[str, Any]:
    return {"messages": [message_view(m) for m in page.messages], "next_cursor": page.next_cursor}


def conversations_view(page: ConversationPage) -> dict[str, Any]:
    conversations = [
        {
            "id": c.id,
            "created_at": rfc3339(c.created_at),
            "updated_at": rfc3339(c.updated_at),
            "message_count": c.message_count,
            "preview": c.preview,
        }
        for c in page.conversations
    ]
    return {"conversations": conversations, "next_cursor": page.next_cursor}


def search_view(page: Page) -> dict[str, Any]:
    results = [{**message_view(m), "snippet": m.snippet} for m in page.messages]
    return {"results": results, "next_cursor": page.next_cursor}


def usage_view(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def reply_view(reply: Reply) -> dict[str, Any]:
    return reply.to_record()  # the stored form is the wire form, so a replay answers the same


def tools_view(tools: ToolList) -> dict[str, Any]:
    return {"tools": [tool.as_dict() for tool in tools.tools]}


def _check_view(check: Check) -> dict[str, Any]:
    view: dict[str, Any] = {"status": check.status, "latency_ms": check.latency_ms}
    if check.name is not None:
        view["name"] = check.name
    if check.kind is not None:
        view["kind"] = check.kind
    if check.detail is not None:
        view["detail"] = check.detail
    return view


def health_view(health: Health) -> dict[str, Any]:
    checks = {
        "database": _check_view(health.database),
        "backend": _check_view(health.backend),
        "rate_limit_store": _check_view(health.rate_limit_store),
    }
    return {"version": __version__, "status": health.status, "checks": checks}


class Message(BaseModel):
    id: str
    conversation_id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: str
    status: Literal["complete", "failed", "incomplete"]


class MessagePage(BaseModel):
    messages: list[Message]
    next_cursor: str | None


class Conversation(BaseModel):
    id: str
    created_at: str
    updated_at: str
    message_count: int
    preview: str


class ConversationList(BaseModel):
    conversations: list[Conversation]
    next_cursor: str | None


class Found(Message):
    snippet: str


class SearchPage(BaseModel):
    results: list[Found]
    next_cursor: str | None


class Tool(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolListBody(BaseModel):
    tools: list[Tool]


class TokenUsage(BaseModel):
    input_tokens: int
    output_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatReply(BaseModel):
    """A chat's answer when it is not streamed."""

    id: str
    conversation_id: str
    message: AssistantMessage
    model: str
    usage: TokenUsage
    created_at: str


class IssuedToken(BaseModel):
    """An access token: send it as `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds until the token expires")
    scopes: list[Scope]


class HealthCheck(BaseModel):
    status: Literal["ok", "down"]
    latency_ms: float
    name: str | None = Field(None, description="The backend's name (backend check)")
    kind: Literal["memory", "redis"] | None = Field(
        None, description="Where rate limits are counted (rate_limit_store check)"
    )
    detail: str | None = Field(None, description="Why a check is down, when Relay knows")


class HealthChecks(BaseModel):
    database: HealthCheck
    backend: HealthCheck
    rate_limit_store: HealthCheck


class HealthReport(BaseModel):
    version: str
    status: Literal["ok", "degraded", "down"]
    checks: HealthChecks


class Client(BaseModel):
    """An API client as operators see it: everything but its key's hash."""

    id: str
    name: str
    scopes: list[Scope]
    active: bool
    rate_limits: dict[str, str] = Field(description="Its overrides of the global limits")
    token_ttl: int | None
    metadata: dict[str, Any]
    key_prefix: str = Field(description="The public start of its API key")
    created_at: str | None
    updated_at: str | None
    last_used_at: str | None


class ClientBody(BaseModel):
    client: Client


class ClientWithKey(BaseModel):
    """The client and its API key: shown this once, only a hash is kept."""

    client: Client
    api_key: str


class ClientPage(BaseModel):
    clients: list[Client]
    next_cursor: str | None
