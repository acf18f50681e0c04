"""The three measuring phases: main (interleaved rounds), auth (token exchanges), memory.

Interleaving (round 1 of every target, then round 2 of every target, ...) and
taking medians keeps a burst of noise from another process on the machine from
landing on a single target and skewing its ratio.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.config import BenchConfig
from bench.processes import tree_rss_kib
from bench.servers import Run, Servers, start_relay_sqlite
from bench.targets import Target, write_lines

MAX_MEMORY_CHUNK_S = 15
# A token exchange is a bcrypt check at Relay's default cost: runs much shorter
# than this complete too few of them to give a rate or a percentile.
MIN_AUTH_S = 5


@dataclass(frozen=True)
class Measurement:
    """One wrk run of one target in one phase and round, with the machine's load before it."""

    phase: str
    target: Target
    connections: int
    round: int
    result: wrk.WrkResult
    loadavg_1m: float

    def as_dict(self) -> dict[str, Any]:
        """The measurement as one flat JSON object (the result document's `measurements`)."""
        return {
            "phase": self.phase,
            "key": self.target.key,
            "target": self.target.name,
            "endpoint": self.target.endpoint,
            "connections": self.connections,
            "round": self.round,
            "loadavg_1m": self.loadavg_1m,
            **self.result.as_dict(),
        }


def loadavg() -> float:
    """The 1-minute load average: a gauge of how busy the machine was around a figure."""
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass(frozen=True)
class Runner:
    """Turns (target, connections, seconds) into wrk runs with the run's settings."""

    cfg: BenchConfig
    wrk_path: Path

    def load(self, target: Target, connections: int, duration_s: int) -> wrk.Load:
        """The wrk load for `target` at `connections` for `duration_s` seconds."""
        return wrk.Load(
            url=f"{target.url}/",
            spec=target.spec,
            tokens=target.tokens,
            connections=connections,
            duration_s=duration_s,
            threads=self.cfg.threads,
        )

    def run(self, target: Target, connections: int, duration_s: int) -> wrk.WrkResult:
        """One unrecorded wrk run (warm-up, memory chunks)."""
        return wrk.run(self.wrk_path, self.load(target, connections, duration_s))

    def measure(
        self, phase: str, target: Target, connections: int, rnd: int, duration_s: int = 0
    ) -> Measurement:
        """One recorded wrk run, printed as it completes; `duration_s` 0 means the default."""
        before = loadavg()
        result = self.run(target, connections, duration_s or self.cfg.duration_s)
        print(f"  {target.key:<36} c={connections:<3} r{rnd}  {_brief(result)}", flush=True)
        return Measurement(phase, target, connections, rnd, result, before)


def _brief(result: wrk.WrkResult) -> str:
    errors = result.socket_errors + result.non_2xx
    return f"{result.rps:>9.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms" + (
        f"  ERRORS {errors}" if errors else ""
    )


def warm_up(runner: Runner, targets: list[Target]) -> None:
    """Fill pools, caches and the first conversations before anything is recorded."""
    if runner.cfg.warmup_s <= 0:
        return
    for target in targets:
        runner.run(target, max(runner.cfg.connections), runner.cfg.warmup_s)


def run_main(runner: Runner, targets: list[Target]) -> list[Measurement]:
    """Every target at every connection count, round after round."""
    out: list[Measurement] = []
    for rnd in range(1, runner.cfg.rounds + 1):
        print(f"round {rnd}/{runner.cfg.rounds}", flush=True)
        for connections in runner.cfg.connections:
            out.extend(runner.measure("main", t, connections, rnd) for t in targets)
    return out


def relabel(target: Target, condition: str) -> Target:
    """The same load, reported under `endpoint (condition)` so its rows stay apart."""
    return dataclasses.replace(target, endpoint=f"{target.endpoint} ({condition})")


