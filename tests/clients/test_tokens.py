"""The verified-token cache never outlives a token, nor accepts a look-alike."""

from __future__ import annotations

import time

import pytest

from relay.clients.tokens import InvalidToken, TokenCodec
from relay.storage.records import ClientRecord, utc_now


def _client(ttl: int) -> ClientRecord:
    now = utc_now()
    return ClientRecord("cl_1", "c", ("chat",), True, {}, ttl, {}, "rly_x", "hash", 1, now, now)


def test_a_cached_token_is_refused_once_expired() -> None:
    codec = TokenCodec("s" * 48, issuer="relay", audience="relay-api", default_ttl=3600)
    token = codec.issue(_client(ttl=1)).access_token
    assert codec.verify(token).client_id == "cl_1"  # now cached
    time.sleep(2.2)  # past exp plus the 1 s leeway
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_a_changed_token_is_checked_again_not_served_from_cache() -> None:
    codec = TokenCodec("s" * 48, issuer="relay", audience="relay-api", default_ttl=3600)
    token = codec.issue(_client(ttl=60)).access_token
    codec.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"
    with pytest.raises(InvalidToken):
        codec.verify(forged)
