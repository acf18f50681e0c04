"""SQLite's writes, committed by a child process so they never wait for our GIL.

On a thread of this process, each statement releases the GIL around SQLite's
work and then waits for the busy event loop to give it back, so a commit took
many times its CPU and the loop sat idle meanwhile. The child (writer_child.py)
holds its own interpreter: the loop pickles each write onto a pipe and gets
one answer per batch.

If the child dies, the writes it held fail (their callers cannot know whether
they committed) and the next write starts a new one. Every way a write can
fail for want of a working child (it died, its pipe closed under us, it cannot
start) is a `sqlite3.OperationalError`, which the store answers as unavailable.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from relay.storage.sqlite import writer_child
from relay.storage.sqlite.writer_child import Changed, Statements, frame, take_frames

logger = logging.getLogger("relay.storage")
WRITER_SCRIPT = str(Path(writer_child.__file__).resolve())
STOP_SECONDS = 30.0  # for the child to commit what it holds once its input closes


def _result(answer: Any) -> list[Any]:
    """One write's answer from the child: tuples back to Changed; an error raised."""
    if isinstance(answer, BaseException):
        raise answer
    return [Changed(*r) if isinstance(r, tuple) else r for r in answer]


class _Answers(asyncio.SubprocessProtocol):
    """Reads the child's answers and settles the waiting futures, oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.answered: asyncio.Future[None] = loop.create_future()  # its output ended
        self._buffer = bytearray()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self._buffer += data
        for answers in take_frames(self._buffer):
            if not isinstance(answers, list):  # the answer to starting up
                answers = [answers]
            for answer in answers:
                future = self.waiting.popleft()
                if not future.done():  # a cancelled caller's write stands all the same
                    future.set_result(answer)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd != 1:
            return
        # Every answer sent was read before the end of output: what waits now never will be.
        lost = sqlite3.OperationalError("the SQLite writer process exited")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(lost)
        _settle(self.answered)

    def process_exited(self) -> None:
        _settle(self.exited)

    @property
    def gone(self) -> bool:
        return self.answered.done() or self.exited.done()

    def lost(self, future: asyncio.Future[Any]) -> None:
        """`future`'s write never reached the child: no answer will come for it."""
        with contextlib.suppress(ValueError):  # already failed by pipe_connection_lost
            self.waiting.remove(future)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WriterProcess:
    """Group-committed writes to one SQLite file, made by a child process."""

    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = pragmas
        self._transport: asyncio.SubprocessTransport | None = None
        self._answers: _Answers | None = None
        self._starting = asyncio.Lock()
        self._closed = True

    async def open(self) -> None:
        self._closed = False
        await self._start()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        answers = _Answers(loop)
        ready = loop.create_future()
        answers.waiting.append(ready)
        try:
            self._transport, _ = await loop.subprocess_exec(
                lambda: answers,
                *(sys.executable, "-I", "-S", WRITER_SCRIPT, self.path, json.dumps(self.pragmas)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
            )
        except OSError as exc:  # no interpreter (a venv replaced), no process or file slots
            raise sqlite3.OperationalError(
                f"cannot start the SQLite writer process: {exc}"
            ) from exc
        self._answers = answers
        try:
            error = await ready
        except sqlite3.OperationalError:  # it exited before it could answer
            await self._stop()
            raise
        if error is not None:
            await self._stop()
            raise error

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return None if self._transport is None else self._transport.get_pid()

    async def write_all(self, statements: Statements) -> list[Any]:
        """Queue writes together: they share a transaction, in this order, all or none."""
        data = frame(list(statements))  # first: if this fails, no answer is awaited
        answers, stdin = await self._running()
        future = asyncio.get_running_loop().create_future()
        answers.waiting.append(future)
        try:
            stdin.write(data)
        except (RuntimeError, OSError) as exc:
            # The child died and its input closed before its output did (uvloop
            # raises RuntimeError on a closed pipe): this write never left.
            answers.lost(future)
            raise sqlite3.OperationalError("the SQLite writer process exited") from exc
        return _result(await future)

    async def _running(self) -> tuple[_Answers, asyncio.WriteTransport]:
        """The child's answers and its input, once a live child runs (started if need be)."""
        if self._closed:
            raise sqlite3.OperationalError("the SQLite store is not open")
        if self._usable():
            return self._current()
        async with self._starting:
            if not self._usable():
                logger.warning("the SQLite writer process exited; starting a new one")
                await self._stop()  # reap the old one and close its pipes
                await self._start()
        return self._current()

    def _usable(self) -> bool:
        """A child runs, its output is open and so is its input (either closes as it dies)."""
        answers, transport = self._answers, self._transport
        if answers is None or transport is None or answers.gone:
            return False
        return not _stdin_of(transport).is_closing()

    def _current(self) -> tuple[_Answers, asyncio.WriteTransport]:
        assert self._answers is not None and self._transport is not None
        return self._answers, _stdin_of(self._transport)

    async def close(self) -> None:
        """Let the child commit every write it was sent, then wait for it to end."""
        self._closed = True
        await self._stop()

    async def _stop(self) -> None:
        transport, answers = self._transport, self._answers
        self._transport = self._answers = None
        if transport is None or answers is None:
            return
        _stdin_of(transport).close()  # end of input: the child commits, answers, exits
        ended = asyncio.gather(answers.answered, answers.exited)
        try:
            await asyncio.wait_for(asyncio.shield(ended), STOP_SECONDS)
        except TimeoutError:
            logger.error("the SQLite writer did not stop in time; killing it")
            transport.kill()
            await ended
        transport.close()


def _stdin_of(transport: asyncio.SubprocessTransport) -> asyncio.WriteTransport:
    stdin = transport.get_pipe_transport(0)
    assert stdin is not None  # uvloop's pipe is not an asyncio.WriteTransport subclass
    return cast(asyncio.WriteTransport, stdin)
