"""`python -m bench profile [chat|tools|history] [sqlite|postgres] [SECONDS]`: where time goes.

Starts the stub and one Relay, puts wrk load on one endpoint and records
Relay with py-spy (not a dependency of Relay: `.venv/bin/pip install py-spy`
first). Writes the collapsed stacks (GIL-holding samples only) to
bench/results/profile-<store>-<endpoint>.txt (gitignored), and prints the
share of samples in each part of the stack (inclusive) and the hottest leaf
functions (self time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import wrk
from bench.config import load_config
from bench.servers import open_run, start_servers
from bench.targets import CHAT, HISTORY, TOOLS, Target, write_lines, write_specs
from bench.tools import ensure_tools

ENDPOINTS = {"chat": CHAT, "tools": TOOLS, "history": HISTORY}
# Substrings of a frame ("function (file:line)") that mark a part of the stack;
# the middleware has two so it is found before and after its move to relay/web.
PARTS = {
    "access log + logging": ("logging/__init__", "observability/logging"),
    "request middleware": ("relay/middleware", "relay/web/middleware"),
    "JWT verify": ("jwt/",),
    "rate limits": ("limits/", "relay/limits"),
    "metrics": ("prometheus_client", "observability/metrics"),
    "SQLite store": ("storage/sqlite",),
    "PostgreSQL (asyncpg)": ("asyncpg", "storage/postgres"),
    "backend HTTP (aiohttp)": ("aiohttp/",),
    "pydantic validation": ("pydantic",),
    "FastAPI routing + deps": ("fastapi/routing", "fastapi/dependencies"),
    "starlette": ("starlette/",),
    "uvicorn + httptools": ("uvicorn/",),
    "json (orjson)": ("orjson",),
}
TOP = 25
RATE_HZ = 250


def collapsed_counts(raw: Path) -> Counter[str]:
    """Samples per stack, from py-spy's raw (collapsed) output."""
    stacks: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def summary(stacks: Counter[str], seconds: int) -> str:
    """How busy the GIL was, the share of samples per part, and the hottest leaf frames."""
    total = sum(stacks.values()) or 1
    parts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaves[stack.split(";")[-1]] += count
        for part, needles in PARTS.items():
            if any(n in stack for n in needles):
                parts[part] += count
    busy = total / (RATE_HZ * seconds)
    lines = [f"{total} samples: a thread held the GIL {busy:.0%} of the time (100 %: CPU-bound)"]
    lines.append("share of samples whose stack contains each part:")
    lines += [f"  {share / total:6.1%}  {part}" for part, share in parts.most_common()]
    lines.append("hottest leaf frames (self time):")
    lines += [f"  {share / total:6.1%}  {leaf}" for leaf, share in leaves.most_common(TOP)]
    return "\n".join(lines)


def py_spy() -> str:
    """py-spy's path (the venv's first); exits with how to install it when missing."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("bench profile: py-spy missing; `.venv/bin/pip install py-spy`")
    return spy


def record(spy: str, pid: int, seconds: int, out: Path) -> Path:
    """Record `pid` with py-spy for `seconds` into `out`.txt and return that path."""
    raw = out.with_suffix(".txt")
    # --gil: only samples holding the GIL, i.e. the Python CPU time that caps one
    # worker; py-spy's idle detection misses threads parked in queue.get().
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE_HZ)]
    argv += ["--gil", "--format", "raw", "--output", str(raw)]
    subprocess.run(argv, check=True, timeout=seconds + 60, capture_output=True)
    return raw


def main(endpoint_name: str = "chat", store: str = "sqlite", seconds: int = 15) -> int:
    """Profile relay-`store`'s `endpoint_name` for `seconds` and print the summary."""
    endpoint = ENDPOINTS[endpoint_name]
    spy = py_spy()
    cfg = load_config()
    tools = ensure_tools()
    name = f"relay-{store}"
    with open_run(cfg, "relay-profile-") as run:
        servers = start_servers(run, tools["nginx"], {name})
        if name not in servers.relays:
            raise SystemExit(f"bench profile: {name} did not start ({'; '.join(servers.skipped)})")
        relay = servers.relays[name]
        spec = write_specs(run.tmp)[endpoint]
        tokens = write_lines(run.tmp / "tokens", list(relay.tokens))
        target = Target(name, endpoint, relay.url, spec, tokens)
        # wrk outlasts the recording so py-spy never samples a Relay going idle.
        load = wrk.Load(f"{relay.url}/", spec, tokens, min(cfg.connections), seconds + 4, 2)
        cfg.results_dir.mkdir(parents=True, exist_ok=True)
        out = cfg.results_dir / f"profile-{store}-{endpoint.split('/')[-1]}"
        process = wrk.start(tools["wrk"], load)
        try:
            raw = record(spy, relay.process.pid, seconds, out)
        finally:
            result = wrk.finish(process, load)
        print(f"{target.key}: {result}")
    print(summary(collapsed_counts(raw), seconds))
    print(f"collapsed stacks: {raw} (feed to flamegraph.pl or speedscope)")
    return 0
