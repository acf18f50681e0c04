"""`relay serve` refusing to start: the real command, one line on stderr, its exit code.

2 is the configuration's fault, 3 a service that cannot be reached; never a traceback.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services
from tests.support.ports import closed_port, free_port
from tests.support.processes import relay_env

SERVE_TIMEOUT = 30


def serve(tmp_path: Path, extra_env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `relay serve` from a clean folder (no ./.env, no ~/.env); (exit code, stderr)."""
    env = relay_env({"HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/relay.db"})
    for name in [n for n in env if n.startswith(("ANTHROPIC_", "OPENAI_", "UPSTREAM_", "REDIS_"))]:
        del env[name]
    env.update(extra_env)
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "serve", "--port", str(free_port()), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT,
    )
    return done.returncode, done.stderr


def assert_one_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], stderr


@pytest.mark.parametrize(
    ("env", "code", "words"),
    [
        ({"REDIS_URL": "garbage"}, 2, ["REDIS_URL"]),
        ({"RELAY_BACKEND": "upstream"}, 2, ["UPSTREAM_URL"]),
        ({"RELAY_BACKEND": "upstream", "UPSTREAM_URL": "localhost:9"}, 2, ["UPSTREAM_URL"]),
        ({"RELAY_BACKEND": "anthropic"}, 2, ["ANTHROPIC_API_KEY"]),
        ({"RELAY_BACKEND": "openai"}, 2, ["OPENAI_API_KEY"]),
    ],
)
def test_a_bad_setting_stops_serve_with_one_line(
    tmp_path: Path, env: dict[str, str], code: int, words: list[str]
) -> None:
    # HOME is the empty tmp_path: the Anthropic SDK finds no profile on disk either.
    exit_code, stderr = serve(tmp_path, env)
    assert_one_line(stderr, *words)
    assert exit_code == code
    assert not (tmp_path / "relay.db").exists()  # stopped before any start-up work


def test_an_anthropic_key_from_the_sdk_s_own_variables_is_enough(tmp_path: Path) -> None:
    # ANTHROPIC_AUTH_TOKEN is read by the SDK, not by Relay: serve must not refuse it.
    # The database, checked after the backend, is unreachable: serve stops there instead.
    env = {
        "RELAY_BACKEND": "anthropic",
        "ANTHROPIC_AUTH_TOKEN": "token-for-the-test",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/relay",
    }
    exit_code, stderr = serve(tmp_path, env)
    assert_one_line(stderr, "DATABASE_URL")
    assert "token-for-the-test" not in stderr
    assert exit_code == 3


def test_an_unwritable_sqlite_folder_is_named(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    exit_code, stderr = serve(tmp_path, {"DATABASE_URL": f"sqlite:///{not_a_folder}/db/r.db"})
    assert_one_line(stderr, "DATABASE_URL", str(not_a_folder))
    assert exit_code == 2


def test_postgres_closed_port_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://postgres:secret-pw@127.0.0.1:{closed_port()}/relay"
    exit_code, stderr = serve(tmp_path, {"DATABASE_URL": url})
    assert_one_line(stderr, "DATABASE_URL", "cannot reach")
    assert "secret-pw" not in stderr
    assert exit_code == 3


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://postgres@127.0.0.1:5432/relay_no_such_db", ["relay_no_such_db", "exist"]),
        ("postgresql://relay_no_such_user@127.0.0.1:5432/postgres", ["relay_no_such_user"]),
    ],
)
def test_postgres_refusing_the_database_or_user_is_configuration(
    tmp_path: Path, url: str, words: list[str]
) -> None:
    services.require_postgres()
    exit_code, stderr = serve(tmp_path, {"DATABASE_URL": url})
    assert_one_line(stderr, "DATABASE_URL", *words)
    assert exit_code == 2


def test_redis_unreachable_stops_serve(tmp_path: Path) -> None:
    exit_code, stderr = serve(tmp_path, {"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    assert_one_line(stderr, "REDIS_URL", "cannot reach")
    assert exit_code == 3


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "0"], "--port"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_flags_are_refused(tmp_path: Path, args: list[str], word: str) -> None:
    exit_code, stderr = serve(tmp_path, {}, *args)
    assert_one_line(stderr, word)
    assert exit_code == 2


def test_a_port_in_use_is_reported_before_start_up_work(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The database is unreachable too: only the port may be reported, since it comes first.
        env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/relay"}
        exit_code, stderr = serve(tmp_path, env, "--port", str(port))
    assert_one_line(stderr, f"127.0.0.1:{port}", "in use")
    assert exit_code == 2


def test_clients_list_with_garbage_redis_url_is_one_line(tmp_path: Path) -> None:
    env = relay_env({"HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/relay.db"})
    env["REDIS_URL"] = "garbage"
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "clients", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT,
    )
    assert_one_line(done.stderr, "REDIS_URL")
    assert done.returncode == 2


def test_main_py_with_a_python_that_lacks_relay_says_how_to_run_it() -> None:
    root = Path(__file__).resolve().parents[1]
    system_python = "/usr/bin/python3"
    if not Path(system_python).exists():
        services.unavailable("no system Python at /usr/bin/python3")
    done = subprocess.run(
        [system_python, "-I", str(root / "main.py")],  # -I: no PYTHONPATH, no user site
        cwd=root,
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT,
    )
    assert_one_line(done.stderr, "make run", ".venv")
    assert done.returncode == 2
