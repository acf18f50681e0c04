"""Real Relay processes for multi-instance tests, started and always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import orjson

from tests.support.ports import free_port

START_TIMEOUT = 20.0


def relay_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "JWT_"))}
    env.update({"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "warning", **extra})
    return env


def relay_command(env: Mapping[str, str], *args: str) -> str:
    """Run `relay <args>` to its end (it must exit 0) and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", *args],
        env=dict(env),
        capture_output=True,
        timeout=30,
        check=True,
    )
    return done.stdout.decode()


def relay_cli(env: Mapping[str, str], *args: str) -> dict[str, object]:
    """Run `relay <args> --json` and parse what it prints."""
    parsed: dict[str, object] = orjson.loads(relay_command(env, *args, "--json"))
    return parsed


def create_client(env: Mapping[str, str], name: str, *scopes: str) -> tuple[str, str]:
    """Create a client with `relay clients create` (no scopes: the default ones).

    Returns (client id, API key); the key is shown this once.
    """
    args = ["clients", "create", "--name", name]
    for scope in scopes:
        args += ["--scope", scope]
    created = relay_cli(env, *args)
    client = created["client"]
    assert isinstance(client, dict)
    return str(client["id"]), str(created["api_key"])


def rss_kib(pid: int) -> int:
    """The resident memory of process `pid` in KiB: VmRSS from /proc/PID/status (Linux).

    Raises ProcessLookupError when there is no such process, or when it has exited and
    not been reaped yet (a zombie's status has no VmRSS line: no memory left to measure).
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}") from None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            # "VmRSS:    12345 kB": the kernel always counts in kB, which are KiB.
            return int(line.split()[1])
    raise ProcessLookupError(f"process {pid} has no resident memory (it has exited)")


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent`, from /proc (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # it ended while we looked
            continue
        # The fields after the command (which may hold spaces) start with state, ppid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry))
    return found


def sqlite_writer_pid(relay: int, timeout: float = 10.0) -> int:
    """The SQLite writer process (storage/sqlite/writer_child.py) of Relay process `relay`.

    Waits for it, as Relay starts a new one only with its next write.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in child_pids(relay):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"writer_child.py" in command:
                return pid
        time.sleep(0.02)
    raise TimeoutError(f"relay {relay} has no SQLite writer process")


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    url: str


def _wait_healthy(instance: Instance, deadline: float) -> None:
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(f"relay exited with {instance.process.returncode}")
        try:
            if httpx.get(f"{instance.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("relay did not become healthy in time")


@contextmanager
def relay_instances(
    env: Mapping[str, str],
    count: int,
    *,
    extra_args: Sequence[str] = (),
    stderr: IO[bytes] | int = subprocess.DEVNULL,
) -> Iterator[list[Instance]]:
    """Start `count` Relay processes at once on one configuration (so they race to migrate)."""
    instances: list[Instance] = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", "serve", "--port", str(port), *extra_args],
                env=dict(env),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            instances.append(Instance(process, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + START_TIMEOUT
        for instance in instances:
            _wait_healthy(instance, deadline)
        yield instances
    finally:
        for instance in instances:
            instance.process.terminate()
        for instance in instances:
            try:
                instance.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait(timeout=10)


def sqlite_env(home: Path, **settings: str) -> dict[str, str]:
    """relay_env on an SQLite database in `home` (HOME too), with `settings` on top."""
    return relay_env({"HOME": str(home), "DATABASE_URL": f"sqlite:///{home}/relay.db", **settings})
