"""Settings: defaults, sources, validation, and the one-line error naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from relay.config import Settings, check_rate_limit, describe_error


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the test run's environment and no project ./.env leak in."""
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def settings_error(**values: object) -> str:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return describe_error(raised.value)


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.jwt_secret is None
    assert settings.jwt_expiry == 3600
    assert settings.relay_backend == "echo"
    assert settings.redis_url is None
    assert settings.rate_limit_default == "100/minute"
    assert settings.rate_limit_chat == "10/minute"
    assert settings.rate_limit_auth_failures == "10/minute"
    assert settings.max_body_bytes == 1_048_576
    assert settings.max_message_chars == 32_000
    assert settings.backend_timeout == 60
    assert settings.backend_max_retries == 1
    assert settings.bcrypt_rounds >= 10
    assert (settings.relay_host, settings.relay_port) == ("127.0.0.1", 8000)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("relay.db")
    assert settings.allowed_model_set == frozenset()


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_EXPIRY", "120")
    monkeypatch.setenv("DATABASE_URL", "postgresql://relay@db/relay")
    monkeypatch.setenv("RATE_LIMIT_CHAT", " 5 per second ")
    monkeypatch.setenv("relay_port", "9000")  # names are case-insensitive
    monkeypatch.setenv("RELAY_BACKEND", "upstream")
    monkeypatch.setenv("ALLOWED_MODELS", " small, large ,,")
    settings = Settings(_env_file=None)
    assert settings.jwt_expiry == 120
    assert settings.database_url == "postgresql://relay@db/relay"
    assert settings.rate_limit_chat == "5 per second"
    assert settings.relay_port == 9000
    assert settings.relay_backend == "upstream"
    assert settings.allowed_model_set == frozenset({"small", "large"})


def test_jwt_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "s3cret-value-long-enough-for-hs256-tests")
    settings = Settings(_env_file=None)
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == "s3cret-value-long-enough-for-hs256-tests"
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "s3cret-value-long-enough-for-hs256-tests" not in text


def test_dot_env_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "JWT_EXPIRY=77\nRATE_LIMIT_DEFAULT=7/minute\nUNRELATED=1\n", encoding="utf-8"
    )
    # ./.env is read from the working directory by default.
    settings = Settings()
    assert settings.jwt_expiry == 77
    assert settings.rate_limit_default == "7/minute"
    # The environment is stronger than the file.
    monkeypatch.setenv("JWT_EXPIRY", "88")
    assert Settings().jwt_expiry == 88

    # ~/.env is read first and ./.env after it, so ./.env wins where both speak.
    assert Settings.model_config["env_file"] == (Path.home() / ".env", Path(".env"))
    home = tmp_path / "home.env"
    home.write_text("RATE_LIMIT_DEFAULT=1/minute\nRATE_LIMIT_CHAT=2/minute\n", encoding="utf-8")
    both = Settings(_env_file=(home, tmp_path / ".env"))
    assert both.rate_limit_default == "7/minute"
    assert both.rate_limit_chat == "2/minute"


@pytest.mark.parametrize(
    "rate", ["100/minute", "10 per second", "5/hour", "1/day", "3 / minutes", "10/2 minutes"]
)
def test_rate_limit_accepted(rate: str) -> None:
    assert check_rate_limit(f" {rate} ") == rate
    assert Settings(_env_file=None, rate_limit_default=rate).rate_limit_default == rate


@pytest.mark.parametrize(
    "rate", ["abc", "100", "", "/minute", "-1/minute", "10/fortnight", "ten/minute", "1/m"]
)
def test_rate_limit_refused(rate: str) -> None:
    with pytest.raises(ValueError, match="100/minute"):
        check_rate_limit(rate)
    assert settings_error(rate_limit_chat=rate).startswith(
        "invalid configuration: RATE_LIMIT_CHAT: "
    )


@pytest.mark.parametrize(
    "url",
    ["sqlite:///relay.db", "sqlite:////var/lib/relay.db", "postgresql://u@h/db", "postgres://h/db"],
)
def test_database_url_accepted(url: str) -> None:
    assert Settings(_env_file=None, database_url=url).database_url == url


@pytest.mark.parametrize(
    "url", ["mysql://u:hunter2@h/db", "relay.db", "sqlite://relay.db", "", "http://h"]
)
def test_database_url_refused_without_echoing_it(url: str) -> None:
    line = settings_error(database_url=url)
    assert line.startswith("invalid configuration: DATABASE_URL: ")
    assert "hunter2" not in line


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"jwt_expiry": 0}, "JWT_EXPIRY"),
        ({"jwt_expiry": 604_801}, "JWT_EXPIRY"),
        ({"jwt_expiry": "soon"}, "JWT_EXPIRY"),
        ({"bcrypt_rounds": 3}, "BCRYPT_ROUNDS"),
        ({"bcrypt_rounds": 17}, "BCRYPT_ROUNDS"),
        ({"relay_backend": "skynet"}, "RELAY_BACKEND"),
        ({"relay_port": 0}, "RELAY_PORT"),
        ({"max_body_bytes": 10}, "MAX_BODY_BYTES"),
        ({"backend_timeout": 0}, "BACKEND_TIMEOUT"),
        ({"log_level": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(values: dict[str, object], name: str) -> None:
    line = settings_error(**values)
    assert line.startswith(f"invalid configuration: {name}: ")
    assert "\n" not in line
    assert len(line) > len(f"invalid configuration: {name}: ")


def test_bad_value_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_AUTH_FAILURES", "lots")
    monkeypatch.setenv("JWT_SECRET", "do-not-print-me-" + "0" * 32)
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)
    line = describe_error(raised.value)
    assert line.startswith("invalid configuration: RATE_LIMIT_AUTH_FAILURES: ")
    assert "lots" not in line
    assert "do-not-print-me" not in line


def test_an_in_memory_sqlite_database_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, database_url="sqlite:///:memory:")
    assert "in-memory SQLite database is not supported" in describe_error(refused.value)


@pytest.mark.parametrize("secret", ["", "secret", "x" * 31])
def test_a_short_jwt_secret_is_refused_in_one_line_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, jwt_secret=secret)
    line = describe_error(refused.value)
    assert line.startswith("invalid configuration: JWT_SECRET: ")
    assert "at least 32 bytes" in line
    assert "\n" not in line
    if secret:
        assert secret not in line
