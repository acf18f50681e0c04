"""SQLite full-text search, indexed in batches behind the writes.

Indexed in the transaction that stored it, every chat's commit also wrote an
FTS5 segment of its own: about 50 of the 130 us of CPU SQLite spent per chat
(three writes per transaction, measured on this project's bench machine).
Instead, messages past a watermark (`search_progress.seq`) are indexed
together: shortly after a write, and always before a search runs, so a search
sees every message committed before it. The watermark lives in the database
and moves in the transaction that indexes, so any process (another worker,
the next start after a crash) indexes what another one left behind. Edits and
deletes of messages already indexed keep the index in step through triggers
(migration 002).
"""

from __future__ import annotations

import asyncio
import logging

from relay.storage.records import SearchQuery, Term, can_match
from relay.storage.sqlite.reader import SQLiteThread
from relay.storage.sqlite.writer import WriterProcess

logger = logging.getLogger("relay.storage")

# A quarter second of chats share one segment; a search never waits for it.
INDEX_DELAY_SECONDS = 0.25
BEHIND = (
    "SELECT EXISTS (SELECT 1 FROM messages WHERE seq > (SELECT seq FROM search_progress)) AS behind"
)
INDEX_PENDING = (
    (
        "INSERT INTO messages_fts (rowid, content)"
        " SELECT seq, content FROM messages WHERE seq > (SELECT seq FROM search_progress)",
        (),
    ),
    (
        "UPDATE search_progress SET seq = (SELECT MAX(seq) FROM messages)"
        " WHERE (SELECT MAX(seq) FROM messages) > seq",
        (),
    ),
)


class SearchIndex:
    def __init__(
        self,
        thread: SQLiteThread,
        writer: WriterProcess,
        delay: float = INDEX_DELAY_SECONDS,
    ) -> None:
        self._thread = thread
        self._writer = writer
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._pass: asyncio.Task[None] | None = None

    def written(self) -> None:
        """Messages were stored: index them soon, with whatever else comes meanwhile."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._delay, self._start_pass)

    async def catch_up(self) -> None:
        """Index every message committed so far (by any process) that is not yet indexed."""
        rows = await self._thread.read(BEHIND, ())
        if rows[0]["behind"]:
            # Through the group commit: it shares a transaction with the writes queued.
            await self._writer.write_all(INDEX_PENDING)

    async def close(self) -> None:
        """Cancel the pass to come, finish the one running, index what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pass is not None:
            await asyncio.gather(self._pass, return_exceptions=True)
        await self._background_pass()  # not needed for correctness: saves the next search

    def _start_pass(self) -> None:
        self._timer = None
        self._pass = asyncio.create_task(self._background_pass())

    async def _background_pass(self) -> None:
        try:
            await self.catch_up()
        except Exception as exc:  # the next pass or search tries again
            logger.warning("search indexing failed; will retry", extra={"error": str(exc)})


def _fts5_term(term: Term) -> str:
    return '"' + " ".join(term.words).replace('"', '""') + '"'


def fts5_query(query: SearchQuery) -> str | None:
    """An FTS5 MATCH expression, or None when nothing could match."""
    if not can_match(query):
        return None
    included = [g for g in query if not g[0].negated]
    excluded = [g[0] for g in query if g[0].negated]
    expression = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in group) + ")" for group in included
    )
    for term in excluded:
        expression += f" NOT {_fts5_term(term)}"
    return expression
