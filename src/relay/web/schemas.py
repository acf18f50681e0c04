"""What requests may send (bodies, query and path parameters), validated by pydantic:
unknown body fields and bad values answer 422, naming each bad field."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from relay.clients.service import Scope
from relay.config import RATE_LIMIT_PATTERN, check_rate_limit
from relay.jsonutil import dumps

# PostgreSQL text cannot hold NUL, so no text field accepts it (on either store).
NO_NUL = r"^[^\x00]*$"
# Every id Relay hands out looks like this; anything else cannot name a resource.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
RateLimit = Annotated[
    str,
    Field(max_length=64, pattern=RATE_LIMIT_PATTERN.pattern, examples=["100/minute"]),
    AfterValidator(check_rate_limit),
]
TokenTtl = Annotated[int, Field(ge=1, le=604_800)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
METADATA_MAX_BYTES = 16_384
# Deep nesting broke every later read of the client (JSON encoders stop at a
# depth); no operator's labels need more than a few levels or a few hundred keys.
METADATA_MAX_DEPTH = 8
METADATA_MAX_KEYS = 256


def _shape(value: Any) -> tuple[int, int]:
    """(depth, keys) of a JSON value, walked without recursion."""
    depth, keys = 0, 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            depth, keys = max(depth, level), keys + len(node)
            pending += [(child, level + 1) for child in node.values()]
        elif isinstance(node, list):
            depth = max(depth, level)
            pending += [(child, level + 1) for child in node]
    return depth, keys


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata is stored with the client and sent on every read: keep it small."""
    depth, keys = _shape(value)
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"must nest at most {METADATA_MAX_DEPTH} levels deep")
    if keys > METADATA_MAX_KEYS:
        raise ValueError(f"must hold at most {METADATA_MAX_KEYS} keys in all")
    if len(dumps(value)) > METADATA_MAX_BYTES:
        raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON")
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata)]


M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M]) -> M:
    """The body parsed and validated as `model`; 422 naming each bad field otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def read_query(request: Request, model: type[M]) -> M:
    """The query parameters validated as `model` (unknown ones ignored); 422 otherwise."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def read_path(request: Request, model: type[M]) -> M:
    """The path parameters validated as `model`; 422 otherwise."""
    try:
        return model.model_validate(request.path_params)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimits(Strict):
    default: RateLimit | None = None
    chat: RateLimit | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TokenRequest(Strict):
    api_key: str = Field(min_length=1, max_length=200, pattern=NO_NUL)


class ClientCreate(Strict):
    name: Name
    scopes: list[Scope] | None = None
    rate_limits: RateLimits | None = None
    token_ttl: TokenTtl | None = None
    metadata: Metadata | None = None


class ClientPatch(Strict):
    name: Name | None = None
    scopes: list[Scope] | None = None
    rate_limits: RateLimits | None = None
    token_ttl: TokenTtl | None = None
    metadata: Metadata | None = None
    active: StrictBool | None = None  # true or false: 0 and 1 are not booleans

    def changes(self) -> dict[str, Any]:
        """Only the fields the request named; `token_ttl: null` clears the override."""
        fields = self.model_dump(exclude_unset=True)
        if self.rate_limits is not None:
            fields["rate_limits"] = self.rate_limits.as_dict()
        for name in ("name", "scopes", "metadata", "active", "rate_limits"):
            if fields.get(name, "") is None:
                fields.pop(name)
        return fields


class ChatBody(Strict):
    message: str = Field(min_length=1, pattern=NO_NUL)
    conversation_id: Id | None = None
    stream: StrictBool = False
    model: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    system: str | None = Field(None, max_length=100_000, pattern=NO_NUL)


class HistoryParams(BaseModel):
    conversation_id: Id | None = None
    limit: int = Field(50, ge=1, le=200)
    before: Id | None = None


class ConversationParams(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    before: Id | None = None


class SearchParams(BaseModel):
    q: str = Field(min_length=1, max_length=500, pattern=NO_NUL)
    limit: int = Field(20, ge=1, le=100)
    conversation_id: Id | None = None
    cursor: Id | None = None


class ClientListParams(BaseModel):
    active: bool | None = None
    limit: int = Field(50, ge=1, le=200)
    before: Id | None = None


class ClientPath(BaseModel):
    client_id: Id
