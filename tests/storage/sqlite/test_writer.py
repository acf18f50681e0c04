"""SQLite's writer process: writes waiting together commit together, and nothing sent is lost."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from relay.storage.sqlite.writer import WriterProcess
from relay.storage.sqlite.writer_child import Changed
from tests.support.files import unwritable

PRAGMAS = ("journal_mode = WAL", "synchronous = FULL", "busy_timeout = 10000")
INSERT = "INSERT INTO notes (body) VALUES (?)"


async def write(writer: WriterProcess, sql: str, args: tuple[object, ...]) -> Any:
    """One write in a transaction of its own (with whatever else is queued)."""
    (result,) = await writer.write_all([(sql, args)])
    return result


KILLS = 10
FRAME = 24 + 4096  # a WAL frame: its header and one page


@pytest.fixture
def path(tmp_path: Path) -> str:
    path = str(tmp_path / "w.db")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return path


@pytest.fixture
async def writer(path: str) -> AsyncIterator[WriterProcess]:
    writer = WriterProcess(path, PRAGMAS)
    await writer.open()
    try:
        yield writer
    finally:
        await writer.close()


@contextmanager
def write_lock(path: str) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, so the writer's batches wait."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def bodies(path: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [body for (body,) in db.execute("SELECT body FROM notes ORDER BY id")]


async def test_writes_waiting_together_share_one_transaction(
    writer: WriterProcess, path: str
) -> None:
    wal = Path(f"{path}-wal")
    await write(writer, INSERT, ("warm up",))  # the WAL exists and has its header
    before = wal.stat().st_size
    with write_lock(path):
        first = asyncio.create_task(write(writer, INSERT, ("first",)))
        await asyncio.sleep(0.05)  # the writer took it and waits for the lock
        rest = [asyncio.create_task(write(writer, INSERT, (f"note {i}",))) for i in range(10)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(w.done() for w in rest)  # none before its commit
    results = [await first, *await asyncio.gather(*rest)]
    assert len({r.last_id for r in results}) == 11  # each write got its own result
    assert bodies(path) == ["warm up", "first", *(f"note {i}" for i in range(10))]
    # Each commit appends the table's page to the WAL: two commits, not eleven.
    assert wal.stat().st_size - before == 2 * FRAME


async def test_a_write_answers_what_it_changed_or_the_rows_it_returned(
    writer: WriterProcess,
) -> None:
    first = await write(writer, INSERT, ("one",))
    second = await write(writer, INSERT, ("two",))
    assert first == Changed(1, 1) and second == Changed(1, 2)
    rows = await write(writer, "UPDATE notes SET body = upper(body) RETURNING id, body", ())
    assert sorted((r["id"], r["body"]) for r in rows) == [(1, "ONE"), (2, "TWO")]


async def test_a_bad_write_fails_alone(writer: WriterProcess, path: str) -> None:
    with write_lock(path):
        blocker = asyncio.create_task(write(writer, INSERT, ("first",)))
        await asyncio.sleep(0.05)
        writes = [write(writer, INSERT, (body,)) for body in ("a", None, "b", "bad \ud800")]
        tasks = [asyncio.create_task(w) for w in writes]
        await asyncio.sleep(0.05)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert isinstance(results[3], UnicodeEncodeError)
    assert await blocker == Changed(1, 1)
    assert bodies(path) == ["first", "a", "b"]


async def test_a_cancelled_caller_does_not_undo_its_write(writer: WriterProcess, path: str) -> None:
    with write_lock(path):
        pending = asyncio.create_task(write(writer, INSERT, ("stands",)))
        await asyncio.sleep(0.05)
        pending.cancel()
    await write(writer, INSERT, ("after",))  # answered after the cancelled one
    assert bodies(path) == ["stands", "after"]


async def test_close_commits_what_was_sent_then_refuses_more(path: str) -> None:
    writer = WriterProcess(path, PRAGMAS)
    await writer.open()
    with write_lock(path):
        writes = [asyncio.create_task(write(writer, INSERT, (f"note {i}",))) for i in range(5)]
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
    await closing
    assert [r.rows for r in await asyncio.gather(*writes)] == [1] * 5
    with pytest.raises(sqlite3.OperationalError, match="not open"):
        await write(writer, INSERT, ("too late",))
    assert bodies(path) == [f"note {i}" for i in range(5)]


async def test_a_dead_writer_fails_its_writes_and_the_next_write_starts_another(
    writer: WriterProcess, path: str
) -> None:
    with write_lock(path):
        lost = asyncio.create_task(write(writer, INSERT, ("in flight",)))
        await asyncio.sleep(0.05)
        dead = writer.pid
        assert dead is not None
        os.kill(dead, signal.SIGKILL)
        with pytest.raises(sqlite3.OperationalError, match="exited"):
            await lost
    assert await write(writer, INSERT, ("next",)) == Changed(1, 1)
    assert writer.pid not in (None, dead)
    assert bodies(path) == ["next"]


async def test_an_interrupt_does_not_stop_the_writer(writer: WriterProcess) -> None:
    """Ctrl-C reaches the whole process group; the parent still has writes to make."""
    pid = writer.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.1)
    assert await write(writer, INSERT, ("still here",)) == Changed(1, 1)
    assert writer.pid == pid  # the same process answered: not a new one


async def test_a_database_that_cannot_open_fails_open(tmp_path: Path) -> None:
    writer = WriterProcess(str(tmp_path / "missing" / "w.db"), PRAGMAS)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await writer.open()


def test_the_writer_ends_when_its_parent_dies(path: str) -> None:
    """No orphan: killed without a word, the parent's pipe closes and the child exits."""
    parent = textwrap.dedent(f"""
        import asyncio, sys
        from relay.storage.sqlite.writer import WriterProcess

        async def main():
            writer = WriterProcess({path!r}, ())
            await writer.open()
            print(writer.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    with subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        child = int(process.stdout.readline())
        process.kill()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the writer {child} outlived its parent")


async def test_a_write_that_cannot_be_sent_fails_alone(writer: WriterProcess) -> None:
    """It must not leave an answer awaited that never comes: the next write would get it."""
    with pytest.raises((pickle.PicklingError, AttributeError)):
        await write(writer, INSERT, (lambda: "not a value",))
    assert await asyncio.wait_for(write(writer, INSERT, ("next",)), 10) == Changed(1, 1)


@pytest.mark.filterwarnings("error::ResourceWarning")
async def test_a_restart_closes_what_the_dead_writer_left_open(writer: WriterProcess) -> None:
    dead = writer.pid
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    await asyncio.sleep(0.1)
    await write(writer, INSERT, ("after",))
    assert writer.pid != dead
    gc.collect()  # an unclosed transport or pipe of the dead one warns here, failing the test


async def test_a_writer_that_cannot_restart_fails_the_write_as_the_store_being_down(
    writer: WriterProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No interpreter (a venv replaced under a running Relay): a store error, not an OSError."""
    dead = writer.pid
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    await asyncio.sleep(0.1)
    with monkeypatch.context() as patched:
        patched.setattr(sys, "executable", "/nonexistent/python3")
        with pytest.raises(sqlite3.OperationalError, match="cannot start the SQLite writer"):
            await write(writer, INSERT, ("lost",))
    assert await write(writer, INSERT, ("after",)) == Changed(1, 1)


def test_a_writer_killed_under_load_fails_writes_only_as_unavailable(path: str) -> None:
    """Under uvloop (as `relay serve` runs) the child's input can close before its output.

    A write sent in between raised uvloop's RuntimeError ("unable to perform operation
    on <WriteUnixTransport closed=True>"), which the store did not translate: a 500.
    Every failure must be an OperationalError (the store's 503), no answer may be left
    awaited, and the next write must start a new child.
    """
    uvloop = pytest.importorskip("uvloop")
    outcomes: Counter[str] = Counter()
    unhandled: list[dict[str, Any]] = []

    async def one(writer: WriterProcess) -> None:
        try:
            await write(writer, INSERT, ("under load",))
            outcomes["ok"] += 1
        except sqlite3.OperationalError:
            outcomes["unavailable"] += 1
        except Exception as exc:
            outcomes[f"{type(exc).__name__}: {exc}"] += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: unhandled.append(context))
        writer = WriterProcess(path, PRAGMAS)
        await writer.open()
        try:
            for _ in range(KILLS):
                await one(writer)  # a live child first
                pid = writer.pid
                assert pid is not None
                with write_lock(path):  # some writes are in the child when it dies
                    pending = [asyncio.ensure_future(one(writer)) for _ in range(3)]
                    await asyncio.sleep(0.02)
                    os.kill(pid, signal.SIGKILL)
                # Writes keep coming, one more each turn of the loop, as requests would.
                until = time.monotonic() + 0.05
                while time.monotonic() < until:
                    pending.append(asyncio.ensure_future(one(writer)))
                    await asyncio.sleep(0)
                await asyncio.wait_for(asyncio.gather(*pending), 30)
            assert (await write(writer, INSERT, ("after",))).rows == 1
        finally:
            await writer.close()
        gc.collect()  # a future failed but never awaited is reported when collected

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    assert set(outcomes) <= {"ok", "unavailable"}, outcomes
    assert outcomes["unavailable"] >= 3 * KILLS  # at least those in the child when it died
    assert unhandled == []


def wal_files(path: str) -> list[Path]:
    # Not the -shm: it is memory every connection maps; made immutable under a live
    # mapping (root's chattr), a reader's lock write faults (SIGBUS), which no
    # permission change does in real life.
    return [Path(f"{path}{suffix}") for suffix in ("", "-wal")]


async def test_a_writer_never_runs_on_a_file_it_cannot_write(path: str) -> None:
    """SQLite opens an unwritable file read-only without a word, and stays so for good."""
    with sqlite3.connect(path) as held:  # another process's reader keeps the WAL open
        held.execute("SELECT * FROM notes").fetchall()
        writer = WriterProcess(path, PRAGMAS)
        read_only = pytest.raises(sqlite3.OperationalError, match="readonly")
        with unwritable(*wal_files(path)), read_only:
            await writer.open()
        # Writable again: the next write starts a child that can write.
        try:
            assert await write(writer, INSERT, ("writable again",)) == Changed(1, 1)
        finally:
            await writer.close()
    assert bodies(path) == ["writable again"]
