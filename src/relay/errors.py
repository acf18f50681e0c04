"""The one error shape, and the handlers that give every error that shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from relay.backends.base import BackendBusy, BackendError, BackendTimeout, BackendUnavailable
from relay.responses import JSONResponse
from relay.storage.base import StoreUnavailable

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


class RelayError(Exception):
    """An error Relay answers on purpose, with its status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


class NotFound(RelayError):
    def __init__(self, what: str = "resource") -> None:
        super().__init__(404, "not_found", f"The {what} does not exist.")


class InvalidToken(RelayError):
    def __init__(self, message: str = "The access token is missing, invalid or expired.") -> None:
        super().__init__(401, "invalid_token", message, headers={"WWW-Authenticate": "Bearer"})


class InsufficientScope(RelayError):
    def __init__(self, scope: str) -> None:
        super().__init__(
            403,
            "insufficient_scope",
            f"This token lacks the '{scope}' scope.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )


class ValidationFailed(RelayError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            422,
            "validation_error",
            "The request is not valid.",
            details=[{"field": field, "message": message}],
        )


def backend_error_info(exc: BackendError) -> tuple[int, str, str, dict[str, str]]:
    """(status, code, message, headers) for a backend failure, the same for every backend."""
    if isinstance(exc, BackendUnavailable):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return 503, "backend_unavailable", "The backend is failing; try again shortly.", headers
    if isinstance(exc, BackendBusy):
        headers = {} if exc.retry_after is None else {"Retry-After": str(round(exc.retry_after))}
        return 503, "backend_busy", "The backend is busy; try again later.", headers
    if isinstance(exc, BackendTimeout):
        return 504, "backend_timeout", "The backend did not answer in time.", {}
    return 502, "backend_error", "The backend failed to answer.", {}


def request_id_of(scope: Mapping[str, Any]) -> str:
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def error_body(
    code: str, message: str, request_id: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    request_scope: Mapping[str, Any],
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Response:
    """The one error shape. X-Request-ID is added by the middleware on the way out."""
    body = error_body(code, message, request_id_of(request_scope), details)
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[0] if location else "body")


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    details = []
    for item in errors:
        location = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            details.append({"field": "body", "message": "The body is not valid JSON."})
            continue
        details.append({"field": _field_name(location), "message": str(item.get("msg", ""))})
    return details


async def _relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    return error_response(
        request.scope, exc.status, exc.code, exc.message, headers=exc.headers, details=exc.details
    )


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    status, code, message, headers = backend_error_info(exc)
    # The backend's own words stay in the log: they may name its URL or account.
    logger.warning(
        "backend failure",
        extra={"request_id": request_id_of(request.scope), "error": type(exc).__name__},
    )
    return error_response(request.scope, status, code, message, headers=headers)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("database unavailable", extra={"request_id": request_id_of(request.scope)})
    return error_response(
        request.scope,
        503,
        "database_unavailable",
        "The database is unavailable; try again shortly.",
        headers={"Retry-After": "5"},
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(list(exc.errors()))
    return error_response(
        request.scope, 422, "validation_error", "The request is not valid.", details=details
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = {404: "No such endpoint.", 405: "This method is not allowed here."}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(request.scope, exc.status_code, code, message, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (which never holds secrets), never to the client.
    request_id = request_id_of(request.scope)
    logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    # This answer is sent outside RequestMiddleware, so it carries its own id header.
    return error_response(
        request.scope,
        500,
        "internal_error",
        "Something went wrong on our side.",
        headers={"X-Request-ID": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(BackendError, _backend_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
