"""Prometheus metrics of the service (text format at ``/metrics``).

Each application has its own registry. With several worker processes, ``serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start and ``/metrics`` aggregates every worker.

The per-request counts (requests, latency, baskets, items) are kept in plain ints on the event
loop, with no lock and no call into prometheus_client per request, and handed to the
prometheus_client metrics by :meth:`Metrics.flush`: at every scrape, and, with several workers,
every :data:`FLUSH_SECONDS` from each worker (so a scrape sees the other workers' counts at most
that old). Rare events (model loads) go to prometheus_client directly.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from basketry.serving.state import ReloadOutcome, Snapshot

#: Latency buckets in seconds: fine below 10 ms, where a recommendation should land.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5)

#: Prometheus' text format; the framework adds "; charset=utf-8" to every text/* type.
CONTENT_TYPE = "text/plain; version=0.0.4"

#: With several workers, how often each worker hands its counts to the shared files.
FLUSH_SECONDS = 0.25


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: half the output, no information
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "basketry_http_requests", "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram(
            "basketry_http_request_duration_seconds", "Time to answer, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.recommended = Counter(
            "basketry_recommended_items", "Items recommended, by source (rule or fallback).",
            ["source"], registry=r)
        self.baskets = Counter(
            "basketry_baskets_scored", "Baskets scored (a batch counts each basket).",
            registry=r)
        self.basket_items = Counter(
            "basketry_basket_items", "Basket items seen, by whether the model knows them "
            "(unknown-item rate = unknown / all).", ["known"], registry=r)
        self.fallback_baskets = Counter(
            "basketry_fallback_baskets", "Baskets whose answer needed popularity fallback.",
            registry=r)
        mode = {"multiprocess_mode": "liveall"} if _multiprocess() else {}
        self.model_info = Gauge(
            "basketry_model_info", "The model version being served (value 1).",
            ["model_version"], registry=r, **mode)
        self.model_rules = Gauge(
            "basketry_model_rules", "Rules usable for recommendations in the served model.",
            registry=r, **mode)
        self.model_items = Gauge(
            "basketry_model_items", "Items known to the served model.", registry=r, **mode)
        self.unavailable = Gauge(
            "basketry_unavailable_items", "Items of the catalogue file never recommended.",
            registry=r, **mode)
        self.model_loaded = Gauge(
            "basketry_model_loaded_timestamp_seconds", "When the served model was loaded.",
            registry=r, **mode)
        self.reloads = Counter(
            "basketry_model_reloads", "Model load attempts by result (success, failure).",
            ["result"], registry=r)
        self.reload_failed = Gauge(
            "basketry_model_last_reload_failed",
            "1 when the last model load was refused (the previous model keeps serving).",
            registry=r, **mode)
        # the monitoring writer's counts (basketry.serving.capture), read at each flush
        self.monitor_events = Counter(
            "basketry_monitor_events", "Recommendation events by what the monitoring writer did "
            "with them (written, dropped: queue full, sampled_out, failed: given up after "
            "retries, lost_at_shutdown).", ["outcome"], registry=r)
        self.monitor_write_errors = Counter(
            "basketry_monitor_write_errors", "Failed attempts to write a batch of events to "
            "the monitoring store.", registry=r)
        self.monitor_queue = Gauge(
            "basketry_monitor_queue_depth", "Events queued for the monitoring store.",
            registry=r, **({"multiprocess_mode": "livesum"} if _multiprocess() else {}))
        self._capture_counts: Callable[[], dict[str, int]] | None = None
        self._capture_seen: dict[str, int] = {}
        self._version: str | None = None
        # counts not yet handed to prometheus_client (see flush)
        self._requests: dict[tuple[str, str, int], int] = {}
        #: endpoint -> [count per latency bucket (the last one is +Inf)..., sum of seconds]
        self._latency: dict[str, list[float]] = {}
        #: baskets, known items, unknown items, rule items, fallback items, fallback baskets
        self._baskets = [0, 0, 0, 0, 0, 0]
        self._basket_counters = (
            self.baskets, self.basket_items.labels("true"), self.basket_items.labels("false"),
            self.recommended.labels("rule"), self.recommended.labels("fallback"),
            self.fallback_baskets)
        self.multiprocess = _multiprocess()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        counts = self._requests
        counts[key] = counts.get(key, 0) + 1
        hist = self._latency.get(endpoint)
        if hist is None:
            hist = self._latency[endpoint] = [0] * (len(LATENCY_BUCKETS) + 2)
        hist[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket with seconds <= le
        hist[-1] += seconds

    def observe_basket(self, known: int, unknown: int, from_rules: int, fallback: int) -> None:
        b = self._baskets
        b[0] += 1
        b[1] += known
        b[2] += unknown
        b[3] += from_rules
        if fallback:
            b[4] += fallback
            b[5] += 1

    def watch_capture(self, counts: Callable[[], dict[str, int]]) -> None:
        """Export the monitoring writer's ``counts`` (cumulative) at each flush."""
        self._capture_counts = counts

    def _flush_capture(self) -> None:
        if self._capture_counts is None:
            return
        counts = self._capture_counts()
        if not counts:
            return
        seen = self._capture_seen
        for outcome, n in counts.items():
            if outcome == "queue_depth":
                self.monitor_queue.set(n)
                continue
            delta = n - seen.get(outcome, 0)
            if delta > 0:
                counter = (self.monitor_write_errors if outcome == "write_errors"
                           else self.monitor_events.labels(outcome))
                counter.inc(delta)
                seen[outcome] = n

    def flush(self) -> None:
        """Hand the counts kept since the last flush to the prometheus_client metrics.

        Called on the event loop (as the observe methods), so nothing is counted twice or lost.
        """
        for key, n in self._requests.items():
            if n:
                endpoint, method, status = key
                self.requests.labels(endpoint, method, str(status)).inc(n)
                self._requests[key] = 0
        for endpoint, hist in self._latency.items():
            if hist[-1] or any(hist[:-1]):
                child = self.latency.labels(endpoint)
                # the histogram's own per-bucket values (not cumulative), as observe() keeps them
                for bucket, n in zip(child._buckets, hist[:-1], strict=True):
                    if n:
                        bucket.inc(n)
                child._sum.inc(hist[-1])
                hist[:] = [0] * len(hist)
        b = self._baskets
        for i, n in enumerate(b):
            if n:
                self._basket_counters[i].inc(n)
                b[i] = 0
        self._flush_capture()

    def on_reload(self, outcome: ReloadOutcome, snapshot: Snapshot | None) -> None:
        if outcome.ok and outcome.changed and snapshot is not None:
            self.reloads.labels("success").inc()
            if self._version is not None and self._version != snapshot.version:
                # 0 first: with several workers the value lives in a file that remove() keeps
                self.model_info.labels(self._version).set(0)
                self.model_info.remove(self._version)
            self._version = snapshot.version
            self.model_info.labels(snapshot.version).set(1)
            self.model_rules.set(snapshot.model.n_rules)
            self.model_items.set(len(snapshot.model.items))
            self.unavailable.set(len(snapshot.unavailable))
            self.model_loaded.set(time.time())
            self.reload_failed.set(0)
        elif not outcome.ok:
            self.reloads.labels("failure").inc()
            self.reload_failed.set(1)

    def render(self) -> bytes:
        self.flush()
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
