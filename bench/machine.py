"""The machine and software versions a result was measured on, saved with it.

Figures from different machines or versions are not comparable; keeping these
next to the numbers makes that visible instead of a matter of memory.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

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
