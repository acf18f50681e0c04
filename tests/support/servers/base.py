"""What the three fake backend servers share: recording, key checks, planned failures, SSE.

Each server speaks one real wire protocol on 127.0.0.1 (a free port), so the
backends are tested through the real SDKs and aiohttp, never through patches.
A test tells a server how to misbehave with a Plan; the protocol subclasses
only say how their answers, errors and stream events look.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import orjson
from aiohttp import web
from multidict import CIMultiDict

from relay.backends.base import ChatRequest, ToolSpec
from relay.backends.echo import WORD_WITH_SPACE

Json = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SseEvent = tuple[str | None, str]  # (event name or None, the data line)
ErrorKind = str  # "rate_limit", "overloaded", "auth" or "server"
REPLY_PREFIX = "You said: "


def reply_for(text: str) -> str:
    """The deterministic answer every fake server gives to a user message."""
    return REPLY_PREFIX + text


def served_model(requested: str) -> str:
    """The name a server reports: like real APIs, a dated build of the model asked for."""
    return f"{requested}-20250101"


def split_words(text: str) -> list[str]:
    """The stream deltas: each word with the whitespace before it, as the echo backend does."""
    parts: list[str] = WORD_WITH_SPACE.findall(text)
    return parts


def turns(request: ChatRequest) -> list[Json]:
    """The conversation as every protocol writes it: role and content."""
    return [{"role": m.role, "content": m.content} for m in request.messages]


def count_words(texts: Sequence[str]) -> int:
    return sum(len(text.split()) for text in texts)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: Any  # the parsed JSON body, or None


@dataclass(slots=True)
class Plan:
    """How to answer the next request(s) instead of normally."""

    status: int | None = None  # answer this status with the protocol's error body
    kind: ErrorKind = "server"
    body: Json | None = None  # an exact error body instead of the protocol's one for `kind`
    retry_after: str | None = None
    delay: float = 0.0  # seconds to wait before answering at all
    raw_body: str | None = None  # a 200 whose body is not JSON
    reply: str | None = None  # this text instead of the usual reply, in the protocol's JSON
    break_after: int | None = None  # streams: close the connection after this many deltas
    error_after: int | None = None  # streams: send an error event after this many deltas
    stall_after: int | None = None  # streams: go silent for `stall` seconds after this many
    stall: float = 2.0
    times: int | None = 1  # how many requests this plan applies to; None: all from now on


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply in protocol-neutral terms, which each protocol then dresses."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_tokens", len(self.text.split()))

    @classmethod
    def to(cls, body: Json, default_model: str = "") -> Answer:
        """Answer the last message; input tokens are the words of all non-system messages."""
        texts = [str(m["content"]) for m in body["messages"] if m["role"] != "system"]
        return cls(
            reply_for(texts[-1]),
            served_model(body.get("model") or default_model),
            count_words(texts),
        )


def planned(answer: Answer, plan: Plan) -> Answer:
    """The answer, with the plan's text instead when the plan names one."""
    return answer if plan.reply is None else replace(answer, text=plan.reply)


PLAN: web.RequestKey[Plan] = web.RequestKey("plan")
BODY: web.RequestKey[Json] = web.RequestKey("body")  # the parsed JSON body ({} for a GET)


class FakeServer(ABC):
    """An aiohttp.web server that records requests and can be told to fail."""

    overloaded_status: ClassVar[int] = 503  # how this protocol says "overloaded"
    chat_path: ClassVar[str]
    stream_marker: ClassVar[Json]  # what a streaming request body carries

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.url = ""
        self._plans: list[Plan] = []
        self._runner: web.AppRunner | None = None

    # --- what tests call -------------------------------------------------------------

    def plan(self, **changes: Any) -> None:
        """Misbehave on the next request(s); see Plan for the knobs."""
        self._plans.append(Plan(**changes))

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def start(self, port: int = 0) -> str:
        """Serve on `port` (0: a free one); a restart may reuse the port it had."""
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        # Cancel a handler when its client gives up, so stopping never waits on a delay.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what each protocol defines --------------------------------------------------

    @abstractmethod
    def add_routes(self, app: web.Application) -> None: ...

    @abstractmethod
    def key_ok(self, request: web.Request) -> bool:
        """Whether the request carries this server's API key the protocol's way."""

    @abstractmethod
    def error_body(self, kind: ErrorKind, message: str) -> Json: ...

    @abstractmethod
    def error_event(self, kind: ErrorKind, message: str) -> SseEvent: ...

    @staticmethod
    @abstractmethod
    def wire_request(request: ChatRequest, model: str) -> Json:
        """The part of the request body that carries the conversation, system and model."""

    @staticmethod
    def wire_tool(tool: ToolSpec) -> Json:
        """How a tool travels in this protocol (only anthropic and openai carry tools)."""
        raise NotImplementedError

    # --- shared machinery ------------------------------------------------------------

    def _take_plan(self) -> Plan:
        if not self._plans:
            return Plan()
        plan = self._plans[0]
        if plan.times is not None:
            plan.times -= 1
            if plan.times <= 0:
                self._plans.pop(0)
        return plan

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, then apply the plan (delay, key check, failure) before the real handler."""
        body = orjson.loads(await request.read()) if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, request.headers.copy(), body))
        plan = self._take_plan()
        request[PLAN] = plan
        request[BODY] = body or {}
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if not self.key_ok(request):
            return self.error(401, "auth", "invalid API key")
        if plan.status is not None:
            return self.error(
                plan.status, plan.kind, "planned failure", plan.retry_after, plan.body
            )
        if plan.raw_body is not None:
            return web.Response(text=plan.raw_body, content_type="application/json")
        return await handler(request)

    def error(
        self,
        status: int,
        kind: ErrorKind,
        message: str,
        retry_after: str | None = None,
        body: Json | None = None,
    ) -> web.Response:
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = self.error_body(kind, message) if body is None else body
        return web.json_response(body, status=status, headers=headers)

    def bearer_ok(self, request: web.Request) -> bool:
        """The OpenAI and upstream way: `Authorization: Bearer <key>`."""
        if self.api_key is None:
            return True
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def send_stream(
        self,
        request: web.Request,
        head: Sequence[SseEvent],
        deltas: Sequence[SseEvent],
        tail: Sequence[SseEvent],
    ) -> web.StreamResponse:
        """Write an SSE answer, breaking off or failing after N deltas when planned."""
        plan = request[PLAN]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in head:
            await _write(response, event)
        for index, event in enumerate(deltas):
            if index == plan.break_after:
                return _break_connection(request, response)
            if index == plan.stall_after:
                await asyncio.sleep(plan.stall)
            if index == plan.error_after:
                await _write(response, self.error_event(plan.kind, "planned failure"))
                return await _finish(response)
            await _write(response, event)
        for event in tail:
            await _write(response, event)
        return await _finish(response)


async def _write(response: web.StreamResponse, event: SseEvent) -> None:
    name, data = event
    prefix = f"event: {name}\n" if name is not None else ""
    await response.write(f"{prefix}data: {data}\n\n".encode())


async def _finish(response: web.StreamResponse) -> web.StreamResponse:
    await response.write_eof()
    return response


def _break_connection(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Drop the TCP connection mid-body: the client sees an unterminated chunked stream."""
    if request.transport is not None:
        request.transport.abort()
    return response


def sse_json(name: str | None, data: Json) -> SseEvent:
    # The standard library escapes what orjson refuses (a lone surrogate), as
    # web.json_response does for the non-streaming answers.
    return name, json.dumps(data, separators=(",", ":"))
