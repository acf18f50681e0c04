"""GET /v1/history, /v1/history/search and /v1/conversations (scope `history`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.web.auth import authorize
from relay.web.context import relay_of
from relay.web.openapi import PROTECTED, documented, errors
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.schemas import ConversationParams, HistoryParams, SearchParams, read_query
from relay.web.views import (
    ConversationList,
    MessagePage,
    SearchPage,
    conversations_view,
    history_view,
    search_view,
)

router = APIRouter(tags=["history"], route_class=Route, responses=errors(*PROTECTED, 404))


@router.get(
    "/v1/history",
    response_model=MessagePage,
    openapi_extra=documented(protected=True, query=HistoryParams),
)
async def history(request: Request) -> Response:
    """This client's messages, newest first; `conversation_id` narrows to one conversation.

    Page with `before` (the previous page's `next_cursor`).
    """
    principal = await authorize(request, "history")
    params = read_query(request, HistoryParams)
    page = await relay_of(request).history.list(
        principal.client.id,
        conversation_id=params.conversation_id,
        limit=params.limit,
        before=params.before,
    )
    return JSONResponse(history_view(page))


@router.get(
    "/v1/history/search",
    response_model=SearchPage,
    openapi_extra=documented(protected=True, query=SearchParams),
)
async def search(request: Request) -> Response:
    """Full-text search over this client's messages, best match first.

    Words are ANDed; `"a phrase"`, `a OR b` and `-word` work as on the web. The
    `snippet` marks hits with `<mark>`; escape the rest before showing it as HTML.
    Page with `cursor` (the previous page's `next_cursor`).
    """
    principal = await authorize(request, "history")
    params = read_query(request, SearchParams)
    page = await relay_of(request).history.search(
        principal.client.id,
        params.q,
        conversation_id=params.conversation_id,
        limit=params.limit,
        cursor=params.cursor,
    )
    return JSONResponse(search_view(page))


@router.get(
    "/v1/conversations",
    response_model=ConversationList,
    openapi_extra=documented(protected=True, query=ConversationParams),
)
async def conversations(request: Request) -> Response:
    """This client's conversations, most recently active first, each with its message
    count and the start of its first message. Page with `before` (`next_cursor`)."""
    principal = await authorize(request, "history")
    params = read_query(request, ConversationParams)
    page = await relay_of(request).history.conversations(
        principal.client.id, limit=params.limit, before=params.before
    )
    return JSONResponse(conversations_view(page))
