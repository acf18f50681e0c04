"""Queries shared by both SQL stores; each dialect supplies the driver calls.

SQL here uses `?` placeholders; the PostgreSQL store rewrites them to `$n`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from relay.storage.base import CLIENT_UPDATABLE
from relay.storage.records import (
    ClientRecord,
    ConversationRecord,
    ConversationSummary,
    IdempotencyRecord,
    MessageRecord,
    SearchQuery,
    utc_now,
)

Row = Mapping[str, Any]

CLIENT_COLUMNS = (
    "id, name, scopes, active, rate_limits, token_ttl, metadata, key_prefix, key_hash,"
    " key_generation, created_at, updated_at, last_used_at"
)
MESSAGE_COLUMNS = "seq, id, conversation_id, client_id, role, content, status, created_at"
PREFIXED_MESSAGE_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))


def with_seq(message: MessageRecord, seq: int) -> MessageRecord:
    # Spelled out: dataclasses.replace walks the fields on every call (a chat makes two).
    m = message
    return MessageRecord(
        m.id, m.conversation_id, m.client_id, m.role, m.content, m.status, m.created_at, int(seq)
    )


def load_migrations(dialect: str) -> list[tuple[str, str]]:
    """(version, script) pairs in order, read from the package."""
    folder = resources.files("relay.storage") / "migrations" / dialect
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def client_from_row(row: Row) -> ClientRecord:
    last_used = row["last_used_at"]
    return ClientRecord(
        id=row["id"],
        name=row["name"],
        scopes=tuple(_json(row["scopes"])),
        active=bool(row["active"]),
        rate_limits=dict(_json(row["rate_limits"])),
        token_ttl=row["token_ttl"],
        metadata=dict(_json(row["metadata"])),
        key_prefix=row["key_prefix"],
        key_hash=row["key_hash"],
        key_generation=row["key_generation"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        last_used_at=_time(last_used) if last_used is not None else None,
    )


def message_from_row(row: Row) -> MessageRecord:
    keys = row.keys()
    return MessageRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        client_id=row["client_id"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        created_at=_time(row["created_at"]),
        seq=row["seq"],
        snippet=row["snippet"] if "snippet" in keys else None,
    )


class SqlStore(abc.ABC):
    """Everything but the driver, the migrations lock and full-text search."""

    dialect: str
    # Full-text search: the expression first, then {where} on messages AS m, limit, offset.
    search_sql: str

    @abc.abstractmethod
    def _search_expression(self, query: SearchQuery) -> str | None:
        """The engine's query for user text, or None when nothing could match."""

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> Sequence[Row]: ...

    async def _ready_to_search(self) -> None:
        """Bring the full-text index up to every committed message.

        PostgreSQL's index is written with each row, so there is nothing to do;
        SQLite indexes behind the writes (see sqlite/search_index.py).
        """
        return None

    @abc.abstractmethod
    async def _execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    def _param(self, value: Any) -> Any:
        """Adapt a Python value (datetime, dict, list) to what the driver takes."""

    async def _fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    def _params(self, values: Sequence[Any]) -> list[Any]:
        return [self._param(v) for v in values]

    async def ping(self) -> None:
        """Reads answer and a write commits (one row, overwritten: /health's heartbeat)."""
        await self._fetch("SELECT 1 AS one")
        await self._execute(
            "INSERT INTO heartbeat (id, beat_at) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
            self._param(utc_now()),
        )

    async def get_or_create_setting(self, name: str, value: str) -> str:
        # Insert-if-absent then read: two instances racing both read the winner's value.
        await self._execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            name,
            value,
        )
        row = await self._fetchrow("SELECT value FROM settings WHERE name = ?", name)
        assert row is not None
        return str(row["value"])

    async def create_client(self, client: ClientRecord) -> None:
        await self._execute(
            f"INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ({', '.join('?' * 13)})",
            *self._params(
                [
                    client.id,
                    client.name,
                    list(client.scopes),
                    client.active,
                    client.rate_limits,
                    client.token_ttl,
                    client.metadata,
                    client.key_prefix,
                    client.key_hash,
                    client.key_generation,
                    client.created_at,
                    client.updated_at,
                    client.last_used_at,
                ]
            ),
        )

    async def get_client(self, client_id: str) -> ClientRecord | None:
        row = await self._fetchrow(f"SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?", client_id)
        return client_from_row(row) if row else None

    async def get_client_by_prefix(self, key_prefix: str) -> ClientRecord | None:
        row = await self._fetchrow(
            f"SELECT {CLIENT_COLUMNS} FROM clients WHERE key_prefix = ?", key_prefix
        )
        return client_from_row(row) if row else None

    async def list_clients(
        self, *, active: bool | None, limit: int, before: str | None
    ) -> list[ClientRecord]:
        conditions, args = [], []
        if active is not None:
            conditions.append("active = ?")
            args.append(self._param(active))
        if before is not None:
            conditions.append("id < ?")
            args.append(before)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._fetch(
            f"SELECT {CLIENT_COLUMNS} FROM clients {where} ORDER BY id DESC LIMIT ?", *args, limit
        )
        return [client_from_row(r) for r in rows]

    async def update_client(
        self, client_id: str, changes: Mapping[str, Any], *, bump_generation: bool
    ) -> ClientRecord | None:
        unknown = set(changes) - CLIENT_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = [f"{column} = ?" for column in changes]
        args = self._params([list(v) if isinstance(v, tuple) else v for v in changes.values()])
        assignments.append("updated_at = ?")
        args.append(self._param(utc_now()))
        if bump_generation:
            assignments.append("key_generation = key_generation + 1")
        # The row comes back from the statement that changed it: a read after the
        # commit could fail (and answer 5xx) with the change made all the same.
        row = await self._fetchrow(
            f"UPDATE clients SET {', '.join(assignments)} WHERE id = ? RETURNING {CLIENT_COLUMNS}",
            *args,
            client_id,
        )
        return client_from_row(row) if row else None

    async def delete_client(self, client_id: str) -> bool:
        return await self._execute("DELETE FROM clients WHERE id = ?", client_id) > 0

    async def touch_client(self, client_id: str, when: datetime) -> None:
        await self._execute(
            "UPDATE clients SET last_used_at = ? WHERE id = ?", self._param(when), client_id
        )

    async def get_conversation(
        self, client_id: str, conversation_id: str
    ) -> ConversationRecord | None:
        row = await self._fetchrow(
            "SELECT id, client_id, created_at FROM conversations WHERE id = ? AND client_id = ?",
            conversation_id,
            client_id,
        )
        if row is None:
            return None
        return ConversationRecord(row["id"], row["client_id"], _time(row["created_at"]))

    async def finish_message(self, message_id: str, *, content: str | None, status: str) -> None:
        if content is None:
            await self._execute("UPDATE messages SET status = ? WHERE id = ?", status, message_id)
        else:
            await self._execute(
                "UPDATE messages SET status = ?, content = ? WHERE id = ?",
                status,
                content,
                message_id,
            )

    async def recent_messages(self, conversation_id: str, limit: int) -> list[MessageRecord]:
        rows = await self._fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
            " ORDER BY seq DESC LIMIT ?",
            conversation_id,
            limit,
        )
        return [message_from_row(r) for r in reversed(rows)]

    async def list_messages(
        self, client_id: str, *, conversation_id: str | None, limit: int, before: int | None
    ) -> list[MessageRecord]:
        conditions, args = ["client_id = ?"], list[Any]([client_id])
        if conversation_id is not None:
            conditions.append("conversation_id = ?")
            args.append(conversation_id)
        if before is not None:
            conditions.append("seq < ?")
            args.append(before)
        rows = await self._fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(conditions)}"
            " ORDER BY seq DESC LIMIT ?",
            *args,
            limit,
        )
        return [message_from_row(r) for r in rows]

    async def list_conversations(
        self, client_id: str, *, limit: int, before: int | None, preview_chars: int
    ) -> list[ConversationSummary]:
        having, args = "", list[Any]([preview_chars, client_id])
        if before is not None:
            having = "HAVING MAX(m.seq) < ?"
            args.append(before)
        rows = await self._fetch(
            "SELECT c.id, c.created_at, MAX(m.created_at) AS updated_at,"
            " COUNT(*) AS message_count, MAX(m.seq) AS last_seq,"
            " (SELECT substr(f.content, 1, ?) FROM messages AS f"
            "  WHERE f.conversation_id = c.id AND f.role = 'user' ORDER BY f.seq LIMIT 1)"
            " AS preview"
            " FROM conversations AS c JOIN messages AS m ON m.conversation_id = c.id"
            f" WHERE c.client_id = ? GROUP BY c.id, c.created_at {having}"
            " ORDER BY last_seq DESC LIMIT ?",
            *args,
            limit,
        )
        return [
            ConversationSummary(
                id=row["id"],
                created_at=_time(row["created_at"]),
                updated_at=_time(row["updated_at"]),
                message_count=int(row["message_count"]),
                preview=row["preview"] or "",
                last_seq=int(row["last_seq"]),
            )
            for row in rows
        ]

    async def search_messages(
        self,
        client_id: str,
        query: SearchQuery,
        *,
        conversation_id: str | None,
        limit: int,
        offset: int,
    ) -> list[MessageRecord]:
        expression = self._search_expression(query)
        if expression is None:
            return []
        await self._ready_to_search()
        conditions, args = ["m.client_id = ?"], [client_id]
        if conversation_id is not None:
            conditions.append("m.conversation_id = ?")
            args.append(conversation_id)
        sql = self.search_sql.format(where=" AND ".join(conditions))
        rows = await self._fetch(sql, expression, *args, limit, offset)
        return [message_from_row(r) for r in rows]

    async def get_idempotency(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = await self._fetchrow(
            "SELECT client_id, key, request_hash, response, created_at, owner, lease_until"
            " FROM idempotency_keys WHERE client_id = ? AND key = ?",
            client_id,
            key,
        )
        if row is None:
            return None
        response, lease_until = row["response"], row["lease_until"]
        return IdempotencyRecord(
            client_id=row["client_id"],
            key=row["key"],
            request_hash=row["request_hash"],
            response=_json(response) if response is not None else None,
            created_at=_time(row["created_at"]),
            owner=row["owner"],
            lease_until=_time(lease_until) if lease_until is not None else None,
        )

    async def claim_idempotency(
        self, record: IdempotencyRecord, *, expired_before: datetime
    ) -> bool:
        changed = await self._execute(
            "INSERT INTO idempotency_keys"
            " (client_id, key, request_hash, response, created_at, owner, lease_until)"
            " VALUES (?, ?, ?, NULL, ?, ?, ?)"
            " ON CONFLICT (client_id, key) DO UPDATE SET request_hash = excluded.request_hash,"
            " response = NULL, created_at = excluded.created_at, owner = excluded.owner,"
            " lease_until = excluded.lease_until"
            " WHERE idempotency_keys.created_at < ? OR (idempotency_keys.response IS NULL"
            " AND (idempotency_keys.lease_until IS NULL"
            " OR idempotency_keys.lease_until < excluded.created_at))",
            record.client_id,
            record.key,
            record.request_hash,
            self._param(record.created_at),
            record.owner,
            self._param(record.lease_until),
            self._param(expired_before),
        )
        return changed > 0

    async def renew_idempotency(
        self, client_id: str, key: str, owner: str, lease_until: datetime
    ) -> bool:
        changed = await self._execute(
            "UPDATE idempotency_keys SET lease_until = ?"
            " WHERE client_id = ? AND key = ? AND owner = ? AND response IS NULL",
            self._param(lease_until),
            client_id,
            key,
            owner,
        )
        return changed > 0

    async def release_idempotency(self, client_id: str, key: str, owner: str) -> None:
        await self._execute(
            "DELETE FROM idempotency_keys"
            " WHERE client_id = ? AND key = ? AND owner = ? AND response IS NULL",
            client_id,
            key,
            owner,
        )

    async def purge_idempotency(self, older_than: datetime) -> int:
        return await self._execute(
            "DELETE FROM idempotency_keys WHERE created_at < ?", self._param(older_than)
        )
