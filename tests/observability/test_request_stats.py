"""RequestStats exports what prometheus_client's Counter and Histogram would, same traffic."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from relay.observability.metrics import LATENCY_BUCKETS
from relay.observability.request_stats import RequestStats

Samples = set[tuple[str, tuple[tuple[str, str], ...], float]]


def samples(registry: CollectorRegistry) -> Samples:
    """Every sample but the `_created` timestamps, which only the library's own types have."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_same_samples_as_the_library_types_including_values_on_a_bound() -> None:
    reference = CollectorRegistry()
    counter = Counter("relay_requests", "HTTP requests answered", ["route", "method", "status"])
    histogram = Histogram(
        "relay_request_duration_seconds",
        "Time to answer an HTTP request",
        ["route", "method"],
        buckets=LATENCY_BUCKETS,
    )
    collectors: list[Collector] = [counter, histogram]
    for collector in collectors:
        reference.register(collector)
    ours = CollectorRegistry()
    stats = RequestStats(LATENCY_BUCKETS)
    ours.register(stats)

    draw = random.Random(5)
    observations = [(b, "GET", 200) for b in LATENCY_BUCKETS]  # exactly on each bound
    observations += [(draw.random() * 70, draw.choice(["GET", "POST"]), 429) for _ in range(500)]
    for index, (seconds, method, status) in enumerate(observations):
        route = "/v1/tools" if index % 3 else "/v1/chat"
        counter.labels(route, method, str(status)).inc()
        histogram.labels(route, method).observe(seconds)
        stats.observe(route, method, status, seconds)

    ours_samples = samples(ours)
    assert len(ours_samples) > 2 * len(LATENCY_BUCKETS)
    rounded = {(n, labels, round(v, 9)) for n, labels, v in ours_samples}
    assert rounded == {(n, labels, round(v, 9)) for n, labels, v in samples(reference)}
