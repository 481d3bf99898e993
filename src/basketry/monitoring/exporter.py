"""The watcher's Prometheus endpoint: the alerts' figures (open and raised per kind, webhook
deliveries) and the cycles' own (count, failures, last duration, last success time), served by
prometheus_client's own HTTP server on a port of the watcher's process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from basketry.monitoring.alerts import Figure


class CycleFigures:
    """What the watcher's cycles did, for export (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cycles = self.failures = 0
        self.last_seconds = 0.0
        self.last_success = 0.0

    def done(self, seconds: float) -> None:
        with self._lock:
            self.cycles += 1
            self.last_seconds, self.last_success = seconds, time.time()

    def failed(self) -> None:
        with self._lock:
            self.cycles += 1
            self.failures += 1

    def figures(self) -> list[Figure]:
        with self._lock:
            return [
                Figure("basketry_monitor_cycles_total", "counter", "Monitoring cycles run.", {},
                       self.cycles),
                Figure("basketry_monitor_cycle_failures_total", "counter",
                       "Monitoring cycles that failed (the store down, a model refused...).",
                       {}, self.failures),
                Figure("basketry_monitor_cycle_seconds", "gauge",
                       "Duration of the last successful cycle.", {}, self.last_seconds),
                Figure("basketry_monitor_last_success_timestamp_seconds", "gauge",
                       "When the last cycle succeeded (0: never): alert when it is old.", {},
                       self.last_success),
            ]


class FigureCollector:
    """A prometheus_client collector of the figures ``source()`` returns at each scrape."""

    def __init__(self, source: Callable[[], list[Figure]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, Any] = {}
        for f in self.source():
            family = families.get(f.name)
            if family is None:
                labels = sorted(f.labels)
                if f.kind == "counter":
                    family = CounterMetricFamily(f.name.removesuffix("_total"), f.help,
                                                 labels=labels)
                else:
                    family = GaugeMetricFamily(f.name, f.help, labels=labels)
                families[f.name] = family
            family.add_metric([f.labels[k] for k in sorted(f.labels)], f.value)
        yield from families.values()


def serve_metrics(port: int, source: Callable[[], list[Figure]], host: str = "127.0.0.1"
                  ) -> Any:
    """Serve ``source``'s figures at ``http://host:port/metrics`` (a daemon thread); returns
    the server (``shutdown()`` stops it)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FigureCollector(source))  # type: ignore[arg-type]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
