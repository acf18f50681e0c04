"""The result document's context, and where results go.

Figures from different machines, versions or code are not comparable; each
result keeps the machine, the versions and the code it measured next to its
numbers, which makes that visible instead of a matter of memory.

Every run writes `<UTC timestamp>[-quick].json` in the results directory
(gitignored: older runs live in git history, not in the tree). Only a
complete run (BenchConfig.complete) also replaces `latest.json`, the one
result kept in git and quoted by docs/BENCHMARKS.md, so a QUICK or partial
run can never overwrite it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.config import BenchConfig

PACKAGES = (
    "relay",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "aiohttp",
    "PyJWT",
    "orjson",
    "pydantic",
    "aiosqlite",
    "asyncpg",
    "bcrypt",
    "limits",
)
REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _filesystem(path: Path) -> str:
    """The filesystem type under `path` (tmpfs would make SQLite's fsync free)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, fstype, *_ = line.split()
        if str(path).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def machine(tmp: Path) -> dict[str, Any]:
    """CPU, memory, kernel, load average now, and the filesystem under the run's temp dir."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "tmp_dir_filesystem": _filesystem(tmp),
    }


def _git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()


def code_identity() -> dict[str, Any]:
    """HEAD plus a hash of uncommitted changes to tracked files: the code being measured.

    Taken when the servers start (Python imports Relay then) and again at the
    end; other people commit while a run lasts, and a run that straddles a
    change measures a mixture.
    """
    diff = _git("diff", "HEAD")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(diff),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None,
    }


def versions(nginx: str, wrk: str, postgres: str | None) -> dict[str, Any]:
    """Python's, SQLite's, the given tools' and each installed package's (None: not installed)."""
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "packages": packages,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres,
        "nginx": nginx,
        "wrk": wrk,
    }


def config_dict(cfg: BenchConfig) -> dict[str, Any]:
    """The run's settings as JSON-ready values (sets sorted)."""
    raw = dataclasses.asdict(cfg)
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in raw.items()}


def _write_whole(path: Path, text: str) -> None:
    """Write beside `path`, then rename: a reader never sees half a file."""
    partial = path.with_suffix(".json.tmp")
    partial.write_text(text)
    partial.replace(path)


def write_results(cfg: BenchConfig, document: dict[str, Any]) -> list[Path]:
    """The run's timestamped file, and latest.json when the run is complete; paths written."""
    cfg.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = document["started_at"].replace(":", "").replace("-", "")[:15]
    text = json.dumps(document, indent=2, default=str) + "\n"
    paths = [cfg.results_dir / f"{stamp}{'-quick' if cfg.quick else ''}.json"]
    if cfg.complete:
        paths.append(cfg.results_dir / "latest.json")
    for path in paths:
        _write_whole(path, text)
    return paths
