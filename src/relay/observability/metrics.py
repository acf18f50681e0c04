"""Prometheus metrics, one registry per app so instances (and tests) never mix counts.

Labels are route templates, methods, statuses and outcomes: never a key, a
token, a client's secret or a raw path.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._backend_children: dict[tuple[str, str, str], Any] = {}
        # Every request is observed: a label set's children are looked up once.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "relay_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "relay_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
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
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_backend(self, backend: str, call: str, outcome: str, seconds: float) -> None:
        key = (backend, call, outcome)
        child = self._backend_children.get(key)
        if child is None:
            child = self._backend_children[key] = self.backend_seconds.labels(*key)
        child.observe(seconds)

    def render(self) -> bytes:
        """The text format; under `relay serve --workers N`, every worker's counts together."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        workers = CollectorRegistry()
        MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        return generate_latest(workers)
