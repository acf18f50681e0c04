"""A client update that fails changes nothing (issue 16, item 2: no 5xx after a commit).

The update used to commit, then read the client back in a second statement: if
that read failed (the database went away between the two, a connection broke),
the admin was answered 5xx with the change made all the same. Here the read is
refused by PostgreSQL itself: the store connects as a role that may update
clients but read back only their id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from relay.storage import PostgresStore
from tests.support import services
from tests.support.records import client_record


@pytest.fixture
async def limited_role(postgres_url: str) -> AsyncIterator[str]:
    """A role of this test's own that may UPDATE clients and SELECT only their id."""
    role = services.unique_name("relay_limited")
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        await admin.execute(f'GRANT UPDATE ON clients TO "{role}"')
        await admin.execute(f'GRANT SELECT (id) ON clients TO "{role}"')
        yield role
    finally:
        await admin.execute(f'REVOKE ALL ON clients FROM "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_an_update_whose_answer_cannot_be_read_changes_nothing(
    postgres_url: str, limited_role: str
) -> None:
    record = client_record()
    owner = PostgresStore(postgres_url, pool_size=1)
    limited = PostgresStore(postgres_url.replace("//postgres@", f"//{limited_role}@"), pool_size=1)
    await owner.open()
    await limited.open()
    try:
        await owner.create_client(record)
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await limited.update_client(record.id, {"name": "changed"}, bump_generation=False)
        assert await owner.get_client(record.id) == record  # not renamed
    finally:
        await limited.close()
        await owner.close()
