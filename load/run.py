"""`make load`: 20,000 mixed requests at 64 connections against a real Relay.

Relay runs as its own process on PostgreSQL (a fresh database, dropped after)
and Redis, like a production instance. The run is bounded in time; it prints
answers by kind (anything but 2xx is unexpected: limits are raised so none
trips) and Relay's resident memory before and after.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.multi.processes import relay_cli, relay_env, relay_instances

TOTAL = int(os.environ.get("LOAD_REQUESTS", "20000"))
CONNECTIONS = int(os.environ.get("LOAD_CONNECTIONS", "64"))
DEADLINE = float(os.environ.get("LOAD_SECONDS", "600"))
CLIENTS = 16
ADMIN_URL = os.environ.get("LOAD_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LOAD_REDIS", "redis://127.0.0.1:6379/0")
MIX = [("token", 5), ("chat", 40), ("history", 25), ("search", 10), ("tools", 20)]
WORDS = [
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
]
HIGH = "100000000/minute"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def with_database(name: str, sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql.format(name=name))
    finally:
        await conn.close()


class Load:
    def __init__(self, url: str, keys: list[str], tokens: list[str]) -> None:
        self.url = url
        self.keys = keys
        self.tokens = tokens
        self.kinds: Counter[str] = Counter()
        self.sent = 0
        self.kinds_list = [k for k, weight in MIX for _ in range(weight)]

    async def one(self, session: aiohttp.ClientSession, rng: random.Random) -> None:
        kind = rng.choice(self.kinds_list)
        who = rng.randrange(len(self.keys))
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        words = " ".join(rng.choices(WORDS, k=8))
        if kind == "token":
            call = session.post(f"{self.url}/auth/token", json={"api_key": self.keys[who]})
        elif kind == "chat":
            call = session.post(f"{self.url}/v1/chat", json={"message": words}, headers=headers)
        elif kind == "history":
            call = session.get(f"{self.url}/v1/history?limit=20", headers=headers)
        elif kind == "search":
            call = session.get(
                f"{self.url}/v1/history/search?q={rng.choice(WORDS)}", headers=headers
            )
        else:
            call = session.get(f"{self.url}/v1/tools", headers=headers)
        try:
            async with call as response:
                await response.read()
                self.kinds[f"{kind} {response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.kinds[f"{kind} {type(exc).__name__}"] += 1

    async def worker(self, session: aiohttp.ClientSession, seed: int, deadline: float) -> None:
        rng = random.Random(seed)
        while self.sent < TOTAL and time.monotonic() < deadline:
            self.sent += 1
            await self.one(session, rng)

    async def run(self) -> float:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(
                *(self.worker(session, i, started + DEADLINE) for i in range(CONNECTIONS))
            )
        return time.monotonic() - started


async def tokens_for(url: str, keys: list[str]) -> list[str]:
    async with aiohttp.ClientSession() as session:
        tokens = []
        for key in keys:
            async with session.post(f"{url}/auth/token", json={"api_key": key}) as response:
                tokens.append((await response.json())["access_token"])
        return tokens


def main() -> int:
    name = f"relay_load_{uuid.uuid4().hex[:8]}"
    asyncio.run(with_database(name, 'CREATE DATABASE "{name}"'))
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    env = relay_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "RATE_LIMIT_DEFAULT": HIGH,
            "RATE_LIMIT_CHAT": HIGH,
            "RATE_LIMIT_AUTH_FAILURES": HIGH,
            "BCRYPT_ROUNDS": "10",
        }
    )
    try:
        with relay_instances(env, 1) as (instance,):
            keys = [
                str(relay_cli(env, "clients", "create", "--name", f"load{i}")["api_key"])
                for i in range(CLIENTS)
            ]
            tokens = asyncio.run(tokens_for(instance.url, keys))
            before = rss_kib(instance.process.pid)
            load = Load(instance.url, keys, tokens)
            seconds = asyncio.run(load.run())
            after = rss_kib(instance.process.pid)
    finally:
        asyncio.run(with_database(name, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return report(load, seconds, before, after)


def report(load: Load, seconds: float, before: int, after: int) -> int:
    done = sum(load.kinds.values())
    unexpected = {k: v for k, v in load.kinds.items() if not k.split()[1].startswith("2")}
    result: dict[str, Any] = {
        "requests": done,
        "seconds": round(seconds, 1),
        "requests_per_second": round(done / seconds, 1),
        "connections": CONNECTIONS,
        "answers": dict(sorted(load.kinds.items())),
        "unexpected": unexpected,
        "rss_kib_before": before,
        "rss_kib_after": after,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if unexpected or done < TOTAL else 0


if __name__ == "__main__":
    sys.exit(main())
