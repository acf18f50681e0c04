"""`python -m bench load` (`make load`): mixed requests against a real Relay, as deployed.

Where `run` isolates each endpoint to compare Relay with its baselines, this
workload checks Relay as a production instance would run: its own process on
PostgreSQL (a fresh database, dropped after) and Redis, bcrypt at a real
cost, and a mix of token exchanges, chat, history, search and tools from many
connections at once. Limits are raised so none trips, so any answer but 2xx
is unexpected; the run is bounded in time. It prints the answers by kind and
Relay's resident memory before and after, writes them to
bench/results/load-<UTC timestamp>.json (gitignored), and exits 1 on an
unexpected answer or a run that did not finish its requests.

Environment: LOAD_REQUESTS (20000), LOAD_CONNECTIONS (64), LOAD_SECONDS (600),
LOAD_POSTGRES (admin URL), LOAD_REDIS.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench import postgres
from bench.config import DEFAULT_PG, RESULTS_DIR
from tests.support.processes import create_client, relay_env, relay_instances, rss_kib

CLIENTS = 16
# Percent of requests of each kind.
MIX = (("token", 5), ("chat", 40), ("history", 25), ("search", 10), ("tools", 20))
WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
)
HIGH = "100000000/minute"


@dataclass(frozen=True)
class LoadConfig:
    """How much load, for how long, against which services."""

    total: int
    connections: int
    deadline_s: float
    admin_url: str
    redis_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LoadConfig:
        """The LOAD_ variables, with defaults for any unset."""
        return cls(
            total=int(env.get("LOAD_REQUESTS", "20000")),
            connections=int(env.get("LOAD_CONNECTIONS", "64")),
            deadline_s=float(env.get("LOAD_SECONDS", "600")),
            admin_url=env.get("LOAD_POSTGRES", DEFAULT_PG),
            redis_url=env.get("LOAD_REDIS", "redis://127.0.0.1:6379/0"),
        )


class Load:
    """The clients' traffic: `connections` workers sharing one request budget."""

    def __init__(self, cfg: LoadConfig, url: str, keys: list[str], tokens: list[str]) -> None:
        self.cfg = cfg
        self.url = url
        self.keys = keys
        self.tokens = tokens
        self.kinds: Counter[str] = Counter()
        self.sent = 0
        self.kinds_list = [k for k, weight in MIX for _ in range(weight)]

    def _request(self, rng: random.Random, kind: str) -> tuple[str, str, dict[str, Any]]:
        """(method, URL, keyword arguments of aiohttp's request) for one request of `kind`.

        Draws from `rng` in the same order for every kind, so a seed always
        gives the same sequence of requests.
        """
        who = rng.randrange(len(self.keys))
        message = " ".join(rng.choices(WORDS, k=8))
        auth = {"headers": {"Authorization": f"Bearer {self.tokens[who]}"}}
        if kind == "token":
            return "POST", f"{self.url}/auth/token", {"json": {"api_key": self.keys[who]}}
        if kind == "chat":
            return "POST", f"{self.url}/v1/chat", {"json": {"message": message}, **auth}
        if kind == "history":
            return "GET", f"{self.url}/v1/history?limit=20", auth
        if kind == "search":
            return "GET", f"{self.url}/v1/history/search?q={rng.choice(WORDS)}", auth
        return "GET", f"{self.url}/v1/tools", auth

    async def one(self, session: aiohttp.ClientSession, rng: random.Random) -> None:
        """Send one request of a random kind and count its answer as "<kind> <status>"."""
        kind = rng.choice(self.kinds_list)
        method, url, options = self._request(rng, kind)
        try:
            async with session.request(method, url, **options) as response:
                await response.read()
                self.kinds[f"{kind} {response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.kinds[f"{kind} {type(exc).__name__}"] += 1

    async def worker(self, session: aiohttp.ClientSession, seed: int, deadline: float) -> None:
        """Send requests until the budget is spent or the deadline passes."""
        rng = random.Random(seed)
        while self.sent < self.cfg.total and time.monotonic() < deadline:
            self.sent += 1
            await self.one(session, rng)

    async def run(self) -> float:
        """Send the whole budget (or until the deadline); return the seconds it took."""
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=self.cfg.connections)
        deadline = started + self.cfg.deadline_s
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(
                *(self.worker(session, i, deadline) for i in range(self.cfg.connections))
            )
        return time.monotonic() - started


async def tokens_for(url: str, keys: list[str]) -> list[str]:
    """One access token per API key."""
    async with aiohttp.ClientSession() as session:
        tokens = []
        for key in keys:
            async with session.post(f"{url}/auth/token", json={"api_key": key}) as response:
                tokens.append((await response.json())["access_token"])
        return tokens


def _relay_settings(cfg: LoadConfig, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": cfg.redis_url,
        "RATE_LIMIT_DEFAULT": HIGH,
        "RATE_LIMIT_CHAT": HIGH,
        "RATE_LIMIT_AUTH_FAILURES": HIGH,
        # A real bcrypt check, unlike the tests' minimal cost, yet below the
        # default so token exchanges do not set the pace of the whole run.
        "BCRYPT_ROUNDS": "10",
    }


def report(cfg: LoadConfig, load: Load, seconds: float, before: int, after: int) -> int:
    """Print and save the result; 1 when anything unexpected happened, else 0."""
    done = sum(load.kinds.values())
    unexpected = {k: v for k, v in load.kinds.items() if not k.split()[1].startswith("2")}
    result: dict[str, Any] = {
        "requests": done,
        "seconds": round(seconds, 1),
        "requests_per_second": round(done / seconds, 1),
        "connections": cfg.connections,
        "answers": dict(sorted(load.kinds.items())),
        "unexpected": unexpected,
        "rss_kib_before": before,
        "rss_kib_after": after,
    }
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS_DIR / f"load-{stamp}.json").write_text(text + "\n")
    return 1 if unexpected or done < cfg.total else 0


def main() -> int:
    """Run the workload against a Relay on a throwaway database; the exit status of `report`."""
    cfg = LoadConfig.from_env()
    name = postgres.database_name("relay_load")
    postgres.create_database(cfg.admin_url, name)
    env = relay_env(_relay_settings(cfg, postgres.database_url(cfg.admin_url, name)))
    try:
        with relay_instances(env, 1) as (instance,):
            keys = [create_client(env, f"load{i}")[1] for i in range(CLIENTS)]
            tokens = asyncio.run(tokens_for(instance.url, keys))
            before = rss_kib(instance.process.pid)
            load = Load(cfg, instance.url, keys, tokens)
            seconds = asyncio.run(load.run())
            after = rss_kib(instance.process.pid)
    finally:
        postgres.drop_database(cfg.admin_url, name)
    return report(cfg, load, seconds, before, after)
