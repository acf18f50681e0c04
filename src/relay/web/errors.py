"""Every error Relay answers, in the one shape, with its status: the only map from
domain errors (and the backends' and the store's) to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from relay.backends.base import BackendBusy, BackendError, BackendTimeout, BackendUnavailable
from relay.chat.idempotency import IdempotencyConflict
from relay.clients.service import InsufficientScope, InvalidApiKey
from relay.clients.tokens import InvalidToken
from relay.errors import InvalidInput, NotFound, RelayError
from relay.limits.decision import RateLimited
from relay.storage.base import StoreUnavailable
from relay.web.context import context_of
from relay.web.responses import JSONResponse
from relay.web.routing import allowed_methods
from relay.web.server_timing import server_timing

logger = logging.getLogger("relay.errors")

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "backend_error",
    503: "service_unavailable",
    504: "backend_timeout",
}
INVALID_REQUEST = "The request is not valid."


@dataclass(frozen=True, slots=True)
class Problem:
    """An error as HTTP tells it."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: list[dict[str, Any]] | None = None


def backend_problem(exc: BackendError) -> Problem:
    """A backend failure, the same for every backend."""
    if isinstance(exc, BackendUnavailable):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return Problem(
            503, "backend_unavailable", "The backend is failing; try again shortly.", headers
        )
    if isinstance(exc, BackendBusy):
        headers = {} if exc.retry_after is None else {"Retry-After": str(round(exc.retry_after))}
        return Problem(503, "backend_busy", "The backend is busy; try again later.", headers)
    if isinstance(exc, BackendTimeout):
        return Problem(504, "backend_timeout", "The backend did not answer in time.")
    return Problem(502, "backend_error", "The backend failed to answer.")


STORE_DOWN = Problem(
    503,
    "database_unavailable",
    "The database is unavailable; try again shortly.",
    {"Retry-After": "5"},
)


# The connection closed while the body was being read: the client left, or Relay cut it
# off (web/connection.py's read timeout). No one reads this answer; it names the request
# in the access log with nginx's status for it, and it is no error of Relay's to log.
CLIENT_GONE = Problem(
    499, "client_closed_request", "The connection closed before the request was read."
)


def domain_problem(exc: RelayError) -> Problem:
    """A domain error's status, code and headers."""
    message = exc.message
    if isinstance(exc, InvalidToken):
        return Problem(401, "invalid_token", message, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, InvalidApiKey):
        return Problem(401, "invalid_api_key", message)
    if isinstance(exc, InsufficientScope):
        challenge = f'Bearer error="insufficient_scope", scope="{exc.scope}"'
        return Problem(403, "insufficient_scope", message, {"WWW-Authenticate": challenge})
    if isinstance(exc, NotFound):
        return Problem(404, "not_found", message)
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, "idempotency_conflict", message)
    if isinstance(exc, InvalidInput):
        details = [{"field": exc.field, "message": exc.reason}]
        return Problem(422, "validation_error", message, details=details)
    if isinstance(exc, RateLimited):
        # The X-RateLimit-* headers come from the request's context, as on any answer.
        return Problem(429, "rate_limited", message, {"Retry-After": str(exc.retry_after)})
    return Problem(400, "bad_request", message)


def error_body(
    code: str, message: str, request_id: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(scope: Mapping[str, Any], problem: Problem) -> Response:
    """The one error shape. X-Request-ID is added by the middleware on the way out."""
    body = error_body(problem.code, problem.message, context_of(scope).request_id, problem.details)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[0] if location else "body")


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as the API names them: one field and message each."""
    details = []
    for item in errors:
        location = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            details.append({"field": "body", "message": "The body is not valid JSON."})
            continue
        details.append({"field": _field_name(location), "message": str(item.get("msg", ""))})
    return details


def invalid_request(exc: RequestValidationError) -> Problem:
    details = validation_details(list(exc.errors()))
    return Problem(422, "validation_error", INVALID_REQUEST, details=details)


async def _relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    if isinstance(exc, RateLimited):
        context_of(request.scope).limit = exc.decision  # the refusal's state is the one shown
    return error_response(request.scope, domain_problem(exc))


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    # The cause is Relay's own sanitized words (backends/_failures.py), never the
    # backend's text, URL or key; the client gets only the generic message.
    request_id = context_of(request.scope).request_id
    cause = str(exc)
    logger.warning(
        "backend failure",
        extra={"request_id": request_id, "error": type(exc).__name__, "cause": cause},
    )
    return error_response(request.scope, backend_problem(exc))


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning(
        "database unavailable", extra={"request_id": context_of(request.scope).request_id}
    )
    return error_response(request.scope, STORE_DOWN)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return error_response(request.scope, CLIENT_GONE)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request.scope, invalid_request(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = {404: "No such endpoint.", 405: "This method is not allowed here."}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
    return error_response(request.scope, Problem(exc.status_code, code, message, headers))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (which never holds secrets), never to the client.
    context = context_of(request.scope)
    request_id = context.request_id
    logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    # This answer is sent outside Relay's middleware, so it carries its own headers.
    headers = {"X-Request-ID": request_id}
    if context.backend is not None:
        headers["Server-Timing"] = server_timing(context.started, context.backend).decode()
    problem = Problem(500, "internal_error", "Something went wrong on our side.", headers)
    return error_response(request.scope, problem)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(BackendError, _backend_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
