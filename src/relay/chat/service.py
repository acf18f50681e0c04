"""Chat: context from history, one backend call, both messages stored.

Nothing the client sent is lost, and nothing is answered before it is stored. A
plain chat stores the user's message and the reply in one transaction once the
backend has answered (one commit per chat, not two: the commit is most of a
chat's cost); if the backend fails, or the client leaves, the user's message is
stored alone, marked `failed`. A stream stores the user's message before it
starts, as a stream can run for minutes and what has arrived must be kept: if
it breaks, the text so far is stored as an `incomplete` reply. With an
Idempotency-Key, the complete reply is kept with the key in the transaction
that stores it: a retry gets the answer stored, or none was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from relay.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    ChatRequest,
    StreamEnd,
    StreamEvent,
    ToolSpec,
)
from relay.chat.events import (
    ChatEvent,
    Reply,
    ReplyDelta,
    ReplyFailed,
    ReplyFinished,
    ReplyStarted,
)
from relay.chat.idempotency import Claim, Idempotency, request_hash
from relay.errors import InvalidInput, NotFound
from relay.storage.base import Store, StoreUnavailable
from relay.storage.records import (
    ConversationRecord,
    MessageRecord,
    MessageStatus,
    new_id,
    utc_now,
)


@dataclass(frozen=True, slots=True)
class ChatInput:
    message: str
    conversation_id: str | None = None
    model: str | None = None
    system: str | None = None
    stream: bool = False

    def fingerprint(self) -> str:
        return request_hash(
            {
                "message": self.message,
                "conversation_id": self.conversation_id,
                "model": self.model,
                "system": self.system,
                "stream": self.stream,
            }
        )


Answer = Reply | AsyncIterator[ChatEvent]
# Called once a chat is accepted for the backend, before anything is stored:
# counts it against the client's chat limit (raising to refuse it).
Admit = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Turn:
    """One prepared exchange: the user's message and what goes to the backend.

    `new_conversation` is set until the conversation it starts is stored, and
    `user_stored` once the user's message is; `claim` holds its Idempotency-Key.
    """

    client_id: str
    user_message: MessageRecord
    request: ChatRequest
    new_conversation: ConversationRecord | None = None
    user_stored: bool = False
    reply_id: str = field(default_factory=lambda: new_id("msg"))
    claim: Claim | None = None


# NUL (which PostgreSQL cannot store) and lone surrogates (which no UTF-8 encoder
# takes, yet json.loads, and so the Anthropic and OpenAI SDKs, let through).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """A backend's text with what no store or JSON encoder can keep replaced by U+FFFD.

    Replaced as a UTF-8 decoder replaces bad bytes, so a reply holding one is
    stored and answered, not lost to an encoding error.
    """
    return _UNSTORABLE.sub("\ufffd", text)


def _context(history: list[MessageRecord]) -> list[ChatMessage]:
    """Prior turns a model accepts: no failed messages, starting with the user."""
    turns = [m for m in history if m.status != "failed" and m.content]
    while turns and turns[0].role != "user":
        turns.pop(0)
    return [ChatMessage("user" if m.role == "user" else "assistant", m.content) for m in turns]


async def _replay(reply: Reply) -> AsyncIterator[ChatEvent]:
    """A stored reply told again as the events a stream would have sent."""
    yield ReplyStarted(reply.id, reply.conversation_id, reply.model)
    yield ReplyDelta(reply.content)
    yield ReplyFinished(reply.id, reply.usage, reply.created_at)


async def _shielded(work: Awaitable[None]) -> None:
    """Finish a write even if the request is being cancelled (the client left)."""
    await asyncio.shield(asyncio.ensure_future(work))


class ChatService:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        idempotency: Idempotency,
        context_messages: int,
        max_message_chars: int,
        allowed_models: frozenset[str],
        tools: list[ToolSpec],
    ) -> None:
        self.store = store
        self.backend = backend
        self.idempotency = idempotency
        self.max_message_chars = max_message_chars
        self.context_messages = context_messages
        self.allowed_models = allowed_models
        self.tools = tools

    async def answer(
        self,
        client_id: str,
        chat: ChatInput,
        *,
        request_id: str,
        idempotency_key: str | None,
        admit: Admit | None = None,
    ) -> Answer:
        """The stored reply, or the events of a stream when `chat.stream` is set.

        `admit` runs only for a chat that will reach the backend: not for one
        refused (unknown conversation, invalid), nor for an idempotent replay.
        """
        if idempotency_key is None:
            return await self._answer(client_id, chat, request_id, admit)
        began = await self.idempotency.begin(client_id, idempotency_key, chat.fingerprint())
        if isinstance(began, Reply):
            return _replay(began) if chat.stream else began
        try:
            async with self.idempotency.held(began):
                answer = await self._answer(client_id, chat, request_id, admit, began)
        except BaseException:  # no answer was kept with the key (or it stays kept)
            await self.idempotency.abandon(began)
            raise
        if isinstance(answer, Reply):
            return answer
        return self._hold_while_streaming(answer, began)

    async def _answer(
        self,
        client_id: str,
        chat: ChatInput,
        request_id: str,
        admit: Admit | None,
        claim: Claim | None = None,
    ) -> Answer:
        turn = await self.prepare(client_id, chat, request_id, admit)
        turn.claim = claim
        return await (self.open_stream(turn) if chat.stream else self.complete(turn))

    async def _hold_while_streaming(
        self, events: AsyncIterator[ChatEvent], claim: Claim
    ) -> AsyncIterator[ChatEvent]:
        """Pass a stream through, holding its key; free the key unless a reply was kept."""
        finished = False
        try:
            async with self.idempotency.held(claim):
                async for event in events:
                    finished = finished or isinstance(event, ReplyFinished)
                    yield event
        finally:
            if not finished:
                await self.idempotency.abandon(claim)
            await events.aclose()  # type: ignore[attr-defined]

    async def prepare(
        self, client_id: str, chat: ChatInput, request_id: str, admit: Admit | None = None
    ) -> Turn:
        if len(chat.message) > self.max_message_chars:
            limit = self.max_message_chars
            raise InvalidInput("message", f"The message is longer than {limit} characters.")
        if chat.model is not None and self.allowed_models and chat.model not in self.allowed_models:
            raise InvalidInput("model", "This model is not allowed.")
        history: list[MessageRecord] = []
        new_conversation = None
        if chat.conversation_id is None:
            conversation = new_conversation = ConversationRecord(
                new_id("conv"), client_id, utc_now()
            )
        else:
            found = await self.store.get_conversation(client_id, chat.conversation_id)
            if found is None:
                raise NotFound("conversation")
            conversation = found
            if self.context_messages:
                history = await self.store.recent_messages(conversation.id, self.context_messages)
        user_message = MessageRecord(
            new_id("msg"), conversation.id, client_id, "user", chat.message, "complete", utc_now()
        )
        messages = [*_context(history), ChatMessage("user", chat.message)]
        request = ChatRequest(messages, chat.model, chat.system, request_id, self.tools)
        turn = Turn(client_id, user_message, request, new_conversation)
        if admit is not None:
            await admit()
        if chat.stream:  # kept from the start; a plain chat stores it with the reply
            await self._store(turn, user_message)
        return turn

    async def complete(self, turn: Turn) -> Reply:
        try:
            completion = await self.backend.complete(turn.request)
        except BaseException:  # a backend failure, or the client left: keep the message
            await _shielded(self._mark_failed(turn))
            raise
        record = self._reply(turn, storable(completion.content), "complete")
        reply = Reply(
            record.id,
            record.conversation_id,
            record.content,
            completion.model,
            completion.usage,
            record.created_at,
        )
        await self._store(turn, turn.user_message, record, answer=reply)
        return reply

    async def open_stream(self, turn: Turn) -> AsyncIterator[ChatEvent]:
        """Start the backend stream; a failure before its first event raises (plain 502)."""
        events = aiter(self.backend.stream(turn.request))
        try:
            first = await anext(events)
        except (BackendError, StopAsyncIteration) as exc:
            await _shielded(self._mark_failed(turn))
            if isinstance(exc, BackendError):
                raise
            raise BackendError("The backend closed the stream without answering.") from exc
        return self._relay_stream(turn, first, events)

    async def _relay_stream(
        self, turn: Turn, first: StreamEvent, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[ChatEvent]:
        conversation_id = turn.user_message.conversation_id
        model = turn.request.model or self.backend.default_model
        parts: list[str] = []
        finished = False
        # The start is inside the try: a client leaving right after it still
        # gets the user message marked and the backend stream closed.
        try:
            yield ReplyStarted(turn.reply_id, conversation_id, model)
            event: StreamEvent | None = first
            while event is not None:
                if isinstance(event, StreamEnd):
                    record = self._reply(turn, "".join(parts), "complete")
                    reply = Reply(
                        record.id,
                        conversation_id,
                        record.content,
                        model,
                        event.usage,
                        record.created_at,
                    )
                    await self._store(turn, record, answer=reply)
                    finished = True
                    yield ReplyFinished(record.id, event.usage, record.created_at)
                    return
                text = storable(event.text)
                parts.append(text)
                yield ReplyDelta(text)
                event = await anext(events, None)
            raise BackendError("The backend stream ended without a final event.")
        except (BackendError, StoreUnavailable) as exc:
            yield ReplyFailed(exc)
        finally:
            if not finished:
                with contextlib.suppress(StoreUnavailable):  # nothing more can be kept
                    await _shielded(self._store_partial(turn, "".join(parts)))
            await events.aclose()  # type: ignore[attr-defined]

    def _reply(self, turn: Turn, content: str, status: MessageStatus) -> MessageRecord:
        conversation_id = turn.user_message.conversation_id
        return MessageRecord(
            turn.reply_id, conversation_id, turn.client_id, "assistant", content, status, utc_now()
        )

    async def _store(
        self, turn: Turn, *messages: MessageRecord, answer: Reply | None = None
    ) -> None:
        """Store messages of this turn in one transaction, with its conversation if new,
        and `answer` kept with the turn's Idempotency-Key if it has one."""
        kept = turn.claim.answer(answer) if answer is not None and turn.claim else None
        await self.store.add_messages(messages, new_conversation=turn.new_conversation, answer=kept)
        turn.new_conversation = None
        if any(m.id == turn.user_message.id for m in messages):
            turn.user_stored = True

    async def _store_reply(self, turn: Turn, content: str, status: MessageStatus) -> MessageRecord:
        reply = self._reply(turn, content, status)
        await self._store(turn, reply)
        return reply

    async def _store_partial(self, turn: Turn, content: str) -> None:
        if content:
            await self._store_reply(turn, content, "incomplete")
        else:
            await self._mark_failed(turn)

    async def _mark_failed(self, turn: Turn) -> None:
        if turn.user_stored:
            await self.store.finish_message(turn.user_message.id, content=None, status="failed")
        else:
            await self._store(turn, dataclasses.replace(turn.user_message, status="failed"))
