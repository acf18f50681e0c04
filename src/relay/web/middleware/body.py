"""Request bodies: JSON only (415 otherwise), at most MAX_BODY_BYTES (413), whether the
size is declared up front or only found while the body streams in."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.web.errors import Problem, error_response

WITH_BODY = ("POST", "PUT", "PATCH")


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI passes it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, media_type = _declared(scope)
        if scope["method"] not in WITH_BODY:
            media_type = None  # only a body Relay reads must be JSON
        if length > self.max_body_bytes:
            problem = Problem(
                413,
                "payload_too_large",
                f"The request body is larger than {self.max_body_bytes} bytes.",
            )
        elif media_type is not None and not _is_json(media_type):
            message = "Send the request body as JSON (Content-Type: application/json)."
            problem = Problem(415, "unsupported_media_type", message)
        else:
            await self.app(scope, self._capped(receive), send)
            return
        await error_response(scope, problem)(scope, receive, send)

    def _capped(self, receive: Receive) -> Receive:
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return capped_receive


def _declared(scope: Scope) -> tuple[int, bytes | None]:
    """The declared Content-Length (0 if none) and media type (None if none); first wins."""
    length: int | None = None
    media_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and length is None:
            length = int(value) if value.isdigit() else 0
        elif name == b"content-type" and media_type is None:
            media_type = value.split(b";", 1)[0].strip().lower()
    return length or 0, media_type


def _is_json(media_type: bytes) -> bool:
    """A body with no declared type is read as JSON; any other declared type is refused."""
    return media_type == b"application/json" or media_type.endswith(b"+json")
