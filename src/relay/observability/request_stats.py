"""Request counts and latencies, kept in plain dicts and lists and read out on scrape.

Every request is observed, so this is the hot side of the metrics. A
prometheus_client Counter and Histogram take a lock per increment and walk the
buckets one by one in Python; here an observation is two dict lookups and a
bisect (the event loop is the only writer). The families exported are the same:
`relay_requests_total` and `relay_request_duration_seconds`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


@dataclass
class _Latency:
    buckets: list[int]  # per bucket, not cumulative; the last one is +Inf
    total_seconds: float = 0.0
    count: int = 0


class RequestStats(Collector):
    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = sorted(bounds)
        # The `le` labels exactly as prometheus_client's own Histogram writes them.
        self._labels = [floatToGoString(b) for b in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._answered: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._answered[key] = self._answered.get(key, 0) + 1
        latency = self._latency.get((route, method))
        if latency is None:
            latency = self._latency[route, method] = _Latency([0] * (len(self._bounds) + 1))
        latency.buckets[bisect_left(self._bounds, seconds)] += 1  # `le`: a bound counts
        latency.total_seconds += seconds
        latency.count += 1

    def collect(self) -> Iterator[Metric]:
        answered = CounterMetricFamily(
            "relay_requests", "HTTP requests answered", labels=["route", "method", "status"]
        )
        for (route, method, status), count in sorted(self._answered.items()):
            answered.add_metric([route, method, str(status)], count)
        yield answered
        latency = HistogramMetricFamily(
            "relay_request_duration_seconds",
            "Time to answer an HTTP request",
            labels=["route", "method"],
        )
        for (route, method), series in sorted(self._latency.items()):
            cumulative, running = [], 0
            for label, count in zip(self._labels, series.buckets, strict=True):
                running += count
                cumulative.append((label, float(running)))
            latency.add_metric([route, method], cumulative, series.total_seconds)
        yield latency
