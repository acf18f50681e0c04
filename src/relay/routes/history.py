"""GET /v1/history and /v1/history/search (scope `history`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from relay.auth.deps import Principal, require_scope
from relay.responses import JSONResponse
from relay.routes.openapi import PROTECTED, errors
from relay.routes.schemas import ID_PATTERN, NO_NUL
from relay.state import relay_of

router = APIRouter(
    prefix="/v1/history",
    tags=["history"],
    responses=errors(*PROTECTED, 404),
)
HistoryClient = Annotated[Principal, Depends(require_scope("history"))]
ConversationId = Annotated[str | None, Query(pattern=ID_PATTERN)]
Cursor = Annotated[str | None, Query(pattern=ID_PATTERN)]


# The models document the bodies; the routes send the service's dicts through
# orjson as they are (FastAPI would validate them and walk every message
# through jsonable_encoder: ~10 % of a 50-message page, measured).
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


class Found(Message):
    snippet: str


class SearchPage(BaseModel):
    results: list[Found]
    next_cursor: str | None


@router.get("", response_model=MessagePage)
async def history(
    request: Request,
    principal: HistoryClient,
    conversation_id: ConversationId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Cursor = None,
) -> Response:
    page = await relay_of(request).history.list(
        principal.client.id, conversation_id=conversation_id, limit=limit, before=before
    )
    return JSONResponse(page)


@router.get("/search", response_model=SearchPage)
async def search(
    request: Request,
    principal: HistoryClient,
    q: Annotated[str, Query(min_length=1, max_length=500, pattern=NO_NUL)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    conversation_id: ConversationId = None,
    cursor: Cursor = None,
) -> Response:
    found = await relay_of(request).history.search(
        principal.client.id, q, conversation_id=conversation_id, limit=limit, cursor=cursor
    )
    return JSONResponse(found)
