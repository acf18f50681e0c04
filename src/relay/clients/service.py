"""API clients: creation, changes, revocation, the key-for-token exchange, and
turning a token back into its client on every request."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from relay.clients import keys
from relay.clients.cache import ClientCache
from relay.clients.change_feed import ChangeFeed, NoFeed
from relay.clients.tokens import InvalidToken, IssuedToken, TokenCodec
from relay.errors import NotFound, RelayError
from relay.storage.base import Store
from relay.storage.records import ClientRecord, new_id, rfc3339_or_none, utc_now

logger = logging.getLogger("relay.clients")
Scope = Literal["chat", "history", "tools", "admin"]
ALL_SCOPES: tuple[Scope, ...] = ("chat", "history", "tools", "admin")
DEFAULT_SCOPES: tuple[Scope, ...] = ("chat", "history", "tools")


class InvalidApiKey(RelayError):
    """Unknown, wrong or disabled: every failed exchange looks and costs the same."""

    def __init__(self) -> None:
        super().__init__("The API key is not valid.")


class InsufficientScope(RelayError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"This token lacks the '{scope}' scope.")
        self.scope = scope


@dataclass(frozen=True, slots=True)
class Principal:
    """The client a request acts for, with the scopes its token grants today."""

    client: ClientRecord
    scopes: frozenset[str]
    jti: str

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise InsufficientScope(scope)


@dataclass(frozen=True, slots=True)
class NewKey:
    client: ClientRecord
    api_key: str


class ClientService:
    def __init__(
        self,
        store: Store,
        cache: ClientCache,
        tokens: TokenCodec,
        *,
        bcrypt_rounds: int,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.tokens = tokens
        self.bcrypt_rounds = bcrypt_rounds
        self.feed = feed or NoFeed()
        self.turns = keys.Turns()

    async def create(
        self,
        name: str,
        *,
        scopes: Sequence[str] | None = None,
        rate_limits: Mapping[str, str] | None = None,
        token_ttl: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NewKey:
        api_key, prefix = keys.generate_key()
        now = utc_now()
        client = ClientRecord(
            id=new_id("cl"),
            name=name,
            scopes=_ordered_scopes(scopes if scopes is not None else DEFAULT_SCOPES),
            active=True,
            rate_limits=dict(rate_limits or {}),
            token_ttl=token_ttl,
            metadata=dict(metadata or {}),
            key_prefix=prefix,
            key_hash=await keys.hash_key(api_key, self.bcrypt_rounds),
            key_generation=1,
            created_at=now,
            updated_at=now,
        )
        await self.store.create_client(client)
        self.cache.put(client)
        return NewKey(client, api_key)

    async def get(self, client_id: str) -> ClientRecord:
        client = await self.store.get_client(client_id)
        if client is None:
            raise NotFound("client")
        return client

    async def list(
        self, *, active: bool | None, limit: int, before: str | None
    ) -> list[ClientRecord]:
        return await self.store.list_clients(active=active, limit=limit, before=before)

    async def update(self, client_id: str, changes: Mapping[str, Any]) -> ClientRecord:
        changes = dict(changes)
        if "scopes" in changes:
            changes["scopes"] = _ordered_scopes(changes["scopes"])
        # Disabling bumps the key generation, so tokens issued before stay dead
        # even if the client is enabled again.
        disabling = changes.get("active") is False
        client = await self.store.update_client(client_id, changes, bump_generation=disabling)
        return await self._updated(client_id, client)

    async def regenerate_key(self, client_id: str) -> NewKey:
        api_key, prefix = keys.generate_key()
        key_hash = await keys.hash_key(api_key, self.bcrypt_rounds)
        client = await self.store.update_client(
            client_id, {"key_prefix": prefix, "key_hash": key_hash}, bump_generation=True
        )
        return NewKey(await self._updated(client_id, client), api_key)

    async def delete(self, client_id: str) -> None:
        if not await self.store.delete_client(client_id):
            raise NotFound("client")
        self.cache.mark_deleted(client_id)
        await self._tell_others(client_id)

    async def exchange(self, api_key: str, *, source: str | None = None) -> IssuedToken:
        """Trade an API key for a token; every failure looks and costs the same.

        With a `source` (the caller's address), the key check waits for that
        source's turn (`keys.Turns`): one source never has more than
        `keys.CHECKS_PER_SOURCE` checks in the hashing threads.
        """
        prefix = keys.prefix_of(api_key)
        client = await self.store.get_client_by_prefix(prefix) if prefix else None
        key_hash = client.key_hash if client else None
        turn = self.turns.turn(source) if source is not None else contextlib.nullcontext()
        async with turn:
            valid = await keys.verify_key(api_key, key_hash, self.bcrypt_rounds)
        if not valid or client is None or not client.active:
            raise InvalidApiKey()
        now = utc_now()
        await self.store.touch_client(client.id, now)
        self.cache.put(client)
        return self.tokens.issue(client)

    async def authenticate(self, token: str) -> Principal:
        """The client behind a bearer token, from the in-process cache (no database
        on the hot path once cached). The key generation in the token must match
        the client's: that is what makes regenerate and disable revoke at once."""
        claims = self.tokens.verify(token)
        client = await self.cache.get(claims.client_id)
        if client is None or not client.active or client.key_generation != claims.generation:
            raise InvalidToken()
        # A scope removed from the client since the token was issued no longer counts.
        return Principal(client, claims.scopes & frozenset(client.scopes), claims.jti)

    async def _updated(self, client_id: str, client: ClientRecord | None) -> ClientRecord:
        if client is None:
            self.cache.mark_deleted(client_id)
            raise NotFound("client")
        self.cache.put(client)
        await self._tell_others(client_id)
        return client

    async def _tell_others(self, client_id: str) -> None:
        """Other instances drop their cached copy (their cache TTL bounds a miss)."""
        try:
            await self.feed.publish(client_id)
        except Exception as exc:  # the change itself is stored; never fail it for this
            error = type(exc).__name__
            logger.warning("could not announce a client change", extra={"error": error})


def client_fields(client: ClientRecord) -> dict[str, Any]:
    """A client as the admin API and the CLI show it: everything but its key hash."""
    return {
        "id": client.id,
        "name": client.name,
        "scopes": list(client.scopes),
        "active": client.active,
        "rate_limits": client.rate_limits,
        "token_ttl": client.token_ttl,
        "metadata": client.metadata,
        "key_prefix": client.key_prefix,
        "created_at": rfc3339_or_none(client.created_at),
        "updated_at": rfc3339_or_none(client.updated_at),
        "last_used_at": rfc3339_or_none(client.last_used_at),
    }


def _ordered_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    unique = set(scopes)
    return tuple(s for s in ALL_SCOPES if s in unique)