def _concurrent(
    runner: Runner, tools: Target, auth: Target, connections: int, rnd: int
) -> list[Measurement]:
    """GET /v1/tools and POST /auth/token at once, from two wrk processes."""
    cfg = runner.cfg
    before = loadavg()
    duration = max(cfg.duration_s, MIN_AUTH_S)
    tools_load = runner.load(tools, connections, duration)
    auth_load = runner.load(auth, cfg.auth_connections, duration)
    tools_proc = wrk.start(runner.wrk_path, tools_load)
    try:
        auth_proc = wrk.start(runner.wrk_path, auth_load)
        auth_result = wrk.finish(auth_proc, auth_load)
    finally:
        tools_result = wrk.finish(tools_proc, tools_load)
    busy = relabel(tools, "during token exchanges")
    shared = relabel(auth, "during tools load")
    print(f"  {busy.key:<36} c={connections:<3} r{rnd}  {_brief(tools_result)}", flush=True)
    print(f"  {shared.key:<36} c={cfg.auth_connections:<3} r{rnd}  {_brief(auth_result)}")
    return [
        Measurement("auth", busy, connections, rnd, tools_result, before),
        Measurement("auth", shared, cfg.auth_connections, rnd, auth_result, before),
    ]


def run_auth(runner: Runner, tools: Target, auth: Target) -> list[Measurement]:
    """Token exchange throughput, and tools p99 with and without exchanges running."""
    cfg = runner.cfg
    connections = min(cfg.connections)
    out: list[Measurement] = []
    for rnd in range(1, cfg.rounds + 1):
        print(f"token exchanges, round {rnd}/{cfg.rounds}", flush=True)
        duration = max(cfg.duration_s, MIN_AUTH_S)
        out.append(runner.measure("auth", auth, cfg.auth_connections, rnd, duration))
        out.append(runner.measure("auth", relabel(tools, "quiet"), connections, rnd, duration))
        out.extend(_concurrent(runner, tools, auth, connections, rnd))
    return out


def _chunk_seconds(remaining: int, rate: float | None, time_left: float) -> int:
    """Short runs near a mark so the RSS sample lands close to it; never past the budget."""
    guess = 1 if rate is None or rate <= 0 else math.floor(remaining / rate)
    return max(1, min(guess, MAX_MEMORY_CHUNK_S, math.floor(time_left)))


def _grow(runner: Runner, target: Target, pid: int) -> dict[str, Any]:
    """Load until each mark (e.g. 10k and 100k requests), reading RSS as it goes.

    Bounded by BENCH_MEMORY_MAX_SECONDS: a mark not reached in time says so.
    """
    cfg = runner.cfg
    connections = min(cfg.connections)
    started = time.monotonic()
    total, errors, rate = 0, 0, None
    samples = [{"requests": 0, "rss_kib": tree_rss_kib(pid), "elapsed_s": 0.0}]
    marks = []
    for mark in sorted(cfg.memory_marks):
        while total < mark and (left := cfg.memory_max_s - (time.monotonic() - started)) >= 1:
            result = runner.run(target, connections, _chunk_seconds(mark - total, rate, left))
            total, rate = total + result.requests, result.rps
            errors += result.socket_errors + result.non_2xx
            elapsed = round(time.monotonic() - started, 1)
            samples.append({"requests": total, "rss_kib": tree_rss_kib(pid), "elapsed_s": elapsed})
        marks.append({"mark": mark, "reached": total >= mark, **samples[-1]})
        print(f"  memory: {total} requests, RSS {samples[-1]['rss_kib'] / 1024:.1f} MiB")
    return {
        "workload": "mixed POST /v1/chat, GET /v1/tools, GET /v1/history (SQLite)",
        "connections": connections,
        "errors": errors,
        "marks": marks,
        "samples": samples,
    }


def run_memory(run: Run, runner: Runner, servers: Servers, spec: Path) -> dict[str, Any]:
    """Relay's RSS (with its writer process) at each mark, on a fresh relay-sqlite.

    Fresh, so its request count starts at zero; stopped right after.
    """
    print("memory: starting a fresh relay-sqlite", flush=True)
    relay = start_relay_sqlite(run, servers.setup, "relay-memory")
    try:
        tokens = write_lines(run.tmp / "memory.tokens", list(relay.tokens))
        target = Target("relay-memory", "mixed", relay.url, spec, tokens)
        return _grow(runner, target, relay.process.pid)
    finally:
        run.sup.stop(relay.process)
