"""Forged, tampered, expired and revoked tokens: each refused with 401 invalid_token.

Tokens are built by hand (base64 and HMAC) so that nothing a JWT library
refuses to produce, such as `alg: none`, is out of reach.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.config import Settings
from tests.conftest import Running, StartRelay

# Any RSA public key: what an attacker would feed an HS256 verifier in the
# RS256/HS256 confusion attack.
PUBLIC_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAn6qVIIMJst5/Djkoya8c
TMR3kV3ixlq3yME+Yj3cIz0xZx5krb2+4Z5AzP0vbOX1xs82hCtDCqwAeOYTNcBL
yXZZp2EQQivsSsofBA1BgEaTQdBEibMThpXY36LfAG+lFrztyROgXmJOeGEBdlEX
oSrogVNrHocECdWymZKVVGtutFdfMqA5wUhB6FJku/G607E4h6MmaYcC6RYxQD1E
guuSzm2fE6ORdRuwqQ6466C0xal3tXeu3MRaEXtCJ1M6pZL1+kAEas48NqW3OYzA
9ap1i6Z42Flst599nvWjNefTS/9f1ZeN1HU045vghvXrSqnsckdGMi7l5+/DGPtW
XwIDAQAB
-----END PUBLIC KEY-----
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Mapping[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def forge(
    claims: Mapping[str, Any],
    key: bytes,
    *,
    alg: str = "HS256",
    digest: Callable[[], Any] = hashlib.sha256,
    header: Mapping[str, Any] | None = None,
) -> str:
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    signing_input = f"{segment(head)}.{segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(claims: Mapping[str, Any], alg: str = "none") -> str:
    return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}."


def secret_of(relay: Running) -> bytes:
    return relay.relay.clients.tokens._secret.encode()


def good_claims(client_id: str, scope: str = "admin", generation: int = 1) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": client_id,
        "iat": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(8),
        "scope": scope,
        "iss": "relay",
        "aud": "relay-api",
        "gen": generation,
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(response: httpx.Response, why: str = "") -> None:
    assert response.status_code == 401, (why, response.text)
    assert response.headers["www-authenticate"] == "Bearer", why
    error = response.json()["error"]
    assert error["code"] == "invalid_token", why
    assert error["request_id"] == response.headers["x-request-id"]


def assert_insufficient_scope(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert f'scope="{scope}"' in response.headers["www-authenticate"]


@dataclass
class Target:
    relay: Running
    client_id: str

    async def call(self, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.relay.client.get("/admin/clients", headers=dict(headers or {}))


@pytest.fixture
async def target(tmp_path: Path, start_relay: StartRelay) -> AsyncIterator[Target]:
    """An admin client on SQLite: signature and claim checks do not depend on the store."""
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'relay.db'}", bcrypt_rounds=4
    )
    async with start_relay(settings) as relay:
        client_id, _ = await relay.new_client("admin")
        yield Target(relay, client_id)


async def test_forged_token_with_the_right_secret_is_accepted(target: Target) -> None:
    # The control for every test below: the forging itself is sound.
    token = forge(good_claims(target.client_id), secret_of(target.relay))
    assert (await target.call(auth(token))).status_code == 200


async def test_missing_or_malformed_authorization(target: Target) -> None:
    good = forge(good_claims(target.client_id), secret_of(target.relay))
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": good},
        {"Authorization": f"Basic {good}"},
        {"Authorization": f"Token {good}"},
        {"Authorization": f"JWT {good}"},
        {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()},
        {"X-Access-Token": good},
        {"Cookie": f"access_token={good}"},
    ):
        assert_invalid_token(await target.call(headers), str(headers))


async def test_an_api_key_sent_as_the_token_is_told_where_to_trade_it(target: Target) -> None:
    _, api_key = await target.relay.new_client("admin", name="app")
    generic = (await target.call(auth("not-a-token"))).json()["error"]["message"]
    for key in (api_key, "rly_0123456789_" + "x" * 43):  # a live key, and a made-up one
        response = await target.call(auth(key))
        assert_invalid_token(response)
        message = response.json()["error"]["message"]
        assert "POST /auth/token" in message and message != generic
        assert key not in response.text and key.split("_")[2] not in response.text
    # Something merely starting like a key is just a bad token.
    response = await target.call(auth("rly_short"))
    assert_invalid_token(response)
    assert response.json()["error"]["message"] == generic


async def test_unsigned_and_wrong_algorithm_tokens(target: Target) -> None:
    claims = good_claims(target.client_id)
    secret = secret_of(target.relay)
    valid_signature = forge(claims, secret).rsplit(".", 1)[1]
    attacks = {
        "alg none": unsigned(claims),
        "alg None": unsigned(claims, "None"),
        "alg NONE": unsigned(claims, "NONE"),
        "alg nOnE": unsigned(claims, "nOnE"),
        "alg none, real signature kept": unsigned(claims) + valid_signature,
        "no alg at all": f"{segment({'typ': 'JWT'})}.{segment(claims)}.{valid_signature}",
        "HS256, another secret": forge(claims, b"not-the-secret"),
        "HS256, empty secret": forge(claims, b""),
        "HS256 keyed with a public key PEM": forge(claims, PUBLIC_KEY_PEM),
        "RS256 header": (
            f"{segment({'alg': 'RS256', 'typ': 'JWT'})}.{segment(claims)}"
            f".{b64(secrets.token_bytes(256))}"
        ),
        "RS256 header, HMAC signature": forge(claims, secret, alg="RS256"),
        "ES256 header": forge(claims, secret, alg="ES256"),
        "HS512, right secret": forge(claims, secret, alg="HS512", digest=hashlib.sha512),
        "HS384, right secret": forge(claims, secret, alg="HS384", digest=hashlib.sha384),
        "HS256 header, HS512 signature": forge(claims, secret, digest=hashlib.sha512),
    }
    for name, token in attacks.items():
        assert_invalid_token(await target.call(auth(token)), name)


async def test_tampered_and_garbage_tokens(target: Target) -> None:
    claims = good_claims(target.client_id)
    token = forge(claims, secret_of(target.relay))
    head, _, signature = token.split(".")
    tampered_payload = segment({**claims, "scope": "admin chat history tools"})
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    attacks = {
        "payload edited, signature kept": f"{head}.{tampered_payload}.{signature}",
        "signature altered": f"{head}.{segment(claims)}.{flipped}",
        "signature dropped": f"{head}.{segment(claims)}.",
        "two segments": f"{head}.{segment(claims)}",
        "four segments": f"{token}.{signature}",
        "garbage": "garbage",
        "dots": "...",
        "random base64": f"{b64(secrets.token_bytes(30))}.{b64(secrets.token_bytes(30))}.xx",
        "not JSON header": f"{b64(b'not json')}.{segment(claims)}.{signature}",
        "JSON list payload": forge({}, secret_of(target.relay)).split(".")[0]
        + "."
        + b64(b"[1,2]")
        + "."
        + signature,
        "huge": "a" * 5000,
        "API key as token": "rly_0123456789_" + "A" * 43,
    }
    for name, token in attacks.items():
        assert_invalid_token(await target.call(auth(token)), name)
    non_ascii = await target.relay.client.get(
        "/admin/clients", headers={b"Authorization": "Bearer \xe9.\xe9.\xe9".encode("latin-1")}
    )
    assert_invalid_token(non_ascii, "non-ascii")


async def test_bad_claims_with_the_right_secret(target: Target) -> None:
    secret = secret_of(target.relay)
    now = int(time.time())
    base = good_claims(target.client_id)
    variants: dict[str, dict[str, Any]] = {
        "expired 1 s ago (the leeway is at most 1 s)": {"iat": now - 600, "exp": now - 1},
        "expired 2 s ago": {"iat": now - 600, "exp": now - 2},
        "expired an hour ago": {"iat": now - 7200, "exp": now - 3600},
        "iat far in the future": {"iat": now + 3600, "exp": now + 7200},
        "iat a minute in the future": {"iat": now + 60},
        "nbf in the future": {"nbf": now + 3600},
        "exp as a string": {"exp": str(now + 600)},
        "iat as a string": {"iat": str(now)},
        "wrong aud": {"aud": "someone-else"},
        "aud list without ours": {"aud": ["a", "b"]},
        "wrong iss": {"iss": "evil"},
        "empty iss": {"iss": ""},
        "sub not a string": {"sub": 12345},
        "sub of an unknown client": {"sub": "cl_0000000000000000000000"},
        "scope not a string": {"scope": ["admin"]},
        "gen as a string": {"gen": "1"},
        "gen as a bool": {"gen": True},
        "gen as a float": {"gen": 1.0},
        "gen older": {"gen": 0},
        "gen newer": {"gen": 2},
        "jti not a string": {"jti": 5},
    }
    for name, change in variants.items():
        token = forge({**base, **change}, secret)
        assert_invalid_token(await target.call(auth(token)), name)

    for missing in ("sub", "gen", "exp", "iat", "jti", "scope", "iss", "aud"):
        claims = {k: v for k, v in base.items() if k != missing}
        assert_invalid_token(await target.call(auth(forge(claims, secret))), f"no {missing}")

    # Still within the lifetime a second from now: accepted (the control for the leeway cases).
    fresh = forge({**base, "exp": now + 2}, secret)
    assert (await target.call(auth(fresh))).status_code == 200


async def test_scope_claims_cannot_escalate(relay: Running) -> None:
    chat_id, chat_key = await relay.new_client("chat")
    chat_token = await relay.token_for(chat_key)
    assert_insufficient_scope(
        await relay.client.get("/admin/clients", headers=auth(chat_token)), "admin"
    )
    # Even a token carrying `admin` (which needs the secret to sign) gives a client
    # no scope it does not have.
    forged = forge(good_claims(chat_id, "chat admin"), secret_of(relay))
    assert_insufficient_scope(
        await relay.client.get("/admin/clients", headers=auth(forged)), "admin"
    )
    post = await relay.client.post("/admin/clients", json={"name": "evil"}, headers=auth(forged))
    assert_insufficient_scope(post, "admin")
    assert len(await relay.relay.store.list_clients(active=None, limit=10, before=None)) == 1

    # A scope granted after the token was issued is not in the token either.
    await relay.relay.clients.update(chat_id, {"scopes": ["chat", "admin"]})
    assert_insufficient_scope(
        await relay.client.get("/admin/clients", headers=auth(chat_token)), "admin"
    )
    assert (
        await relay.client.get("/admin/clients", headers=auth(await relay.token_for(chat_key)))
    ).status_code == 200


async def test_scope_removed_after_issue_is_refused(relay: Running) -> None:
    ops_id, ops_key = await relay.new_client("admin", "chat")
    token = await relay.token_for(ops_key)
    assert (await relay.client.get("/admin/clients", headers=auth(token))).status_code == 200
    other_admin = await relay.bearer("admin")
    patched = await relay.client.patch(
        f"/admin/clients/{ops_id}", json={"scopes": ["chat"]}, headers=other_admin
    )
    assert patched.status_code == 200
    assert_insufficient_scope(
        await relay.client.get("/admin/clients", headers=auth(token)), "admin"
    )


async def test_tokens_issued_before_revocation(relay: Running) -> None:
    admin = await relay.bearer("admin")
    checks = 0

    async def ok(token: str) -> None:
        nonlocal checks
        checks += 1
        assert (await relay.client.get("/admin/clients", headers=auth(token))).status_code == 200

    async def refused(token: str, why: str) -> None:
        nonlocal checks
        checks += 1
        assert_invalid_token(await relay.client.get("/admin/clients", headers=auth(token)), why)

    # Before a regenerate.
    regen_id, regen_key = await relay.new_client("admin")
    before_regen = await relay.token_for(regen_key)
    await ok(before_regen)
    renewed = await relay.client.post(f"/admin/clients/{regen_id}/regenerate-key", headers=admin)
    await refused(before_regen, "issued before regenerate")
    # A forged token naming the old generation fails too; the new one passes.
    await refused(forge(good_claims(regen_id, generation=1), secret_of(relay)), "old gen")
    await ok(forge(good_claims(regen_id, generation=2), secret_of(relay)))
    await ok(await relay.token_for(renewed.json()["api_key"]))

    # Before a disable, and still after the client is enabled again.
    off_id, off_key = await relay.new_client("admin")
    before_disable = await relay.token_for(off_key)
    await relay.client.patch(f"/admin/clients/{off_id}", json={"active": False}, headers=admin)
    await refused(before_disable, "issued before disable")
    await refused(forge(good_claims(off_id, generation=2), secret_of(relay)), "disabled client")
    await relay.client.patch(f"/admin/clients/{off_id}", json={"active": True}, headers=admin)
    await refused(before_disable, "issued before disable, client enabled again")
    await ok(await relay.token_for(off_key))

    # After a delete.
    gone_id, gone_key = await relay.new_client("admin")
    before_delete = await relay.token_for(gone_key)
    await relay.client.delete(f"/admin/clients/{gone_id}", headers=admin)
    await refused(before_delete, "client deleted")
    await refused(forge(good_claims(gone_id), secret_of(relay)), "forged for deleted client")
