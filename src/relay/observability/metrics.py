"""Prometheus metrics, one registry per app so instances (and tests) never mix counts.

Labels are route templates, methods, statuses and outcomes: never a key, a
token, a client's secret or a raw path.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from relay.observability.request_stats import RequestStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._backend_children: dict[tuple[str, str, str], Any] = {}
        self.requests = RequestStats(LATENCY_BUCKETS)
        self.registry.register(self.requests)
        self.backend_seconds = Histogram(
            "relay_backend_call_duration_seconds",
            "Time a backend call took",
            ["backend", "call", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "relay_backend_errors",
            "Backend calls that failed, by kind",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "relay_rate_limited",
            "Requests refused by a rate limit",
            ["limit"],
            registry=self.registry,
        )
        self.token_exchanges = Counter(
            "relay_token_exchanges",
            "API key for token exchanges, by outcome",
            ["outcome"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.observe(route, method, status, seconds)

    def observe_backend(self, backend: str, call: str, outcome: str, seconds: float) -> None:
        key = (backend, call, outcome)
        child = self._backend_children.get(key)
        if child is None:
            child = self._backend_children[key] = self.backend_seconds.labels(*key)
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
