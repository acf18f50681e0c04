"""Records for tests that talk to a Store directly."""

from __future__ import annotations

from relay.storage.records import ClientRecord, new_id, utc_now


def client_record(name: str = "app", **fields: object) -> ClientRecord:
    now = utc_now()
    values: dict[str, object] = {
        "id": new_id("cl"),
        "name": name,
        "scopes": ("chat", "history"),
        "active": True,
        "rate_limits": {"chat": "5/minute"},
        "token_ttl": None,
        "metadata": {"team": "mobile", "nested": {"n": [1, 2]}},
        "key_prefix": f"rly_{new_id('p')[-10:]}",
        "key_hash": "$2b$04$" + "h" * 53,
        "key_generation": 1,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return ClientRecord(**values)  # type: ignore[arg-type]
