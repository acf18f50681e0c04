"""Medians per target, the ratios to the baselines, the goals of issue 5, and the tables.

Every goal compares figures from the same run, so a busy machine slows the
numerator and the denominator alike; absolute req/s are only context.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from bench.phases import Measurement
from bench.targets import CHAT, TOOLS

Row = dict[str, Any]
BASELINES = (
    ("stub", CHAT),
    ("proxy", CHAT),
    ("ceiling", TOOLS),
    ("ceiling-lean", TOOLS),
    ("naive", CHAT),
)
RELAYS = ("relay-sqlite", "relay-postgres")


def summarise(measurements: Iterable[Measurement]) -> list[Row]:
    """One row per (target, endpoint, connections): medians over rounds, errors summed."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.target.key, m.connections), []).append(m)
    rows = []
    for (key, connections), ms in groups.items():
        results = [m.result for m in ms]
        rows.append(
            {
                "key": key,
                "target": ms[0].target.name,
                "endpoint": ms[0].target.endpoint,
                "phase": ms[0].phase,
                "connections": connections,
                "rounds": len(ms),
                "rps": round(statistics.median(r.rps for r in results), 1),
                "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
                "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
                "rps_min": min(r.rps for r in results),
                "rps_max": max(r.rps for r in results),
                "requests": sum(r.requests for r in results),
                "socket_errors": sum(r.socket_errors for r in results),
                "non_2xx": sum(r.non_2xx for r in results),
            }
        )
    return rows


def find(rows: list[Row], target: str, endpoint: str, connections: int) -> Row | None:
    """The summary row of (target, endpoint, connections), or None if it was not measured."""
    for row in rows:
        if (row["target"], row["endpoint"], row["connections"]) == (target, endpoint, connections):
            return row
    return None


def ratios(rows: list[Row]) -> list[Row]:
    """Each Relay row's req/s over each baseline's (same connections)."""
    out = []
    for row in rows:
        if row["target"] not in RELAYS or row["phase"] != "main":
            continue
        entry: Row = {"key": row["key"], "connections": row["connections"]}
        for name, endpoint in BASELINES:
            base = find(rows, name, endpoint, row["connections"])
            entry[f"vs_{name}"] = round(row["rps"] / base["rps"], 3) if base else None
        out.append(entry)
    return out


def _goal(name: str, value: float | None, op: str, limit: float, note: str = "") -> Row:
    """A goal line; `ok` is None when its figures were not measured."""
    ok = None if value is None else (value >= limit if op == ">=" else value <= limit)
    shown = None if value is None else round(value, 3)
    return {"goal": name, "value": shown, "op": op, "limit": limit, "ok": ok, "note": note}


def _rps_ratio(rows: list[Row], a: tuple[str, str], b: tuple[str, str], c: int) -> float | None:
    top, bottom = find(rows, *a, c), find(rows, *b, c)
    return top["rps"] / bottom["rps"] if top and bottom else None


LEAN_NOTE = "a stricter reading of ours: the bare reply through Relay's own route class"


