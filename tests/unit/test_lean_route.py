"""LeanRoute: the endpoint is the handler when it takes the Request alone; FastAPI's otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from relay.app import create_app
from relay.config import Settings
from relay.routes.lean import LeanRoute, takes_the_request_alone


def tiny_app() -> FastAPI:
    router = APIRouter(route_class=LeanRoute)

    @router.get("/alone")
    async def alone(request: Request) -> Response:
        return PlainTextResponse(request.url.path)

    @router.get("/with-query")
    async def with_query(request: Request, count: int) -> Response:
        return PlainTextResponse(str(count * 2))

    @router.get("/not-a-response")
    async def not_a_response(request: Request) -> Any:
        return {"oops": True}

    app = FastAPI()
    app.router.routes[0:0] = router.routes  # as Relay adds its routes (see create_app)
    return app


async def test_endpoint_alone_answers_and_a_parameter_keeps_fastapis_handler() -> None:
    app = tiny_app()
    lean = {route.path: route for route in app.routes if isinstance(route, LeanRoute)}
    assert takes_the_request_alone(lean["/alone"].dependant)
    assert not takes_the_request_alone(lean["/with-query"].dependant)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/alone")).text == "/alone"
        assert (await client.get("/with-query", params={"count": 21})).text == "42"
        invalid = await client.get("/with-query", params={"count": "many"})
        assert invalid.status_code == 422  # FastAPI still validates what it solves
        with pytest.raises(TypeError, match="must answer a Response"):
            await client.get("/not-a-response")


def test_the_hot_routes_are_lean_and_the_rest_are_not(tmp_path: Any) -> None:
    app = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/r.db"))
    lean = {
        route.path
        for route in app.routes
        if isinstance(route, LeanRoute) and takes_the_request_alone(route.dependant)
    }
    assert {"/v1/chat", "/v1/tools"} <= lean
    assert "/v1/history" not in lean  # query parameters: FastAPI solves and validates them
