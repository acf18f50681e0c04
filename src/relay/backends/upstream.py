"""An HTTP service of the assistant itself, spoken to over one shared aiohttp session.

Protocol: POST {UPSTREAM_URL}/v1/chat (JSON answer, or with "stream": true
Relay's own SSE events), GET /v1/tools, GET /health. Retries follow the SDKs'
policy: 5xx answers and broken connections are retried, busy answers are not.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from relay.backends._failures import (
    ErrorKinds,
    health_timeout,
    probe,
    retry_delay,
    status_failure,
    translated,
)
from relay.backends.base import (
    BackendBusy,
    BackendError,
    BackendMisconfigured,
    ChatRequest,
    Completion,
    HealthReport,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from relay.config import Settings

ERRORS = ErrorKinds(timeout=(TimeoutError,), connection=(aiohttp.ClientError, OSError))
RETRYABLE_STATUSES = frozenset({408, 409})  # plus every 5xx, as the SDKs do
Json = dict[str, Any]


class UpstreamBackend:
    name = "upstream"
    default_model = "upstream"

    def __init__(self, settings: Settings) -> None:
        if not settings.upstream_url:
            raise BackendMisconfigured("UPSTREAM_URL is required when RELAY_BACKEND=upstream")
        url = URL(settings.upstream_url)
        key = settings.upstream_api_key
        # A bearer key wins; otherwise credentials in the URL become Basic auth.
        if key:
            self._headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        elif url.user:
            self._headers = {"Authorization": _basic(url.user, url.password or "")}
        else:
            self._headers = {}
        self._base = url.with_user(None)
        self._urls: dict[str, URL] = {}
        self._timeout = settings.backend_timeout
        self._retries = settings.backend_max_retries
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The shared keep-alive session, made on first use (it needs the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(sock_connect=self._timeout, sock_read=self._timeout),
            )
        return self._session

    async def _open(
        self,
        method: str,
        path: str,
        *,
        retries: int,
        json: Json | None = None,
        request_id: str = "",
    ) -> aiohttp.ClientResponse:
        """Send one call, retrying 5xx and broken connections; raise on an error answer."""
        headers = {"X-Request-ID": request_id} if request_id else {}
        # Encoded once, as bytes: aiohttp's json= would encode to str, then to bytes.
        data = None if json is None else orjson.dumps(json)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = await self._client().request(
                    method, self._url(path), data=data, headers=headers
                )
            except (aiohttp.ClientConnectionError, TimeoutError):
                if last:
                    raise
                await asyncio.sleep(retry_delay(attempt))
                continue
            if response.status < 400:
                return response
            failure = await self._failure(response)
            if last or isinstance(failure, BackendBusy) or not _retryable(response.status):
                raise failure
            await asyncio.sleep(retry_delay(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:  # yarl's join takes longer than the dict
            url = self._urls[path] = self._base / path
        return url

    async def _failure(self, response: aiohttp.ClientResponse) -> BackendError:
        async with response:
            try:
                body: object = await response.json(content_type=None)
            except ValueError:
                body = None
        return status_failure(self.name, response.status, response.headers, body)

    async def _fetch(
        self,
        method: str,
        path: str,
        *,
        retries: int,
        json: Json | None = None,
        request_id: str = "",
    ) -> Json:
        async with asyncio.timeout(self._timeout):
            response = await self._open(
                method, path, retries=retries, json=json, request_id=request_id
            )
            async with response:
                data = await response.json(content_type=None, loads=orjson.loads)
        if not isinstance(data, dict):
            raise BackendError("upstream backend answered something other than a JSON object")
        return data

    async def complete(self, request: ChatRequest) -> Completion:
        with translated(self.name, ERRORS):
            data = await self._fetch(
                "POST",
                "v1/chat",
                retries=self._retries,
                json=_body(request, stream=False),
                request_id=request.request_id,
            )
            return Completion(
                str(data["message"]["content"]),
                str(data.get("model") or request.model or self.default_model),
                _usage(data.get("usage")),
            )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        reader = _StreamReader(request.model or self.default_model)
        with translated(self.name, ERRORS):
            async with asyncio.timeout(self._timeout):  # for the answer to start
                response = await self._open(
                    "POST",
                    "v1/chat",
                    retries=self._retries,
                    json=_body(request, stream=True),
                    request_id=request.request_id,
                )
            async with response:  # then sock_read bounds each silence
                async for event, data in sse_events(response.content):
                    delta = reader.feed(event, data)
                    if delta is not None:
                        yield delta
                    if reader.end is not None:
                        break
        if reader.end is None:
            raise BackendError("upstream backend stream ended before message_end")
        yield reader.end

    async def tools(self) -> list[ToolSpec]:
        with translated(self.name, ERRORS):
            data = await self._fetch("GET", "v1/tools", retries=self._retries)
            return [
                ToolSpec(str(t["name"]), str(t.get("description", "")), dict(t["input_schema"]))
                for t in data["tools"]
            ]

    async def health(self) -> HealthReport:
        async def check() -> object:
            return await self._fetch("GET", "health", retries=0)

        return await probe(self.name, health_timeout(self._timeout), ERRORS, check)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _StreamReader:
    """Turns Relay's SSE events into stream events, remembering model and usage."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.end: StreamEnd | None = None

    def feed(self, event: str, data: Json) -> TextDelta | None:
        if event == "delta":
            return TextDelta(str(data["text"]))
        if event == "message_start":
            self.model = str(data.get("model") or self.model)
        elif event == "message_end":
            self.end = StreamEnd(str(data.get("model") or self.model), _usage(data.get("usage")))
        elif event == "error":
            raise status_failure("upstream", None, None, data)
        return None


async def sse_events(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[str, Json]]:
    """(event, JSON data) pairs from a text/event-stream; comments (keep-alives) skipped."""
    event, data = "message", list[str]()
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, orjson.loads("\n".join(data))
            event, data = "message", list[str]()
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def _body(request: ChatRequest, *, stream: bool) -> Json:
    body: Json = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": stream,
    }
    if request.model:
        body["model"] = request.model
    if request.system:
        body["system"] = request.system
    return body


def _usage(raw: object) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("input_tokens", 0)), int(raw.get("output_tokens", 0)))
