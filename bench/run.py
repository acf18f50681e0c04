"""`python -m bench run` (`make bench`): Relay against a stub, a proxy hop and the baselines.

One run on one machine: it starts every server, checks each target's answer,
measures the phases BENCH_PHASES names, writes the result document (see
bench.results for which files) and prints the table, the ratios and the goals
of issue 5. Every process it starts is stopped and the PostgreSQL database it
creates is dropped, even on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import report
from bench.config import BenchConfig, load_config
from bench.phases import Measurement, Runner, run_auth, run_main, run_memory, warm_up
from bench.results import code_identity, config_dict, machine, versions, write_results
from bench.servers import Run, open_run, start_servers
from bench.targets import auth_targets, build_targets, preflight, write_specs
from bench.tools import ensure_tools, nginx_version, wrk_version

TARGET_NAMES = (
    "stub",
    "proxy",
    "ceiling",
    "ceiling-lean",
    "naive",
    "relay-sqlite",
    "relay-postgres",
)


class Stopped(SystemExit):
    """SIGTERM or SIGHUP arrived; exits with 128 + the signal's number, like a shell."""


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the `finally` blocks clean up."""
    raise Stopped(128 + signum)


def selected(cfg: BenchConfig) -> set[str]:
    """The target names BENCH_TARGETS asks for (all by default); exits on an unknown one."""
    names = set(TARGET_NAMES) if cfg.targets is None else set(cfg.targets)
    unknown = names - set(TARGET_NAMES)
    if unknown:
        raise SystemExit(f"bench: BENCH_TARGETS: unknown {sorted(unknown)}; use {TARGET_NAMES}")
    return names


def measure_all(run: Run, tools: dict[str, Path]) -> dict[str, Any]:
    """Start the servers, run the phases, and return the figures part of the document."""
    cfg = run.cfg
    # The auth phase always measures relay-sqlite, whichever targets are selected.
    needed = selected(cfg) | ({"relay-sqlite"} if "auth" in cfg.phases else set())
    servers = start_servers(run, tools["nginx"], needed)
    specs = write_specs(run.tmp)
    targets = [t for t in build_targets(servers, specs, run.tmp) if t.name in selected(cfg)]
    preflight(targets)
    runner = Runner(cfg, tools["wrk"])
    measurements: list[Measurement] = []
    memory: dict[str, Any] | None = None
    if "main" in cfg.phases:
        print("warming up", flush=True)
        warm_up(runner, targets)
        measurements += run_main(runner, targets)
    if "auth" in cfg.phases:
        measurements += run_auth(runner, *auth_targets(servers, specs, run.tmp))
    if "memory" in cfg.phases:
        memory = run_memory(run, runner, servers, specs["mixed"])
    rows = report.summarise(measurements)
    return {
        "skipped": servers.skipped,
        "rows": rows,
        "ratios": report.ratios(rows),
        "goals": report.goals(rows, memory, cfg.connections),
        "memory": memory,
        "measurements": [m.as_dict() for m in measurements],
        "postgres_version": servers.postgres_version,
    }


def _finish_document(document: dict[str, Any], cfg: BenchConfig, tools: dict[str, Path]) -> None:
    """What is known only at the end: times, load, settings, versions, the code now."""
    document["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    document["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    document["config"] = config_dict(cfg)
    document["versions"] = versions(
        nginx_version(tools["nginx"]), wrk_version(tools["wrk"]), document["postgres_version"]
    )
    document["code_at_end"] = code_identity()


def main() -> int:
    """Run the benchmark; 0 when it completed, 130 when interrupted."""
    # Ctrl-C must clean up even when started from a shell that ignores SIGINT (`cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    cfg = load_config()
    tools = ensure_tools()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    document: dict[str, Any] = {"started_at": started, "quick": cfg.quick}
    try:
        with open_run(cfg, "relay-bench-") as run:
            print(f"bench: {'QUICK ' if cfg.quick else ''}run, work dir {run.tmp}", flush=True)
            document["machine"] = machine(run.tmp)
            document["code_at_start"] = code_identity()
            document.update(measure_all(run, tools))
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopped everything", file=sys.stderr)
        return 130
    except Stopped:
        print("\nbench: stopped by a signal; stopped everything", file=sys.stderr)
        raise
    _finish_document(document, cfg, tools)
    report.print_summary(document)
    if document["code_at_end"] != document["code_at_start"]:
        print("\nbench: WARNING: Relay's code changed during the run; the figures mix versions")
    paths = write_results(cfg, document)
    print(f"\nbench: results in {', '.join(str(p) for p in paths)}")
    if not cfg.complete:
        print("bench: latest.json left as it was (QUICK or partial run)")
    return 0
