"""The one way a Relay route is written: `async def endpoint(request) -> Response`.

Each endpoint authorizes, reads and validates what it needs itself
(web.auth.authorize, web.schemas.read_json / read_query / read_path) and
answers a Response. FastAPI's own handler would read the body, solve
dependencies and run its telemetry hooks around every call, a cost paid on
every request of the hot routes; this route's handler is the endpoint itself.
It stays an APIRoute, so FastAPI still documents it (the parameters and body
through `openapi_extra`, see web.openapi.documented).

`get_route_handler` is APIRoute's documented extension point for a custom
route class; nothing else of FastAPI is overridden or read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.routing import Route as StarletteRoute
from starlette.types import Scope

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
# The order methods are listed in an Allow header; any other comes after, alphabetically.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        _check_signature(path, endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        endpoint: Handler = self.endpoint
        path = self.path

        async def handle(request: Request) -> Response:
            response = await endpoint(request)
            if not isinstance(response, Response):  # a bug in the route, not the request
                raise TypeError(f"{path} must answer a Response, not {type(response)}")
            return response

        return handle


def _check_signature(path: str, endpoint: Callable[..., Any]) -> None:
    """Refuse, at start-up, an endpoint that takes anything but the Request."""
    parameters = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    if len(parameters) != 1 or parameters[0].annotation is not Request:
        raise TypeError(f"the endpoint of {path} must take only `request: Request`")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route of the request's path accepts: a 405's Allow header.

    Each method of a path is a route of its own, and the one that answers a 405 knows
    only its own methods; the header must name the path's, all of them.
    """
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, StarletteRoute) and route.methods:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                methods |= route.methods
    ordered = [method for method in METHOD_ORDER if method in methods]
    return ordered + sorted(methods - set(METHOD_ORDER))
