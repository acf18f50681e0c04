"""Run wrk with bench/lua/load.lua and read back its one-line JSON summary.

wrk runs in its own process group with a hard deadline (duration plus a
margin), so a stuck target can never hang the benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "lua" / "load.lua"
MARKER = "WRK_JSON "
MARGIN_S = 20.0
REQUEST_TIMEOUT = "30s"  # bcrypt-bound token exchanges queue for seconds; not an error


@dataclass(frozen=True)
class Load:
    """What one wrk process sends: where, which requests, how hard, how long."""

    url: str
    spec: Path
    tokens: Path | None
    connections: int
    duration_s: int
    threads: int


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured (latencies in ms, with wrk's coordinated-omission correction)."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    socket_errors: int
    non_2xx: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def start(wrk: Path, load: Load) -> subprocess.Popen[str]:
    """Start wrk in its own process group; `finish` collects it."""
    threads = max(1, min(load.threads, load.connections))
    argv = [
        str(wrk),
        f"-t{threads}",
        f"-c{load.connections}",
        f"-d{load.duration_s}s",
        f"--timeout={REQUEST_TIMEOUT}",
        "-s",
        str(SCRIPT),
        load.url,
        "--",
        str(load.spec),
        str(load.tokens) if load.tokens else "-",
    ]
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], load: Load) -> WrkResult:
    """Wait for wrk (bounded), kill it if it overruns, and parse its summary."""
    try:
        out, err = process.communicate(timeout=load.duration_s + MARGIN_S)
    except BaseException:
        _kill(process)
        raise
    for line in out.splitlines():
        if line.startswith(MARKER):
            return parse(json.loads(line.removeprefix(MARKER)))
    raise RuntimeError(f"wrk gave no summary for {load.url} (exit {process.returncode}): {err}")


def run(wrk: Path, load: Load) -> WrkResult:
    """One wrk run to completion (bounded in time)."""
    return finish(start(wrk, load), load)


def parse(raw: dict[str, Any]) -> WrkResult:
    """load.lua's summary in ms; every failure but a non-2xx status counts as a socket error."""
    errors = raw["errors"]
    latency = raw["latency_us"]
    duration_s = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        non_2xx=errors["status"],
    )


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
