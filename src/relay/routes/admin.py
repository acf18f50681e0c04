"""/admin/clients: operators manage API clients (scope `admin`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from relay.auth.deps import require_scope
from relay.routes.openapi import PROTECTED, errors
from relay.routes.schemas import ID_PATTERN, ClientCreate, ClientPatch
from relay.state import relay_of
from relay.views import client_view

router = APIRouter(
    prefix="/admin/clients",
    tags=["admin"],
    dependencies=[Depends(require_scope("admin"))],
    responses=errors(*PROTECTED),
)
ClientId = Annotated[str, Path(pattern=ID_PATTERN)]
NOT_FOUND = errors(404)
WITH_BODY = errors(413, 415)


@router.get("")
async def list_clients(
    request: Request,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> dict[str, Any]:
    # One row more than the page tells whether another page follows.
    clients = await relay_of(request).clients.list(active=active, limit=limit + 1, before=before)
    clients, more = clients[:limit], len(clients) > limit
    next_cursor = clients[-1].id if more else None
    return {"clients": [client_view(c) for c in clients], "next_cursor": next_cursor}


@router.post("", status_code=201, responses=WITH_BODY)
async def create_client(body: ClientCreate, request: Request) -> dict[str, Any]:
    created = await relay_of(request).clients.create(
        body.name,
        scopes=body.scopes,
        rate_limits=body.rate_limits.as_dict() if body.rate_limits else None,
        token_ttl=body.token_ttl,
        metadata=body.metadata,
    )
    return {"client": client_view(created.client), "api_key": created.api_key}


@router.get("/{client_id}", responses=NOT_FOUND)
async def get_client(client_id: ClientId, request: Request) -> dict[str, Any]:
    return {"client": client_view(await relay_of(request).clients.get(client_id))}


@router.patch("/{client_id}", responses={**NOT_FOUND, **WITH_BODY})
async def update_client(client_id: ClientId, body: ClientPatch, request: Request) -> dict[str, Any]:
    client = await relay_of(request).clients.update(client_id, body.changes())
    return {"client": client_view(client)}


@router.delete("/{client_id}", status_code=204, responses=NOT_FOUND)
async def delete_client(client_id: ClientId, request: Request) -> Response:
    await relay_of(request).clients.delete(client_id)
    return Response(status_code=204)


@router.post("/{client_id}/regenerate-key", responses=NOT_FOUND)
async def regenerate_key(client_id: ClientId, request: Request) -> dict[str, Any]:
    renewed = await relay_of(request).clients.regenerate_key(client_id)
    return {"client": client_view(renewed.client), "api_key": renewed.api_key}
