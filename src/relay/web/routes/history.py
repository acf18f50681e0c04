"""GET /v1/history and /v1/history/search (scope `history`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.web.auth import authorize
from relay.web.context import relay_of
from relay.web.openapi import PROTECTED, documented, errors
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.schemas import HistoryParams, SearchParams, read_query
from relay.web.views import MessagePage, SearchPage, history_view, search_view

router = APIRouter(
    prefix="/v1/history", tags=["history"], route_class=Route, responses=errors(*PROTECTED, 404)
)


@router.get(
    "", response_model=MessagePage, openapi_extra=documented(protected=True, query=HistoryParams)
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
    "/search",
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
