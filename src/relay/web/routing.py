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
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


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
