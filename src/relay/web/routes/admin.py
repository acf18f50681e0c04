"""/admin/clients: operators manage API clients (scope `admin`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relay.web.auth import authorize
from relay.web.context import relay_of
from relay.web.openapi import PROTECTED, documented, errors
from relay.web.responses import JSONResponse
from relay.web.routing import Route
from relay.web.schemas import (
    ClientCreate,
    ClientListParams,
    ClientPatch,
    ClientPath,
    read_json,
    read_path,
    read_query,
)
from relay.web.views import ClientBody, ClientPage, ClientWithKey, client_view

router = APIRouter(
    prefix="/admin/clients", tags=["admin"], route_class=Route, responses=errors(*PROTECTED)
)
NOT_FOUND = errors(404)
WITH_BODY = errors(413, 415)


async def _client_id(request: Request) -> str:
    """The client the path names, once the caller is an authorized admin."""
    await authorize(request, "admin")
    return read_path(request, ClientPath).client_id


@router.get(
    "", response_model=ClientPage, openapi_extra=documented(protected=True, query=ClientListParams)
)
async def list_clients(request: Request) -> Response:
    """The API clients, newest first; `active` filters, `next_cursor` pages (as `before`)."""
    await authorize(request, "admin")
    params = read_query(request, ClientListParams)
    # One row more than the page tells whether another page follows.
    clients = await relay_of(request).clients.list(
        active=params.active, limit=params.limit + 1, before=params.before
    )
    page, more = clients[: params.limit], len(clients) > params.limit
    next_cursor = page[-1].id if more else None
    return JSONResponse({"clients": [client_view(c) for c in page], "next_cursor": next_cursor})


@router.post(
    "",
    status_code=201,
    response_model=ClientWithKey,
    responses=WITH_BODY,
    openapi_extra=documented(protected=True, body=ClientCreate),
)
async def create_client(request: Request) -> Response:
    """Create a client. Its API key is in this answer only: Relay keeps a hash of it."""
    await authorize(request, "admin")
    body = await read_json(request, ClientCreate)
    created = await relay_of(request).clients.create(
        body.name,
        scopes=body.scopes,
        rate_limits=body.rate_limits.as_dict() if body.rate_limits else None,
        token_ttl=body.token_ttl,
        metadata=body.metadata,
    )
    view = {"client": client_view(created.client), "api_key": created.api_key}
    return JSONResponse(view, status_code=201)


@router.get(
    "/{client_id}",
    response_model=ClientBody,
    responses=NOT_FOUND,
    openapi_extra=documented(protected=True, path=ClientPath),
)
async def get_client(request: Request) -> Response:
    """One client; `last_used_at` is its last successful key exchange."""
    client_id = await _client_id(request)
    return JSONResponse({"client": client_view(await relay_of(request).clients.get(client_id))})


@router.patch(
    "/{client_id}",
    response_model=ClientBody,
    responses={**NOT_FOUND, **WITH_BODY},
    openapi_extra=documented(protected=True, path=ClientPath, body=ClientPatch),
)
async def update_client(request: Request) -> Response:
    """Change any of a client's fields. `active: false` revokes its live tokens at once."""
    client_id = await _client_id(request)
    body = await read_json(request, ClientPatch)
    client = await relay_of(request).clients.update(client_id, body.changes())
    return JSONResponse({"client": client_view(client)})


@router.delete(
    "/{client_id}",
    status_code=204,
    responses=NOT_FOUND,
    openapi_extra=documented(protected=True, path=ClientPath),
)
async def delete_client(request: Request) -> Response:
    """Delete a client, its conversations and messages; its key and tokens stop at once."""
    client_id = await _client_id(request)
    await relay_of(request).clients.delete(client_id)
    return Response(status_code=204)


@router.post(
    "/{client_id}/regenerate-key",
    response_model=ClientWithKey,
    responses=NOT_FOUND,
    openapi_extra=documented(protected=True, path=ClientPath),
)
async def regenerate_key(request: Request) -> Response:
    """A new API key (shown this once); the old key and its tokens stop working at once."""
    client_id = await _client_id(request)
    renewed = await relay_of(request).clients.regenerate_key(client_id)
    return JSONResponse({"client": client_view(renewed.client), "api_key": renewed.api_key})
