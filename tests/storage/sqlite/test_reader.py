"""SQLite's writer thread: writes that wait together commit together, and nothing queued is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.storage.sqlite.reader import SQLiteThread

INSERT = "INSERT INTO notes (body) VALUES (?) RETURNING id"


@pytest.fixture
async def thread(tmp_path: Path) -> AsyncIterator[SQLiteThread]:
    thread = SQLiteThread(str(tmp_path / "t.db"), ("journal_mode = WAL", "synchronous = FULL"))
    await thread.open()
    await thread.write("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", ())
    try:
        yield thread
    finally:
        await thread.close()


async def hold(thread: SQLiteThread) -> tuple[threading.Event, asyncio.Task[bool]]:
    """Keep the thread busy until the event is set, so that jobs queue up behind it."""
    entered, release = threading.Event(), threading.Event()

    def wait() -> bool:
        entered.set()
        return release.wait(timeout=10)

    busy = asyncio.create_task(thread.call(wait))
    while not entered.is_set():
        await asyncio.sleep(0.001)
    return release, busy


def count_commits(thread: SQLiteThread, commits: list[str]) -> None:
    thread.db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)


async def test_writes_waiting_together_share_one_transaction(thread: SQLiteThread) -> None:
    commits: list[str] = []
    await thread.call(count_commits, thread, commits)
    release, busy = await hold(thread)
    writes = [asyncio.create_task(thread.write(INSERT, (f"note {i}",))) for i in range(10)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in writes)  # nothing is answered before its commit
    release.set()
    results = await asyncio.gather(*writes)
    assert await busy
    assert commits == ["COMMIT"]
    ids = [rows[0]["id"] for rows in results]
    assert len(set(ids)) == 10  # each write got its own result
    rows = await thread.read("SELECT id, body FROM notes ORDER BY id", ())
    assert [(r["id"], r["body"]) for r in rows] == [(ids[i], f"note {i}") for i in range(10)]


async def test_a_lone_write_commits_without_waiting_for_company(thread: SQLiteThread) -> None:
    commits: list[str] = []
    await thread.call(count_commits, thread, commits)
    for i in range(3):
        await thread.write(INSERT, (f"note {i}",))
    assert commits == ["COMMIT"] * 3


async def test_a_call_that_raises_fails_its_caller_only(thread: SQLiteThread) -> None:
    def broken() -> None:
        raise ValueError("broken on purpose")

    release, busy = await hold(thread)
    failing = asyncio.create_task(thread.call(broken))
    writing = asyncio.create_task(thread.write(INSERT, ("kept",)))
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(ValueError, match="broken on purpose"):
        await failing
    assert (await writing)[0]["id"] == 1
    assert await busy


async def test_a_cancelled_caller_does_not_undo_its_write(thread: SQLiteThread) -> None:
    release, busy = await hold(thread)
    write = asyncio.create_task(thread.write(INSERT, ("stands",)))
    await asyncio.sleep(0.01)
    write.cancel()
    release.set()
    assert await busy
    with pytest.raises(asyncio.CancelledError):
        await write
    rows = await thread.read("SELECT body FROM notes", ())
    assert [r["body"] for r in rows] == ["stands"]


async def test_close_commits_what_is_queued_then_refuses_more(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    thread = SQLiteThread(path, ("journal_mode = WAL", "synchronous = FULL"))
    await thread.open()
    await thread.write("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", ())
    release, busy = await hold(thread)
    writes = [asyncio.create_task(thread.write(INSERT, (f"note {i}",))) for i in range(5)]
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(thread.close())
    await asyncio.sleep(0.01)
    release.set()
    await closing
    assert len(await asyncio.gather(*writes)) == 5
    assert await busy
    with pytest.raises(sqlite3.OperationalError, match="not open"):
        await thread.write(INSERT, ("too late",))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (5,)


async def test_a_write_without_returning_answers_what_it_changed(thread: SQLiteThread) -> None:
    first = await thread.write("INSERT INTO notes (body) VALUES (?)", ("one",))
    second = await thread.write("INSERT INTO notes (body) VALUES (?)", ("two",))
    assert (first.rows, second.rows) == (1, 1)
    rows = await thread.read("SELECT id FROM notes WHERE body = ?", ("two",))
    assert second.last_id == rows[0]["id"] != first.last_id
    updated = await thread.write("UPDATE notes SET body = upper(body)", ())
    assert updated.rows == 2


async def test_a_batch_the_database_refuses_fails_every_write_and_the_thread_goes_on(
    thread: SQLiteThread,
) -> None:
    await thread.call(lambda: thread.db.execute("PRAGMA query_only = ON"))
    release, busy = await hold(thread)
    writes = [asyncio.create_task(thread.write(INSERT, (f"note {i}",))) for i in range(3)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert await busy
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    await thread.call(lambda: thread.db.execute("PRAGMA query_only = OFF"))
    assert (await thread.write(INSERT, ("after",)))[0]["id"] == 1
    rows = await thread.read("SELECT body FROM notes", ())
    assert [r["body"] for r in rows] == ["after"]
