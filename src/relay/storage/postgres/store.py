"""The production store: PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from relay.jsonutil import dumps
from relay.storage.base import StoreUnavailable
from relay.storage.postgres.group_commit import GroupCommit
from relay.storage.postgres.search import tsquery
from relay.storage.records import ConversationRecord, KeptAnswer, MessageRecord, SearchQuery
from relay.storage.sql import (
    PREFIXED_MESSAGE_COLUMNS,
    Row,
    SqlStore,
    load_migrations,
    with_seq,
)

# What a database that is down, restarting or unreachable looks like to asyncpg.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InternalClientError,
)
# A server that answers but cannot take writes (a read-only standby after a failover,
# a full disk, out of memory or connections): down too, though the connection stands.
REFUSED_ERRORS = (
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
PLACEHOLDER = re.compile(r"\?")
# Every new conversation and message of a batch of chats, in one statement: one
# round trip and one commit, and one prepared statement whatever the batch size
# (arrays, not a VALUES list per size). ORDER BY n keeps each chat's messages in
# their order, so a reply's seq is always after its question's.
INSERT_BATCH = """
WITH conversation AS (
    INSERT INTO conversations (id, client_id, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
), answer AS (
    UPDATE idempotency_keys AS k SET response = a.response::jsonb, lease_until = NULL
    FROM unnest($11::text[], $12::text[], $13::text[], $14::text[])
        AS a (client_id, key, owner, response)
    WHERE k.client_id = a.client_id AND k.key = a.key AND k.owner = a.owner
)
INSERT INTO messages (id, conversation_id, client_id, role, content, status, created_at)
SELECT id, conversation_id, client_id, role, content, status, created_at
FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::timestamptz[]) WITH ORDINALITY
    AS m (id, conversation_id, client_id, role, content, status, created_at, n)
ORDER BY n
RETURNING id, seq
"""


@dataclass(frozen=True, slots=True)
class _NewMessages:
    """One add_messages call: its messages, the conversation they start and the answer
    kept with an Idempotency-Key, if any."""

    messages: Sequence[MessageRecord]
    conversation: ConversationRecord | None
    answer: KeptAnswer | None = None


def _batch_args(batch: Sequence[_NewMessages]) -> list[list[Any]]:
    """INSERT_BATCH's 14 arrays: three columns of conversations, seven of messages,
    four of the answers kept."""
    conversations = [w.conversation for w in batch if w.conversation is not None]
    messages = [m for w in batch for m in w.messages]
    answers = [w.answer for w in batch if w.answer is not None]
    return [
        [c.id for c in conversations],
        [c.client_id for c in conversations],
        [c.created_at for c in conversations],
        [m.id for m in messages],
        [m.conversation_id for m in messages],
        [m.client_id for m in messages],
        [m.role for m in messages],
        [m.content for m in messages],
        [m.status for m in messages],
        [m.created_at for m in messages],
        [a.client_id for a in answers],
        [a.key for a in answers],
        [a.owner for a in answers],
        [dumps(a.response).decode() for a in answers],
    ]


# Any constant works; it only has to be the same for every Relay instance.
MIGRATION_LOCK_ID = 0x52454C4159


def to_dollar_params(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda v: dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection returns to the pool.

    Relay sets no session state on pooled connections (no SET, no LISTEN, only
    transaction-scoped locks), and asyncpg's default reset is one more query
    for every statement (6 % of a chat's time on PostgreSQL, by py-spy).
    """


class PostgresStore(SqlStore):
    dialect = "postgres"
    search_sql = (
        f"SELECT {PREFIXED_MESSAGE_COLUMNS}, -ts_rank(m.search, q) AS rank,"
        " ts_headline('simple', m.content, q,"
        " 'StartSel=<mark>, StopSel=</mark>, MaxFragments=1, MaxWords=16') AS snippet"
        " FROM messages AS m, to_tsquery('simple', ?) AS q"
        " WHERE m.search @@ q AND {where} ORDER BY rank, m.seq DESC LIMIT ? OFFSET ?"
    )

    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        self.database_url = database_url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        # asyncpg gives a returned connection to whoever asks next, so a request
        # arriving as it comes back overtakes the one woken for it, which goes to
        # the back of the line (history at 64 connections: p99 131 ms, p50 34).
        # A semaphore serves waiters in the order they came.
        self._turns = asyncio.Semaphore(pool_size)
        self._sql_cache: dict[str, str] = {}
        self._writes: GroupCommit[_NewMessages, list[MessageRecord]] = GroupCommit(
            self._insert_batch
        )

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.database_url,
                min_size=1,
                max_size=self.pool_size,
                init=_init_connection,
                reset=_keep_session,
                command_timeout=10,
            )
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self._writes.drain()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self._pool

    def _sql(self, sql: str) -> str:
        converted = self._sql_cache.get(sql)
        if converted is None:
            converted = self._sql_cache[sql] = to_dollar_params(sql)
        return converted

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self._connection() as conn, conn.transaction():
            # One instance migrates; the others wait here, then find nothing to do.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, script in load_migrations(self.dialect):
                if version in done:
                    continue
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
        return applied

    async def _fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        async with self._connection() as conn:
            rows: Sequence[Row] = await conn.fetch(self._sql(sql), *args)
            return rows

    async def _execute(self, sql: str, *args: Any) -> int:
        async with self._connection() as conn:
            status: str = await conn.execute(self._sql(sql), *args)
        # asyncpg answers a status tag such as "UPDATE 3" or "INSERT 0 1".
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; one that broke is thrown away, never handed out again."""
        try:
            async with self._turns, self.pool.acquire() as conn:
                try:
                    yield conn
                except CONNECTION_ERRORS:
                    # After a server restart a connection can be left mid-operation:
                    # terminate it so the pool opens a fresh one.
                    conn.terminate()
                    raise
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable("PostgreSQL is unreachable") from exc
        except REFUSED_ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL refused: {type(exc).__name__}") from exc

    def _param(self, value: Any) -> Any:
        return value

    async def add_messages(
        self,
        messages: Sequence[MessageRecord],
        *,
        new_conversation: ConversationRecord | None = None,
        answer: KeptAnswer | None = None,
    ) -> list[MessageRecord]:
        # Grouped with the writes of concurrent chats: see postgres/group_commit.py.
        return await self._writes.submit(_NewMessages(messages, new_conversation, answer))

    async def _insert_batch(
        self, batch: list[_NewMessages]
    ) -> list[list[MessageRecord] | Exception]:
        try:
            rows = await self._fetch(INSERT_BATCH, *_batch_args(batch))
        except asyncpg.PostgresError as exc:  # a constraint: find whose, one by one
            if len(batch) == 1:
                return [exc]
            return [(await self._insert_batch([write]))[0] for write in batch]
        seqs = {row["id"]: row["seq"] for row in rows}
        return [[with_seq(m, seqs[m.id]) for m in write.messages] for write in batch]

    def _search_expression(self, query: SearchQuery) -> str | None:
        return tsquery(query)
