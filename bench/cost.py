"""CPU time per request of each server: a steadier figure than req/s to work with.

Usage: .venv/bin/python -m bench.cost [seconds] [rounds]
(BENCH_TARGETS=relay-sqlite measures only that Relay, beside both baselines.)
Starts the stub, the baselines and Relay (SQLite, and PostgreSQL when it
answers), puts wrk load (16 connections) on each endpoint in turn and reads the
server's user + system CPU time (its children's too) from /proc before and
after. Req/s on two cores shared with wrk and nginx moves with everything else
on the machine; the CPU a server spends per request does not, so this is the
figure to compare while changing code. It prints, for each target, µs of CPU
per request and the ratio to its baseline (the ceiling for tools and history,
the naive gateway for chat).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import wrk
from bench.config import load_config
from bench.install import ensure_tools
from bench.procs import child_pids
from bench.run import cleanup
from bench.servers import Run, start_servers
from bench.workloads import CHAT, HISTORY, TOOLS, write_lines, write_specs

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: str | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds (stat fields 14, 15) of a process or one of its threads."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rpartition(")")[2].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread (the event loop), of all other threads, of children."""
    seconds = {"main user": 0.0, "main system": 0.0, "other threads": 0.0, "children": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        user, system = cpu_seconds(pid, task.name)
        if task.name == str(pid):
            seconds["main user"] += user
            seconds["main system"] += system
        else:
            seconds["other threads"] += user + system
    for child in child_pids(pid):
        seconds["children"] += sum(cpu_seconds(child))
    return seconds


def measure(
    tool: Path, url: str, pid: int, spec: Path, tokens: Path | None, seconds: int
) -> dict[str, float]:
    """µs of CPU per request, in all and per thread; and wrk's req/s."""
    before = thread_seconds(pid)
    result = wrk.run(tool, wrk.Load(f"{url}/", spec, tokens, 16, seconds, 2))
    if result.non_2xx or result.socket_errors:
        raise SystemExit(f"bench.cost: errors from {url}: {result}")
    after = thread_seconds(pid)
    spent = {k: (v - before.get(k, 0.0)) / result.requests * 1e6 for k, v in after.items()}
    cost = {"all": sum(spent.values()), **{k: v for k, v in spent.items() if v >= 1}}
    return {**cost, "req/s": result.rps}


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    names = {name for sample in samples for name in sample}
    return {n: statistics.median(s.get(n, 0.0) for s in samples) for n in sorted(names)}


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cfg = load_config()
    tools = ensure_tools()
    run = Run(cfg, Path(tempfile.mkdtemp(prefix="relay-cost-", dir=cfg.tmp_root)))
    try:
        relays = os.environ.get("BENCH_TARGETS", "relay-sqlite,relay-postgres").split(",")
        needed = {"ceiling", "ceiling-lean", "naive", *relays}
        servers = start_servers(run, tools["nginx"], needed)
        specs = write_specs(run.tmp)
        pids = {name: process.pid for name, process in run.sup.children}
        pids |= {name: relay.process.pid for name, relay in servers.relays.items()}
        jobs: list[tuple[str, str, str, Path | None]] = [
            ("ceiling", TOOLS, servers.baselines["ceiling"], None),
            ("ceiling-lean", TOOLS, servers.baselines["ceiling-lean"], None),
            ("naive", CHAT, servers.baselines["naive"], None),
        ]
        for name, relay in servers.relays.items():
            tokens = write_lines(run.tmp / f"{name}.tokens", list(relay.tokens))
            jobs += [(name, e, relay.url, tokens) for e in (CHAT, TOOLS, HISTORY)]
        naive_tokens = write_lines(
            run.tmp / "naive.tokens", list(next(iter(servers.relays.values())).tokens)
        )
        samples: dict[str, list[dict[str, float]]] = {}
        for _ in range(rounds):
            for name, endpoint, url, own_tokens in jobs:
                chosen = naive_tokens if name == "naive" else own_tokens
                cost = measure(tools["wrk"], url, pids[name], specs[endpoint], chosen, seconds)
                samples.setdefault(f"{name} {endpoint}", []).append(cost)
    finally:
        cleanup(run)
    medians = {key: _medians(values) for key, values in samples.items()}
    base = {CHAT: medians[f"naive {CHAT}"]["all"], TOOLS: medians[f"ceiling {TOOLS}"]["all"]}
    base[HISTORY] = base[TOOLS]
    for key, cost in medians.items():
        ratio = base[key.split(" ", 1)[1]] / cost["all"]
        threads = ", ".join(f"{k} {v:.0f}" for k, v in cost.items() if k not in ("all", "req/s"))
        line = f"{key:32} {cost['all']:6.0f} µs/request  baseline/this {ratio:4.2f}"
        print(f"{line}  {cost['req/s']:7.0f} req/s  ({threads})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
