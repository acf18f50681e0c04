"""Storage: one Store protocol, an SQLite and a PostgreSQL implementation."""

from __future__ import annotations

from relay.storage.base import Store, StoreUnavailable
from relay.storage.postgres.store import PostgresStore
from relay.storage.sqlite.store import SQLiteStore


def make_store(database_url: str, *, pool_size: int = 10) -> Store:
    if database_url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(database_url, pool_size=pool_size)
    return SQLiteStore(database_url)


__all__ = ["PostgresStore", "SQLiteStore", "Store", "StoreUnavailable", "make_store"]
