"""Benchmark settings, read from the environment so `make bench` needs no flags.

QUICK=1 shortens everything for debugging the harness; its figures are not
meant to be quoted. Every other knob has a BENCH_ variable (docs/BENCHMARKS.md
lists them); `load_config` is the only place that reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).parent
RESULTS_DIR = BENCH_DIR / "results"
PHASES = frozenset({"main", "auth", "memory"})
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
# High enough never to trip. Per second, not per minute: the `limits` memory
# storage keeps one entry per request for the whole window, so a per-minute
# window would grow to a length no real limit allows and inflate Relay's RSS
# in the memory phase.
DEFAULT_RATE_LIMIT = "1000000/second"


@dataclass(frozen=True)
class BenchConfig:
    """Every setting of one benchmark run; built once, never changed."""

    quick: bool
    duration_s: int
    rounds: int
    warmup_s: int
    connections: tuple[int, ...]
    threads: int
    auth_connections: int
    memory_marks: tuple[int, ...]
    memory_max_s: int
    nginx_workers: int
    pg_admin_url: str | None
    clients: int
    tokens_per_client: int
    phases: frozenset[str]
    targets: frozenset[str] | None
    rate_limit: str
    relay_env: dict[str, str]
    relay_log_dir: Path | None
    results_dir: Path
    tmp_root: Path | None
    keep_tmp: bool
    baseline_tuned_gc: bool

    @property
    def complete(self) -> bool:
        """True for a run whose figures stand for the benchmark: full length, nothing left out.

        Only such a run replaces results/latest.json, the file the docs quote.
        """
        return not self.quick and self.phases == PHASES and self.targets is None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    return int(raw) if raw else default


def _ints(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    return tuple(int(part) for part in raw.split(",") if part.strip()) if raw else default


def _names(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = env.get(name, "").strip()
    return frozenset(p.strip() for p in raw.split(",") if p.strip()) if raw else None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "") not in ("", "0")


def _pairs(raw: str) -> dict[str, str]:
    """BENCH_RELAY_ENV="DATABASE_POOL_SIZE=20,CLIENT_CACHE_TTL=60" for experiments."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def load_config(env: Mapping[str, str] = os.environ) -> BenchConfig:
    """The run's settings; exits with a message on an unknown phase."""
    quick = _flag(env, "QUICK")
    phases = _names(env, "BENCH_PHASES") or PHASES
    unknown = phases - PHASES
    if unknown:
        raise SystemExit(f"bench: BENCH_PHASES: unknown {sorted(unknown)}; use {sorted(PHASES)}")
    pg = env.get("BENCH_PG_URL", DEFAULT_PG).strip()
    marks = (1_000, 5_000) if quick else (10_000, 100_000)
    return BenchConfig(
        quick=quick,
        duration_s=_int(env, "BENCH_DURATION", 2 if quick else 10),
        rounds=_int(env, "BENCH_ROUNDS", 1 if quick else 3),
        warmup_s=_int(env, "BENCH_WARMUP", 1 if quick else 3),
        connections=_ints(env, "BENCH_CONNECTIONS", (16, 64)),
        threads=_int(env, "BENCH_THREADS", 2),
        auth_connections=_int(env, "BENCH_AUTH_CONNECTIONS", 4),
        memory_marks=_ints(env, "BENCH_MEMORY_MARKS", marks),
        memory_max_s=_int(env, "BENCH_MEMORY_MAX_SECONDS", 60 if quick else 600),
        nginx_workers=_int(env, "BENCH_NGINX_WORKERS", 1),
        pg_admin_url=None if pg in ("", "off", "none") else pg,
        clients=_int(env, "BENCH_CLIENTS", 4),
        tokens_per_client=_int(env, "BENCH_TOKENS_PER_CLIENT", 2),
        phases=phases,
        targets=_names(env, "BENCH_TARGETS"),
        rate_limit=env.get("BENCH_RATE_LIMIT", "").strip() or DEFAULT_RATE_LIMIT,
        relay_env=_pairs(env.get("BENCH_RELAY_ENV", "")),
        relay_log_dir=_path(env, "BENCH_RELAY_LOG_DIR"),
        results_dir=_path(env, "BENCH_RESULTS_DIR") or RESULTS_DIR,
        tmp_root=_path(env, "BENCH_TMPDIR"),
        keep_tmp=_flag(env, "BENCH_KEEP_TMP"),
        baseline_tuned_gc=_flag(env, "BENCH_BASELINE_TUNED_GC"),
    )
