"""The command line, run in process against an SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import relay
from relay import cli
from relay.cli.serve import banner
from relay.clients.service import InvalidApiKey
from relay.clients.tokens import IssuedToken
from relay.config import Settings
from relay.container import build_clients
from relay.errors import RelayError
from relay.storage import Store
from tests.support.ports import free_port

ENV_NAMES = (
    "JWT_SECRET",
    "JWT_EXPIRY",
    "REDIS_URL",
    "RELAY_BACKEND",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_CHAT",
    "RATE_LIMIT_AUTH_FAILURES",
    "LOG_LEVEL",
)


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], database: Path) -> None:
        self.capsys = capsys
        self.database = database

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(list(argv))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def exchange(self, api_key: str) -> IssuedToken | None:
        """Trade a key for a token the way the server does; None when refused."""
        result: list[IssuedToken | None] = []

        async def work(store: Store) -> None:
            service = await build_clients(Settings(), store, cache_ttl=0)
            try:
                result.append(await service.exchange(api_key))
            except RelayError as exc:
                assert isinstance(exc, InvalidApiKey)
                result.append(None)

        asyncio.run(cli.with_store(Settings(), work))
        return result[0]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.chdir(tmp_path)  # no ./.env from the project
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "data" / "relay.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    return Cli(capsys, database)


def test_migrate_says_what_it_applied(run: Cli) -> None:
    code, out, err = run("migrate")
    assert code == 0, err
    assert "applied" in out and "001_initial" in out
    assert "up to date" not in out
    assert run.database.exists()
    code, out, _ = run("migrate")
    assert code == 0
    assert "up to date" in out and "001_initial" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"relay {relay.__version__}"


def test_show(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app", "--scope", "chat")
    client_id = created["client"]["id"]
    assert run.json("clients", "show", client_id) == {"client": created["client"]}
    code, out, err = run("clients", "show", client_id)
    assert code == 0, err
    assert client_id in out and "app" in out and "active" in out
    assert created["api_key"] not in out


def test_enable_after_disable(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app")
    client_id, api_key = created["client"]["id"], created["api_key"]
    assert run("clients", "disable", client_id)[0] == 0
    assert run.exchange(api_key) is None
    code, out, err = run("clients", "enable", client_id)
    assert code == 0, err
    assert client_id in out
    assert run.json("clients", "show", client_id)["client"]["active"] is True
    assert run.exchange(api_key) is not None


def test_delete(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app")
    client_id, api_key = created["client"]["id"], created["api_key"]
    code, out, err = run("clients", "delete", client_id)
    assert code == 0, err
    assert client_id in out
    assert run.json("clients", "list") == {"clients": []}
    assert run.exchange(api_key) is None
    code, _, err = run("clients", "delete", client_id)
    assert code == 1 and "does not exist" in err


def test_update(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app")
    client_id, api_key = created["client"]["id"], created["api_key"]
    updated = run.json(
        "clients", "update", client_id, "--name", "renamed", "--scope", "chat",
        "--rate-limit-chat", "5/minute", "--token-ttl", "600",
    )["client"]  # fmt: skip
    assert updated["name"] == "renamed"
    assert updated["scopes"] == ["chat"]
    assert updated["rate_limits"] == {"chat": "5/minute"}
    assert updated["token_ttl"] == 600
    # One limit changed keeps the other.
    again = run.json("clients", "update", client_id, "--rate-limit-default", "50/minute")
    assert again["client"]["rate_limits"] == {"chat": "5/minute", "default": "50/minute"}
    issued = run.exchange(api_key)
    assert issued is not None
    assert issued.scopes == ("chat",)


@pytest.mark.parametrize(
    "flags",
    [
        ["--rate-limit-chat", "lots"],
        ["--token-ttl", "0"],
        ["--name", ""],
        [],
    ],
)
def test_update_refuses_bad_values_with_one_line(run: Cli, flags: list[str]) -> None:
    client_id = run.json("clients", "create", "--name", "app")["client"]["id"]
    code, out, err = run("clients", "update", client_id, *flags)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("relay: "), err
    assert run.json("clients", "show", client_id)["client"]["name"] == "app"


def test_update_unknown_client(run: Cli) -> None:
    code, _, err = run("clients", "update", "cl_missing", "--name", "x")
    assert code == 1 and "does not exist" in err


def test_create_prints_the_key_once(run: Cli) -> None:
    code, out, err = run("clients", "create", "--name", "ops", "--scope", "admin")
    assert code == 0, err
    api_key = out.split("API key (shown once, store it now): ", 1)[1].strip()
    assert api_key.startswith("rly_")
    assert out.count(api_key) == 1
    assert "ops" in out
    assert "admin" in out
    issued = run.exchange(api_key)
    assert issued is not None
    assert issued.scopes == ("admin",)

    code, listing, _ = run("clients", "list")
    assert code == 0
    assert api_key not in listing


def test_create_json(run: Cli) -> None:
    created = run.json(
        "clients", "create", "--name", "mobile", "--scope", "chat", "--scope", "tools"
    )
    assert set(created) == {"client", "api_key"}
    client = created["client"]
    assert client["name"] == "mobile"
    assert client["scopes"] == ["chat", "tools"]
    assert client["active"] is True
    assert created["api_key"].startswith(client["key_prefix"] + "_")
    assert "key_hash" not in client

    default = run.json("clients", "create", "--name", "plain")
    assert default["client"]["scopes"] == ["chat", "history", "tools"]
    issued = run.exchange(default["api_key"])
    assert issued is not None
    assert issued.scopes == ("chat", "history", "tools")


def test_list(run: Cli) -> None:
    assert run.json("clients", "list") == {"clients": []}
    first = run.json("clients", "create", "--name", "first")["client"]
    second = run.json("clients", "create", "--name", "second", "--scope", "admin")["client"]

    listed = run.json("clients", "list")
    assert [c["id"] for c in listed["clients"]] == [second["id"], first["id"]]
    assert listed["clients"][0] == second
    assert "api_key" not in json.dumps(listed)

    code, out, _ = run("clients", "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert second["id"] in lines[0]
    assert "second" in lines[0]
    assert "admin" in lines[0]
    assert "active" in lines[1]
    assert first["key_prefix"] in lines[1]


def test_disable(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app")
    client_id, api_key = created["client"]["id"], created["api_key"]
    assert run.exchange(api_key) is not None

    code, out, err = run("clients", "disable", client_id)
    assert code == 0, err
    assert client_id in out
    listed = run.json("clients", "list")["clients"]
    assert listed[0]["active"] is False
    assert run.exchange(api_key) is None


def test_regenerate_key(run: Cli) -> None:
    created = run.json("clients", "create", "--name", "app")
    client_id, old_key = created["client"]["id"], created["api_key"]
    old_token = run.exchange(old_key)
    assert old_token is not None

    renewed = run.json("clients", "regenerate-key", client_id)
    assert renewed["client"]["id"] == client_id
    assert renewed["api_key"] != old_key
    assert renewed["client"]["key_prefix"] != created["client"]["key_prefix"]
    assert run.exchange(old_key) is None
    new_token = run.exchange(renewed["api_key"])
    assert new_token is not None

    code, out, err = run("clients", "regenerate-key", client_id)
    assert code == 0, err
    newest = out.split("API key (shown once, store it now): ", 1)[1].strip()
    assert newest.startswith("rly_")
    assert run.exchange(renewed["api_key"]) is None
    assert run.exchange(newest) is not None


def test_unknown_client(run: Cli) -> None:
    for action in ("show", "enable", "disable", "delete", "regenerate-key"):
        code, out, err = run("clients", action, "cl_missing")
        assert code == 1
        assert out == ""
        assert err.startswith("relay: ")
        assert "does not exist" in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_CHAT", "abc"),
        ("RATE_LIMIT_DEFAULT", "100"),
        ("BCRYPT_ROUNDS", "many"),
        ("JWT_EXPIRY", "0"),
        ("DATABASE_URL", "mysql://localhost/relay"),
        ("RELAY_BACKEND", "skynet"),
        ("RELAY_PORT", "70000"),
    ],
)
def test_bad_environment_value_stops_with_one_line(
    run: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    code, out, err = run("clients", "list")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert name in lines[0]
    assert "Traceback" not in err
    assert not run.database.exists()


def test_dot_env_in_the_working_directory_is_read(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("RATE_LIMIT_CHAT=abc\n", encoding="utf-8")
    code, _, err = run("clients", "list")
    assert code == 2
    assert "RATE_LIMIT_CHAT" in err
    # The environment is stronger than the file.
    monkeypatch.setenv("RATE_LIMIT_CHAT", "5/minute")
    assert run("clients", "list")[0] == 0


def test_bad_arguments_exit_2(run: Cli) -> None:
    for argv in (
        ["clients", "create", "--name", "x", "--scope", "root"],
        ["clients", "create"],
        ["clients", "disable"],
        ["clients"],
        ["launch"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2, argv
    assert not run.database.exists()


def test_serve_with_a_bad_tools_file_stops_with_one_line(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text('{"tools": [{"name": "bad name!", "description": "x", "input_schema": {}}]}')
    monkeypatch.setenv("TOOLS_FILE", str(tools))
    code, out, err = run("serve", "--port", str(free_port()))  # fails before it would listen
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "TOOLS_FILE" in lines[0] and str(tools) in lines[0], err


def test_make_run_banner_shows_the_real_address(
    run: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAY_HOST", "0.0.0.0")
    monkeypatch.setenv("RELAY_PORT", "8123")
    banner()
    assert "http://0.0.0.0:8123" in capsys.readouterr().out
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "banner()" in makefile and "127.0.0.1:8000" not in makefile
