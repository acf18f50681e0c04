"""The error responses each route documents, all in the one error shape."""

from __future__ import annotations

from typing import Any

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


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}
