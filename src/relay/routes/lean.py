"""A route class for endpoints that take the Request alone and answer a Response.

FastAPI's handler reads the body, solves dependencies (building the query
parameters and cookies even for an endpoint that has none) and runs its
telemetry hooks around every call: about 7 % of GET /v1/tools, in process.
The hot routes read what they need from the Request themselves, so for them
the handler is the endpoint. It is still an APIRoute: OpenAPI documents it,
and any route with parameters keeps FastAPI's handler.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LeanRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        if not takes_the_request_alone(self.dependant):
            return super().get_route_handler()
        endpoint: Handler = self.endpoint

        async def handle(request: Request) -> Response:
            response = await endpoint(request)
            if not isinstance(response, Response):  # a bug in the route, not the request
                raise TypeError(f"{self.path} must answer a Response, not {type(response)}")
            return response

        return handle


def takes_the_request_alone(dependant: Dependant) -> bool:
    """True when the endpoint's one parameter is the Request: nothing for FastAPI to solve."""
    solvable = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
    )
    named = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    return dependant.request_param_name is not None and not any(solvable) and not any(named)
