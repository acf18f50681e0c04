"""SQLite's write transactions: a batch of writes in one commit, a bad one failing alone.

Every commit with `synchronous = FULL` waits for an fsync, and SQLite has one
writer at a time, so writes waiting together share one transaction; each
caller waits for the commit that holds its own write, so nothing acknowledged
can be lost. A write that fails on its own (a constraint, a value the driver
cannot bind) rolls the batch back, and the batch is retried one write at a
time so only that write fails.

This module is the writer process (`python -I -S writer_child.py PATH
PRAGMAS`, started by writer.py): it reads framed batches on stdin and
answers each on stdout. So it imports nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Statements = Sequence[tuple[str, Sequence[Any]]]
# What fails one write and not the database: a constraint, or a value the driver
# cannot bind (UnicodeEncodeError for a lone surrogate is a ValueError).
BAD_WRITE = (sqlite3.Error, ValueError)
# A frame: its length (4 bytes, big-endian), then a pickle.
HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Changed:
    """What a statement returning no rows did."""

    rows: int  # how many rows it changed
    last_id: int | None  # the rowid of the last row inserted on this connection


def connect(path: str, pragmas: Sequence[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in pragmas:
        db.execute(f"PRAGMA {pragma}")
    return db


def connect_writable(path: str, pragmas: Sequence[str]) -> sqlite3.Connection:
    """A connection that can write, or the error that says why not.

    SQLite opens a file it may not write read-only without a word, and such a
    connection stays read-only after the file becomes writable again. Taking the
    write lock does not tell (in WAL mode the lock lives in the shared memory
    another process keeps open): writing a page does, so one is written (the
    header's user_version, set to the value it has) and rolled back.
    """
    db = connect(path, pragmas)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            db.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    except sqlite3.Error:
        db.close()
        raise
    return db


def run_one(db: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Any] | Changed:
    """Rows for a statement that returns some (SELECT, RETURNING), else what it changed.

    An insert reads its new rowid back as `last_id` rather than through
    RETURNING, which costs SQLite a temporary table and Python a row object
    (about 10 us a chat on the writer, measured).
    """
    cursor = db.execute(sql, args)
    if cursor.description is not None:
        return cursor.fetchall()
    return Changed(cursor.rowcount, cursor.lastrowid)


def in_transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(db)` in one write transaction, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _commit(db: sqlite3.Connection, batch: list[Statements]) -> list[list[Any] | Exception]:
    """All writes in one transaction; alone, if one of them fails."""

    def run_all(db: sqlite3.Connection) -> list[list[Any] | Exception]:
        return [[run_one(db, sql, args) for sql, args in writes] for writes in batch]

    try:
        return in_transaction(db, run_all)
    except BAD_WRITE:
        if len(batch) == 1:
            raise
    # Rare: retry one by one, so one bad write fails only its own request.
    return [_commit_alone(db, statements) for statements in batch]


def _commit_alone(db: sqlite3.Connection, statements: Statements) -> list[Any] | Exception:
    try:
        return _commit(db, [statements])[0]
    except BAD_WRITE as exc:
        return exc


def commit_batch(db: sqlite3.Connection, batch: list[Statements]) -> list[list[Any] | Exception]:
    """Each write's results, or the exception that failed it; never raises."""
    try:
        return _commit(db, batch)
    except Exception as exc:  # the whole batch failed (database gone, disk full)
        return [exc] * len(batch)


# The writer process.


def frame(payload: Any) -> bytes:
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def take_frames(buffer: bytearray) -> list[Any]:
    """Remove every whole frame from the front of `buffer`; return their payloads."""
    payloads, start = [], 0
    while len(buffer) - start >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer, start)
        end = start + HEADER.size + size
        if len(buffer) < end:
            break
        # Safe: the pipe joins this process and its own parent or child, nothing else.
        payloads.append(pickle.loads(buffer[start + HEADER.size : end]))  # noqa: S301
        start = end
    del buffer[:start]
    return payloads


def _portable(result: list[Any] | Exception) -> Any:
    """A result the parent can unpickle without this module: tuples for Changed."""
    if isinstance(result, BAD_WRITE):
        return result
    if isinstance(result, Exception):
        return sqlite3.OperationalError(f"{type(result).__name__}: {result}")
    return [(r.rows, r.last_id) if isinstance(r, Changed) else r for r in result]


def _as_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def _send(payload: Any) -> None:
    view = memoryview(frame(payload))
    while view:
        view = view[os.write(1, view) :]


def serve(path: str, pragmas: Sequence[str]) -> None:
    """Commit each batch that arrives on stdin; answer it on stdout; stop at end of input.

    Whatever is in the pipe when a commit ends makes the next batch, as a
    thread would take everything waiting in its queue. Interrupts are ignored:
    the parent ends this process by closing its input, after its last write.
    It never runs on a connection that cannot write (see connect_writable): it
    answers the error and exits, and the parent's next write tries again.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        db = connect_writable(path, pragmas)
    except sqlite3.Error as exc:
        _send(exc)
        return
    db.row_factory = _as_dict  # rows cross the pipe as plain dicts
    _send(None)  # ready
    buffer = bytearray()
    while chunk := os.read(0, 1 << 20):
        buffer += chunk
        batch = take_frames(buffer)
        if batch:
            _send([_portable(result) for result in commit_batch(db, batch)])
    db.close()


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]))
