"""JWTs: HS256, algorithm pinned, every claim required, at most 1 s of leeway."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from relay.errors import RelayError
from relay.storage.records import ClientRecord

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "scope", "iss", "aud", "gen"]
LEEWAY_SECONDS = 1
# Verified tokens remembered per process; revocation is still checked on every
# request against the client's state, so caching the signature check is safe.
VERIFIED_CACHE_SIZE = 50_000


class InvalidToken(RelayError):
    """The bearer token is missing, malformed, forged, expired or revoked: all look alike."""

    def __init__(self, message: str = "The access token is missing, invalid or expired.") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    client_id: str
    scopes: frozenset[str]
    generation: int
    jti: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: tuple[str, ...]


class TokenCodec:
    def __init__(self, secret: str, *, issuer: str, audience: str, default_ttl: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.default_ttl = default_ttl
        self._verified: dict[str, TokenClaims] = {}

    def issue(self, client: ClientRecord) -> IssuedToken:
        ttl = client.token_ttl or self.default_ttl
        now = int(time.time())
        claims = {
            "sub": client.id,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(client.scopes),
            "iss": self.issuer,
            "aud": self.audience,
            "gen": client.key_generation,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token, ttl, client.scopes)

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; a token seen before skips the HMAC until it expires."""
        claims = self._verified.get(token)
        if claims is not None and claims.expires_at + LEEWAY_SECONDS > time.time():
            return claims
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._forget_expired()
        self._verified[token] = claims
        return claims

    def _forget_expired(self) -> None:
        now = time.time()
        for token in [t for t, c in self._verified.items() if c.expires_at < now]:
            del self._verified[token]
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # all alive: start over rather than grow without bound

    def _decode(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
            sub, scope, gen = claims["sub"], claims["scope"], claims["gen"]
            if not (isinstance(sub, str) and isinstance(scope, str) and type(gen) is int):
                raise InvalidToken()
            # PyJWT reads "exp": "123" as a number; Relay only ever issues integers.
            if not (type(claims["exp"]) is int and type(claims["iat"]) is int):
                raise InvalidToken()
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        return TokenClaims(sub, frozenset(scope.split()), gen, str(claims["jti"]), claims["exp"])
