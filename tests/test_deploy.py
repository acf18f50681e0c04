"""deploy/: the systemd unit verifies, the env file lists every variable, doctor tells."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import services
from tests.support.ports import closed_port, free_port
from tests.support.processes import relay_env

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def systemd_analyze() -> str:
    """systemd-analyze, installed with apt-get when missing (as root); in CI it must work."""
    found = shutil.which("systemd-analyze")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "systemd"],
        ):
            subprocess.run(command, capture_output=True, timeout=600, check=False)
        found = shutil.which("systemd-analyze")
    if found is None:
        services.unavailable("systemd-analyze is missing and could not be installed")
    return found


def test_the_unit_verifies(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    unit = (DEPLOY / "relay.service").read_text()
    # verify insists the commands exist: point them at this checkout's relay.
    relay = Path(sys.executable).with_name("relay")
    assert relay.exists(), relay
    (tmp_path / "relay.service").write_text(unit.replace("/opt/relay/bin/relay", str(relay)))
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "relay.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "relay.service" not in done.stderr, done.stderr  # no warning about our unit
    for hardening in (
        "User=relay",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
    ):
        assert hardening in unit


def readme_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| Variable |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in VARIABLE.findall(row)}


def test_the_env_example_lists_every_variable_of_the_readme() -> None:
    example = (DEPLOY / "relay.env.example").read_text()
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    documented = readme_variables()
    assert len(documented) > 20
    assert documented - listed == set(), "missing from deploy/relay.env.example"
    assert listed - documented == set(), "not in the README's configuration table"


def doctor(tmp_path: Path, **extra: str) -> tuple[int, list[str]]:
    env = relay_env({"HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/relay.db"})
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "doctor", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done.returncode, done.stdout.strip().splitlines()


def test_doctor_passes_on_a_working_setup(tmp_path: Path) -> None:
    code, lines = doctor(tmp_path)
    assert code == 0, lines
    names = [line.split(":", 1)[0].split()[-1] for line in lines[:-1]]
    assert names == ["configuration", "database", "redis", "backend", "port"]
    assert all(line.startswith("ok") for line in lines[:-1]), lines
    assert lines[-1] == "Relay can serve."


def test_doctor_checks_redis_when_configured(tmp_path: Path) -> None:
    services.require_redis()
    code, lines = doctor(tmp_path, REDIS_URL=services.REDIS_URL)
    assert code == 0, lines
    assert any(line.startswith("ok") and "redis:" in line for line in lines)


def test_doctor_fails_naming_each_broken_part(tmp_path: Path) -> None:
    code, lines = doctor(
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        RELAY_BACKEND="upstream",
    )
    assert code != 0
    failed = [line for line in lines if line.startswith("FAIL")]
    assert any("redis:" in line and "REDIS_URL" in line for line in failed), lines
    assert any("backend:" in line and "UPSTREAM_URL" in line for line in failed), lines
    assert any(line.startswith("ok") and "database:" in line for line in lines), lines
    assert lines[-1] == "Relay could not serve."


def test_doctor_with_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    code, lines = doctor(tmp_path, RATE_LIMIT_CHAT="lots")
    assert code == 2
    assert len(lines) == 1 and "RATE_LIMIT_CHAT" in lines[0], lines
