"""Start, watch and stop the benchmark's processes; every wait has a deadline.

Each child runs in its own session (process group), so a Ctrl-C in the
terminal does not kill servers half-way through a measurement, and stopping a
child stops everything it forked (nginx workers, uvicorn) by that group's id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.processes import rss_kib

STOP_GRACE_S = 10.0
POLL_S = 0.1


class StartFailed(RuntimeError):
    """A server exited or never answered; the message names it and how it ended."""


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


@dataclass
class Supervisor:
    """Owns every long-running child; `stop_all` is safe to call more than once."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stderr: IO[bytes] | int = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session with stdin and stdout on /dev/null, and own it."""
        process = subprocess.Popen(
            [os.fspath(a) for a in argv],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        self.children.append((name, process))
        return process

    def wait_ready(
        self, name: str, process: subprocess.Popen[bytes], url: str, timeout: float = 60.0
    ) -> None:
        """Poll `url` until it answers below 500; fail fast if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise StartFailed(f"{name} exited with code {code} before answering {url}")
            status = http_status(url, timeout=1.0)
            if status is not None and status < 500:
                return
            time.sleep(POLL_S)
        raise StartFailed(f"{name} did not answer {url} within {timeout:.0f} s")

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's group, then SIGKILL it after a grace period."""
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=STOP_GRACE_S)
        # No signal after the leader is reaped: its id could belong to someone else by then.
        self.children = [(n, p) for n, p in self.children if p is not process]

    def stop_all(self) -> None:
        """Stop every child, newest first, whatever happens to any one of them."""
        for _name, process in reversed(list(self.children)):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.stop(process)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def child_pids(pid: int) -> list[int]:
    """The processes a server started (Relay's SQLite writer), from every thread of it."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def tree_rss_kib(pid: int) -> int:
    """Resident set size of a process plus the processes it started, from /proc (KiB).

    Relay on SQLite writes through a child process; its memory is Relay's too.
    """
    return rss_kib(pid) + sum(rss_kib(child) for child in child_pids(pid))


def run_bounded(
    argv: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a short command to completion and return its stdout; raise on failure."""
    result = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{argv[0]} exited with {result.returncode}:\n{tail}")
    return result.stdout
