"""Shared fixtures: a fresh database per test on both stores, and an app to call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from relay.config import Settings
from relay.container import Relay
from relay.storage import PostgresStore, Store, make_store
from relay.web.app import create_app
from tests.support import services

STORES = ["sqlite", "postgres"]
MakeSettings = Callable[..., Settings]


async def _migrated_database(name: str) -> None:
    store = PostgresStore(await services.create_database(name), pool_size=1)
    await store.open()
    await store.migrate()
    await store.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each test's database is copied from (fast)."""
    services.require_postgres()
    name = services.unique_name("relay_tpl")
    services.run_sync(_migrated_database(name))
    yield name
    services.run_sync(services.drop_database(name))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    template: str = request.getfixturevalue("postgres_template")
    with services.temporary_database("relay_test", template=template) as url:
        yield url


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for this test, once per store."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'relay.db'}"


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "jwt_secret": None,
            "relay_backend": "echo",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = make_store(database_url, pool_size=4)
    await opened.open()
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def relay(self) -> Relay:
        relay: Relay = self.app.state.relay
        return relay

    async def new_client(self, *scopes: str, **fields: Any) -> tuple[str, str]:
        """Create a client through the service; return (client id, API key)."""
        created = await self.relay.clients.create(
            fields.pop("name", "test"), scopes=list(scopes) or None, **fields
        )
        return created.client.id, created.api_key

    async def token_for(self, api_key: str) -> str:
        response = await self.client.post("/auth/token", json={"api_key": api_key})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def bearer(self, *scopes: str, **fields: Any) -> dict[str, str]:
        _, api_key = await self.new_client(*scopes, **fields)
        return {"Authorization": f"Bearer {await self.token_for(api_key)}"}


async def chat(running: Running, headers: dict[str, str], **body: Any) -> httpx.Response:
    """POST /v1/chat with `body` as JSON; the answer is the caller's to check."""
    return await running.client.post("/v1/chat", json=body, headers=headers)


async def history(running: Running, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """The messages of GET /v1/history with `params`; the request itself must succeed."""
    response = await running.client.get("/v1/history", params=params, headers=headers)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
            yield Running(app, client)


StartRelay = Callable[[Settings], AbstractAsyncContextManager["Running"]]


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    """None: the in-memory limiter; else the real Redis, shared by every instance."""
    if request.param == "memory":
        return None
    services.require_redis()
    return services.REDIS_URL


@pytest.fixture
def start_relay() -> Callable[[Settings], AbstractAsyncContextManager[Running]]:
    return running


@pytest.fixture
async def relay(make_settings: Callable[..., Settings]) -> AsyncIterator[Running]:
    async with running(make_settings()) as started:
        yield started


@pytest.fixture
async def admin(relay: Running) -> dict[str, str]:
    return await relay.bearer("admin")
