"""Route: every endpoint takes the Request alone and is the handler itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from relay.config import Settings
from relay.web.app import create_app
from relay.web.routing import Route


def tiny_app() -> FastAPI:
    router = APIRouter(route_class=Route)

    @router.get("/alone")
    async def alone(request: Request) -> Response:
        return PlainTextResponse(request.url.path)

    @router.get("/not-a-response")
    async def not_a_response(request: Request) -> Any:
        return {"oops": True}

    app = FastAPI()
    app.include_router(router)
    return app


async def test_the_endpoint_answers_and_a_bug_is_not_hidden() -> None:
    transport = httpx.ASGITransport(app=tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/alone")).text == "/alone"
        with pytest.raises(TypeError, match="must answer a Response"):
            await client.get("/not-a-response")


def test_an_endpoint_with_parameters_is_refused_at_start_up() -> None:
    router = APIRouter(route_class=Route)

    async def with_query(request: Request, count: int) -> Response:
        return PlainTextResponse(str(count))

    with pytest.raises(TypeError, match="must take only `request: Request`"):
        router.add_api_route("/with-query", with_query)


def test_every_relay_route_is_a_route(tmp_path: Any) -> None:
    app = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/r.db"))
    ours = {route.path for route in app.routes if isinstance(route, Route)}
    assert {"/v1/chat", "/v1/tools", "/v1/history", "/admin/clients/{client_id}"} <= ours
    documented = app.openapi()["paths"]
    assert ours <= set(documented)
    history = documented["/v1/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"conversation_id", "limit", "before"}
