"""`make bench`: measure Relay against a stub, a proxy hop and two baselines in one run.

Usage: `.venv/bin/python -m bench.run` (or `make bench`; QUICK=1 for a short
debugging run). Writes bench/results/<timestamp>.json and latest.json and
prints the table, the ratios and the goals of issue 5. Every process it starts
is stopped and the PostgreSQL database it creates is dropped, even on Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import report, wrk
from bench.config import BenchConfig, load_config
from bench.install import ensure_tools
from bench.machine import code_identity, machine, versions
from bench.measure import Measurement, Runner, run_auth, run_main, run_memory, warm_up
from bench.preflight import preflight
from bench.servers import Run, Servers, start_relay_sqlite, start_servers
from bench.stub import nginx_version
from bench.workloads import AUTH, CHAT, HISTORY, TOOLS, Target, write_auth_spec, write_lines
from bench.workloads import write_specs as write_spec_files

TARGET_NAMES = (
    "stub",
    "proxy",
    "ceiling",
    "ceiling-lean",
    "naive",
    "relay-sqlite",
    "relay-postgres",
)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the `finally` blocks clean up."""
    raise SystemExit(128 + signum)


def selected(cfg: BenchConfig) -> set[str]:
    names = set(TARGET_NAMES) if cfg.targets is None else set(cfg.targets)
    unknown = names - set(TARGET_NAMES)
    if unknown:
        raise SystemExit(f"bench: BENCH_TARGETS: unknown {sorted(unknown)}; use {TARGET_NAMES}")
    return names


def build_targets(servers: Servers, specs: dict[str, Path], tmp: Path) -> list[Target]:
    """Targets 1-5 in measuring order; the gateways get the same tokens as Relay."""
    sqlite = servers.relays.get("relay-sqlite")
    shared = write_lines(tmp / "naive.tokens", list(sqlite.tokens)) if sqlite else None
    out = [
        Target("stub", CHAT, servers.stub.url, specs[CHAT], shared),
        Target("proxy", CHAT, servers.stub.proxy_url, specs[CHAT], shared),
    ]
    for ceiling in ("ceiling", "ceiling-lean"):
        if ceiling in servers.baselines:
            url = servers.baselines[ceiling]
            out.append(Target(ceiling, TOOLS, url, specs[TOOLS], shared))
    if "naive" in servers.baselines:
        out.append(Target("naive", CHAT, servers.baselines["naive"], specs[CHAT], shared))
    for name, relay in servers.relays.items():
        tokens = write_lines(tmp / f"{name}.tokens", list(relay.tokens))
        out.extend(Target(name, e, relay.url, specs[e], tokens) for e in (CHAT, TOOLS, HISTORY))
    return out


def auth_targets(servers: Servers, targets: list[Target], tmp: Path) -> tuple[Target, Target]:
    relay = servers.relays["relay-sqlite"]
    tools = next(t for t in targets if t.name == "relay-sqlite" and t.endpoint == TOOLS)
    spec = write_auth_spec(tmp / "auth.spec", relay.api_keys)
    return tools, Target("relay-sqlite", AUTH, relay.url, spec, None)


def memory_phase(run: Run, runner: Runner, servers: Servers, spec: Path) -> dict[str, Any]:
    """A fresh Relay (SQLite), so request counts start at zero, stopped right after."""
    print("memory: starting a fresh relay-sqlite", flush=True)
    relay = start_relay_sqlite(run, servers.setup, "relay-memory")
    try:
        tokens = write_lines(run.tmp / "memory.tokens", list(relay.tokens))
        target = Target("relay-memory", "mixed", relay.url, spec, tokens)
        return run_memory(runner, target, relay.process.pid)
    finally:
        run.sup.stop(relay.process)


def measure_all(run: Run, tools: dict[str, Path]) -> dict[str, Any]:
    cfg = run.cfg
    needed = selected(cfg) | ({"relay-sqlite"} if "auth" in cfg.phases else set())
    servers = start_servers(run, tools["nginx"], needed)
    specs = write_spec_files(run.tmp)
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
        all_targets = build_targets(servers, specs, run.tmp)
        measurements += run_auth(runner, *auth_targets(servers, all_targets, run.tmp))
    if "memory" in cfg.phases:
        memory = memory_phase(run, runner, servers, specs["mixed"])
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


def config_dict(cfg: BenchConfig) -> dict[str, Any]:
    raw = dataclasses.asdict(cfg)
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in raw.items()}


def write_results(cfg: BenchConfig, document: dict[str, Any]) -> Path:
    """<timestamp>.json and latest.json, each written whole then renamed into place."""
    cfg.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = document["started_at"].replace(":", "").replace("-", "")[:15]
    path = cfg.results_dir / f"{stamp}{'-quick' if cfg.quick else ''}.json"
    text = json.dumps(document, indent=2, default=str) + "\n"
    for target in (path, cfg.results_dir / "latest.json"):
        partial = target.with_suffix(".json.tmp")
        partial.write_text(text)
        partial.replace(target)
    return path


def print_summary(document: dict[str, Any]) -> None:
    print()
    print(report.table(document["rows"]))
    print()
    print("Relay req/s over each baseline's (targets 1-4):")
    print(report.ratio_table(document["ratios"]))
    print()
    print("Goals of issue 5:")
    print(report.goal_table(document["goals"]))
    for reason in document["skipped"]:
        print(f"  skipped: {reason}")


def cleanup(run: Run) -> None:
    run.sup.stop_all()
    for step in reversed(run.cleanups):
        try:
            step()
        except Exception as exc:  # report and keep cleaning up
            print(f"bench: cleanup step failed: {exc}", file=sys.stderr)
    if run.cfg.keep_tmp:
        print(f"bench: kept {run.tmp}", file=sys.stderr)
    else:
        shutil.rmtree(run.tmp, ignore_errors=True)


def main() -> int:
    # Ctrl-C must clean up even when started from a shell that ignores SIGINT (`cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    cfg = load_config()
    tools = ensure_tools()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-", dir=cfg.tmp_root))
    run = Run(cfg, tmp)
    print(f"bench: {'QUICK ' if cfg.quick else ''}run, work dir {tmp}", flush=True)
    try:
        document: dict[str, Any] = {"started_at": started, "quick": cfg.quick}
        document["machine"] = machine(tmp)
        document["code_at_start"] = code_identity()
        document.update(measure_all(run, tools))
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything", file=sys.stderr)
        return 130
    except SystemExit:
        print("\nbench: stopped by a signal; stopping everything", file=sys.stderr)
        raise
    finally:
        cleanup(run)
    document["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    document["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    document["config"] = config_dict(cfg)
    document["versions"] = versions(
        nginx_version(tools["nginx"]), wrk.version(tools["wrk"]), document["postgres_version"]
    )
    document["code_at_end"] = code_identity()
    print_summary(document)
    if document["code_at_end"] != document["code_at_start"]:
        print("\nbench: WARNING: Relay's code changed during the run; the figures mix versions")
    print(f"\nbench: results in {write_results(cfg, document)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
