"""Settings: every variable Relay reads, validated once at start-up.

Sources, strongest first: the environment, then `./.env`, then `~/.env`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RATE_LIMIT_PATTERN = re.compile(r"^\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*$")
# scheme://host[:port], as browsers send it (hybrid apps use schemes like capacitor://).
CORS_ORIGIN_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#*,]+$")
BackendName = Literal["echo", "anthropic", "openai", "upstream"]


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("relay"))
    return f"sqlite:///{data_dir / 'relay.db'}"


def check_rate_limit(value: str) -> str:
    if not RATE_LIMIT_PATTERN.match(value):
        raise ValueError("expected a rate such as '100/minute' or '10 per second'")
    return value.strip()


JWT_SECRET_MIN_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(Path.home() / ".env", Path(".env")),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    jwt_secret: SecretStr | None = None
    jwt_expiry: int = Field(3600, ge=1, le=604_800)
    jwt_issuer: str = "relay"
    jwt_audience: str = "relay-api"

    database_url: str = Field(default_factory=default_database_url)
    database_pool_size: int = Field(10, ge=1, le=200)
    redis_url: str | None = None

    relay_backend: BackendName = "echo"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    anthropic_max_tokens: int = Field(1024, ge=1)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    upstream_url: str | None = None
    upstream_api_key: SecretStr | None = None
    backend_timeout: float = Field(60.0, gt=0)
    backend_max_retries: int = Field(1, ge=0, le=10)
    backend_breaker_threshold: int = Field(5, ge=1)
    backend_breaker_cooldown: float = Field(30.0, gt=0)
    backend_health_ttl: float = Field(5.0, ge=0)
    allowed_models: str = ""
    tools_file: Path | None = None
    sse_keepalive_seconds: float = Field(15.0, gt=0)
    history_context_messages: int = Field(20, ge=0, le=1000)
    idempotency_lease: float = Field(30.0, gt=0, le=3600)

    rate_limit_default: str = "100/minute"
    rate_limit_chat: str = "10/minute"
    rate_limit_auth_failures: str = "10/minute"

    relay_host: str = "127.0.0.1"
    relay_port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_message_chars: int = Field(32_000, ge=1)
    cors_origins: str = ""  # comma-separated exact origins browser apps may call from
    # The HTTP connection (web/connection.py): how large a request head may be, and how
    # long a client may take to send a request or leave its connection idle.
    max_header_bytes: int = Field(32_768, ge=1024, le=1_048_576)
    max_headers: int = Field(100, ge=1, le=10_000)
    request_read_timeout: float = Field(30.0, gt=0, le=3600)
    keepalive_timeout: int = Field(5, ge=1, le=3600)  # whole seconds: uvicorn's type

    bcrypt_rounds: int = Field(12, ge=4, le=16)
    client_cache_ttl: float = Field(30.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"

    _check_rates = field_validator(
        "rate_limit_default", "rate_limit_chat", "rate_limit_auth_failures"
    )(check_rate_limit)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///path or postgresql://...")
        if value.startswith("sqlite:///:memory:"):
            # The writer is a process of its own: it could never see an in-memory database.
            raise ValueError("an in-memory SQLite database is not supported; name a file")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # HS256 with a short secret is cracked offline from one token by a wordlist.
        if value is not None and len(value.get_secret_value().encode()) < JWT_SECRET_MIN_BYTES:
            raise ValueError(
                f"must be at least {JWT_SECRET_MIN_BYTES} bytes (or unset, to have one"
                " generated and kept in the database)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db, rediss://... or unix://path")
        return value or None

    @field_validator("anthropic_base_url", "openai_base_url", "upstream_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value or None

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",") if o.strip()):
            # A path, a trailing slash or a wildcard would never match what a browser sends.
            if not CORS_ORIGIN_PATTERN.match(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example.com")
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def default_rate(self, kind: str) -> str:
        """The global rate of a client limit: `chat`, or `default` for every request."""
        return self.rate_limit_chat if kind == "chat" else self.rate_limit_default

    @property
    def allowed_model_set(self) -> frozenset[str]:
        return frozenset(m.strip() for m in self.allowed_models.split(",") if m.strip())


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable and what it expected."""
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
    return f"invalid configuration: {name}: {first['msg']}"
