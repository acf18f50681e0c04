"""`python -m bench cost [SECONDS] [ROUNDS]`: CPU time per request of each server under load.

Req/s on a small machine shared with wrk and nginx moves with everything else
on it; the CPU a server spends per request does not, so this is the figure to
compare while changing code. It starts the stub, the baselines and Relay
(SQLite, and PostgreSQL when it answers; BENCH_TARGETS=relay-sqlite names the
Relays to measure), puts wrk load (16 connections) on each endpoint in turn,
and reads the server's user + system CPU time (its threads' and children's)
from /proc before and after. It prints, per target and endpoint, µs of CPU per
request and the ratio of its baseline's cost to its own (the ceiling for tools
and history, the naive gateway for chat).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench import wrk
from bench.config import load_config
from bench.processes import child_pids
from bench.servers import Run, Servers, open_run, start_servers
from bench.targets import CHAT, HISTORY, TOOLS, write_lines, write_specs
from bench.tools import ensure_tools

TICKS = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 16
RELAYS = ("relay-sqlite", "relay-postgres")


@dataclass(frozen=True)
class Job:
    """One server (by name and pid) and one endpoint on it, with the tokens to send."""

    name: str
    pid: int
    endpoint: str
    url: str
    tokens: Path | None

    @property
    def key(self) -> str:
        """The label `<name> <endpoint>`, as bench.targets labels targets."""
        return f"{self.name} {self.endpoint}"


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


def measure(wrk_path: Path, job: Job, spec: Path, seconds: int) -> dict[str, float]:
    """µs of CPU per request, in all ("all") and per part over 1 µs; and wrk's "req/s"."""
    before = thread_seconds(job.pid)
    result = wrk.run(wrk_path, wrk.Load(f"{job.url}/", spec, job.tokens, CONNECTIONS, seconds, 2))
    if result.non_2xx or result.socket_errors:
        raise SystemExit(f"bench cost: errors from {job.url}: {result}")
    after = thread_seconds(job.pid)
    spent = {k: (v - before.get(k, 0.0)) / result.requests * 1e6 for k, v in after.items()}
    cost = {"all": sum(spent.values()), **{k: v for k, v in spent.items() if v >= 1}}
    return {**cost, "req/s": result.rps}


def jobs_for(run: Run, servers: Servers) -> list[Job]:
    """The baselines' jobs, then chat, tools and history on each Relay.

    The naive gateway gets the first Relay's tokens: it checks them with the same secret.
    """
    tmp = run.tmp
    pids = {name: process.pid for name, process in run.sup.children}
    first = next(iter(servers.relays.values()))
    naive_tokens = write_lines(tmp / "naive.tokens", list(first.tokens))
    jobs = [
        Job("ceiling", pids["ceiling"], TOOLS, servers.baselines["ceiling"], None),
        Job("ceiling-lean", pids["ceiling-lean"], TOOLS, servers.baselines["ceiling-lean"], None),
        Job("naive", pids["naive"], CHAT, servers.baselines["naive"], naive_tokens),
    ]
    for name, relay in servers.relays.items():
        tokens = write_lines(tmp / f"{name}.tokens", list(relay.tokens))
        pid = relay.process.pid
        jobs += [Job(name, pid, e, relay.url, tokens) for e in (CHAT, TOOLS, HISTORY)]
    return jobs


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    names = {name for sample in samples for name in sample}
    return {n: statistics.median(s.get(n, 0.0) for s in samples) for n in sorted(names)}


def print_costs(medians: dict[str, dict[str, float]]) -> None:
    """One line per job: µs per request, baseline cost / this cost, req/s, and the parts."""
    base = {CHAT: medians[f"naive {CHAT}"]["all"], TOOLS: medians[f"ceiling {TOOLS}"]["all"]}
    base[HISTORY] = base[TOOLS]
    for key, cost in medians.items():
        ratio = base[key.split(" ", 1)[1]] / cost["all"]
        parts = ", ".join(f"{k} {v:.0f}" for k, v in cost.items() if k not in ("all", "req/s"))
        line = f"{key:32} {cost['all']:6.0f} µs/request  baseline/this {ratio:4.2f}"
        print(f"{line}  {cost['req/s']:7.0f} req/s  ({parts})")


def main(seconds: int = 5, rounds: int = 3) -> int:
    """Measure every job `rounds` times, interleaved, for `seconds` each; print the medians."""
    cfg = load_config()
    tools = ensure_tools()
    relays = set(cfg.targets & set(RELAYS) if cfg.targets else RELAYS)
    samples: dict[str, list[dict[str, float]]] = {}
    with open_run(cfg, "relay-cost-") as run:
        servers = start_servers(run, tools["nginx"], {"ceiling", "ceiling-lean", "naive", *relays})
        if not servers.relays:
            raise SystemExit(f"bench cost: no Relay started ({'; '.join(servers.skipped)})")
        specs = write_specs(run.tmp)
        jobs = jobs_for(run, servers)
        for _ in range(rounds):
            for job in jobs:
                cost = measure(tools["wrk"], job, specs[job.endpoint], seconds)
                samples.setdefault(job.key, []).append(cost)
    print_costs({key: _medians(values) for key, values in samples.items()})
    return 0