def goals(rows: list[Row], memory: Row | None, connections: tuple[int, ...]) -> list[Row]:
    """Issue 5's goals, from this run's rows and memory phase.

    Chat req/s over the naive gateway's (SQLite >= 0.7, PostgreSQL >= 0.5) and
    tools req/s over the ceiling's (>= 0.75) at each connection count; chat
    p99 at most 3 ms above the naive gateway's; tools p99 during token
    exchanges at most 1.5 x its quiet p99; RSS flat (last mark within +10 %
    of the first). Tools over the lean ceiling is reported too, with a note:
    it is a stricter reading of ours, not one of the issue's.
    """
    out = []
    for c in connections:
        for relay, limit in (("relay-sqlite", 0.7), ("relay-postgres", 0.5)):
            value = _rps_ratio(rows, (relay, CHAT), ("naive", CHAT), c)
            out.append(_goal(f"{relay} chat req/s / naive, c={c}", value, ">=", limit))
        for relay in RELAYS:
            for ceiling in ("ceiling", "ceiling-lean"):
                value = _rps_ratio(rows, (relay, TOOLS), (ceiling, TOOLS), c)
                note = LEAN_NOTE if ceiling == "ceiling-lean" else ""
                out.append(
                    _goal(f"{relay} tools req/s / {ceiling}, c={c}", value, ">=", 0.75, note)
                )
    low = min(connections)
    naive = find(rows, "naive", CHAT, low)
    for relay in RELAYS:
        chat = find(rows, relay, CHAT, low)
        added = chat["p99_ms"] - naive["p99_ms"] if chat and naive else None
        out.append(_goal(f"{relay} chat p99 - naive p99 (ms), c={low}", added, "<=", 3.0))
    quiet = find(rows, "relay-sqlite", f"{TOOLS} (quiet)", low)
    busy = find(rows, "relay-sqlite", f"{TOOLS} (during token exchanges)", low)
    value = busy["p99_ms"] / quiet["p99_ms"] if quiet and busy else None
    out.append(_goal(f"tools p99 during token exchanges / quiet, c={low}", value, "<=", 1.5))
    out.append(_memory_goal(memory))
    return out


def _memory_goal(memory: Row | None) -> Row:
    marks = memory["marks"] if memory else []
    if len(marks) < 2 or not all(m["reached"] for m in marks):
        return _goal("RSS last mark / first mark", None, "<=", 1.1, "marks not reached")
    first, last = marks[0], marks[-1]
    growth = last["rss_kib"] / first["rss_kib"]
    note = f"{first['requests']} req: {first['rss_kib']} KiB, {last['requests']} req: "
    note += f"{last['rss_kib']} KiB (flat means within +-10 %)"
    return _goal("RSS last mark / first mark", growth, "<=", 1.1, note)


def table(rows: list[Row]) -> str:
    """Every summary row: req/s, spread across rounds, p50, p99, errors."""
    header = (
        f"{'target':<52} {'conn':>4} {'req/s':>9} {'spread':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        errors = f"{r['socket_errors']}/{r['non_2xx']}"
        spread = (r["rps_max"] - r["rps_min"]) / r["rps"] if r["rps"] else 0.0
        lines.append(
            f"{r['key']:<52} {r['connections']:>4} {r['rps']:>9.1f} {spread:>7.0%} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {errors:>7}"
        )
    lines.append("medians over rounds; spread = (max - min) / median req/s, a noise gauge;")
    lines.append("errors = socket errors / non-2xx answers, summed over rounds")
    return "\n".join(lines)


def ratio_table(entries: list[Row]) -> str:
    """Each Relay row's req/s over each baseline's."""
    header = f"{'Relay row':<40} {'conn':>4}" + "".join(f" {'/' + n:>13}" for n, _ in BASELINES)
    lines = [header, "-" * len(header)]
    for e in entries:
        cells = "".join(
            f" {e[f'vs_{n}']:>13.3f}" if e[f"vs_{n}"] is not None else f" {'-':>13}"
            for n, _ in BASELINES
        )
        lines.append(f"{e['key']:<40} {e['connections']:>4}{cells}")
    return "\n".join(lines)


def goal_table(entries: list[Row]) -> str:
    """One PASS / MISS / n/a line per goal, with its note."""
    lines = []
    for g in entries:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[g["ok"]]
        value = "-" if g["value"] is None else f"{g['value']:.3f}"
        lines.append(f"  [{verdict}] {g['goal']:<52} {value:>8} {g['op']} {g['limit']}")
        if g["note"]:
            lines.append(f"         {g['note']}")
    return "\n".join(lines)


def print_summary(document: dict[str, Any]) -> None:
    """The tables and goals of a finished run's result document, to stdout."""
    print()
    print(table(document["rows"]))
    print()
    print("Relay req/s over each baseline's:")
    print(ratio_table(document["ratios"]))
    print()
    print("Goals of issue 5:")
    print(goal_table(document["goals"]))
    for reason in document["skipped"]:
        print(f"  skipped: {reason}")
