"""GET /v1/history and /v1/history/search (scope `history`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from relay.auth.deps import Principal, require_scope
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


@router.get("")
async def history(
    request: Request,
    principal: HistoryClient,
    conversation_id: ConversationId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Cursor = None,
) -> dict[str, Any]:
    return await relay_of(request).history.list(
        principal.client.id, conversation_id=conversation_id, limit=limit, before=before
    )


@router.get("/search")
async def search(
    request: Request,
    principal: HistoryClient,
    q: Annotated[str, Query(min_length=1, max_length=500, pattern=NO_NUL)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    conversation_id: ConversationId = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    return await relay_of(request).history.search(
        principal.client.id, q, conversation_id=conversation_id, limit=limit, cursor=cursor
    )
