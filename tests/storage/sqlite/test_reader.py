"""SQLite's reader thread: reads and calls run on its one connection, each failing alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.storage.sqlite.reader import SQLiteThread


@pytest.fixture
async def thread(tmp_path: Path) -> AsyncIterator[SQLiteThread]:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        db.executemany("INSERT INTO notes (body) VALUES (?)", [("one",), ("two",)])
    thread = SQLiteThread(str(path), ("journal_mode = WAL",))
    await thread.open()
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


async def test_a_call_that_raises_fails_its_caller_only(thread: SQLiteThread) -> None:
    def broken() -> None:
        raise ValueError("broken on purpose")

    release, busy = await hold(thread)
    failing = asyncio.create_task(thread.call(broken))
    reading = asyncio.create_task(thread.read("SELECT body FROM notes ORDER BY id", ()))
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(ValueError, match="broken on purpose"):
        await failing
    assert [r["body"] for r in await reading] == ["one", "two"]
    assert await busy


async def test_close_answers_what_is_queued_then_refuses_more(thread: SQLiteThread) -> None:
    release, busy = await hold(thread)
    reads = [asyncio.create_task(thread.read("SELECT count(*) AS n FROM notes", ())) for _ in "ab"]
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(thread.close())
    await asyncio.sleep(0.01)
    release.set()
    await closing
    assert [rows[0]["n"] for rows in await asyncio.gather(*reads)] == [2, 2]
    assert await busy
    with pytest.raises(sqlite3.OperationalError, match="not open"):
        await thread.read("SELECT 1", ())
