"""CORS for browser apps, from CORS_ORIGINS (exact origins; none by default).

Starlette's CORSMiddleware does the work; the only change is that a refused
preflight answers in Relay's one error shape rather than as plain text.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.web.errors import Problem, error_response

METHODS = ("GET", "POST", "PATCH", "DELETE")
# What a browser app sends: its token, a JSON body, a retry key, its own request id.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
# What a browser app may read from an answer (the rest are CORS-safelisted).
EXPOSED_HEADERS = (
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Server-Timing",
)
MAX_AGE_SECONDS = 600


class CorsMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=MAX_AGE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            # The test CORSMiddleware itself applies to tell a preflight from a plain OPTIONS.
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    # Its text says what was refused: "Disallowed CORS origin, headers".
                    message = bytes(response.body).decode() + "."
                    kept = {
                        name: value
                        for name, value in response.headers.items()
                        if name not in ("content-length", "content-type")
                    }
                    refused = Problem(response.status_code, "cors_refused", message, kept)
                    response = error_response(scope, refused)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
