"""`relay serve --workers 2`: every scrape of /metrics counts every worker's requests."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.processes import relay_env, relay_instances

REQUESTS = 40
SCRAPES = 8


def health_count(text: str) -> float:
    """relay_requests_total for GET /health answered 200, summed over the lines that say so."""
    pattern = re.compile(r"^relay_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)
    total = 0.0
    for match in pattern.finditer(text):
        labels = match["labels"]
        if 'route="/health"' in labels and 'status="200"' in labels:
            total += float(match["value"])
    return total


def test_every_scrape_counts_both_workers(tmp_path: Path) -> None:
    env = relay_env({"DATABASE_URL": f"sqlite:///{tmp_path}/relay.db"})
    with (
        relay_instances(env, 1, extra_args=("--workers", "2")) as (instance,),
        httpx.Client(base_url=instance.url, timeout=10) as client,
    ):
        before = health_count(client.get("/metrics").text)
        for _ in range(REQUESTS):
            assert client.get("/health").status_code == 200
        # New connections, so the scrapes land on either worker.
        counts = []
        for _ in range(SCRAPES):
            with httpx.Client(base_url=instance.url, timeout=10) as fresh:
                counts.append(health_count(fresh.get("/metrics").text))
    # Per worker, some scrapes would see fewer than all the requests sent.
    assert all(count >= before + REQUESTS for count in counts), counts
    assert counts == sorted(counts)  # never jumps back between scrapes
