"""What each route documents: its parameters and body (read by hand, so described here),
its error responses, all in the one error shape, and whether it needs a bearer token."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    error: Error


DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked credentials",
    403: "The token lacks the scope this endpoint needs",
    404: "No such resource (or not this client's)",
    409: "Idempotency-Key conflict",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Invalid request (details name each bad field)",
    429: "Rate limited; see Retry-After",
    502: "The backend failed",
    503: "The backend is busy or unavailable, or the database is down",
    504: "The backend did not answer in time",
}
PROTECTED = (401, 403, 422, 429, 503)

BEARER = "bearer"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /auth/token (not the API key itself)",
    }
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


def documented(
    *,
    protected: bool = False,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    path: type[BaseModel] | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`openapi_extra` describing what a route reads by hand, from the models it reads with;
    `protected`: it needs a bearer token (Swagger's Authorize sends it)."""
    parameters = [
        *_parameters(path, "path"),
        *_parameters(query, "query"),
        *(
            {"name": name, "in": "header", "required": False, "schema": schema}
            for name, schema in (headers or {}).items()
        ),
    ]
    extra: dict[str, Any] = {"parameters": parameters} if parameters else {}
    if protected:
        extra["security"] = [{BEARER: []}]
    if body is not None:
        schema = _inlined(body.model_json_schema())
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return extra


def _parameters(
    model: type[BaseModel] | None, location: Literal["path", "query"]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = _inlined(model.model_json_schema())
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": location, "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its `$defs` references written in place (OpenAPI has no `$defs`)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def install_security_scheme(app: FastAPI) -> None:
    """Declare the bearer scheme the operations' `security` names.

    FastAPI writes `components.securitySchemes` only for its own security
    dependencies, which Relay's routes do not run (web.routing); so the
    document is extended once it is built, the way FastAPI's docs show.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()  # built once, then FastAPI's cached copy
        document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        return document

    app.openapi = openapi  # type: ignore[method-assign]
