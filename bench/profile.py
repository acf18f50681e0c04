"""Profile one Relay endpoint under wrk load with py-spy, to see where the time goes.

Usage: .venv/bin/python -m bench.profile [chat|tools|history] [sqlite|postgres] [seconds]
py-spy is not a dependency of Relay: `.venv/bin/pip install py-spy` first.
Writes the collapsed stacks (GIL-holding samples only) to bench/results/profile-*,
and prints the share of samples in each part of the stack (inclusive) and the
hottest leaf functions (self time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import wrk
from bench.config import load_config
from bench.install import ensure_tools
from bench.run import cleanup
from bench.servers import Run, start_servers
from bench.workloads import CHAT, HISTORY, TOOLS, Target, write_lines, write_specs

ENDPOINTS = {"chat": CHAT, "tools": TOOLS, "history": HISTORY}
# Substrings of a frame ("function (file:line)") that mark a part of the stack.
PARTS = {
    "access log + logging": ("logging/__init__", "observability/logging"),
    "request middleware": ("relay/middleware",),
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
    stacks: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def summary(stacks: Counter[str], seconds: int) -> str:
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


def record(pid: int, seconds: int, out: Path) -> Path:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("bench.profile: py-spy missing; `.venv/bin/pip install py-spy`")
    raw = out.with_suffix(".txt")
    # --gil: only samples holding the GIL, i.e. the Python CPU time that caps one
    # worker; py-spy's idle detection misses threads parked in queue.get().
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE_HZ)]
    argv += ["--gil", "--format", "raw", "--output", str(raw)]
    subprocess.run(argv, check=True, timeout=seconds + 60, capture_output=True)
    return raw


def main() -> int:
    endpoint = ENDPOINTS[sys.argv[1] if len(sys.argv) > 1 else "chat"]
    store = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    cfg = load_config()
    tools = ensure_tools()
    run = Run(cfg, Path(tempfile.mkdtemp(prefix="relay-profile-", dir=cfg.tmp_root)))
    name = f"relay-{store}"
    try:
        servers = start_servers(run, tools["nginx"], {name})
        relay = servers.relays[name]
        spec = write_specs(run.tmp)[endpoint]
        tokens = write_lines(run.tmp / "tokens", list(relay.tokens))
        target = Target(name, endpoint, relay.url, spec, tokens)
        load = wrk.Load(f"{relay.url}/", spec, tokens, min(cfg.connections), seconds + 4, 2)
        process = wrk.start(tools["wrk"], load)
        cfg.results_dir.mkdir(parents=True, exist_ok=True)
        out = cfg.results_dir / f"profile-{store}-{endpoint.split('/')[-1]}"
        raw = record(relay.process.pid, seconds, out)
        print(f"{target.key}: {wrk.finish(process, load)}")
    finally:
        cleanup(run)
    print(summary(collapsed_counts(raw), seconds))
    print(f"collapsed stacks: {raw} (feed to flamegraph.pl or speedscope)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
