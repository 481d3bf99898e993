"""Traffic and latency per time window: how many recommendations each endpoint and model
version answered, and the latency percentiles, aggregated in SQL.

The database returns one row per (window, endpoint, model version, latency bucket), never the
events: a latency is put in a bucket of two significant digits (0.01 ms steps below 1 ms, 0.1 ms
below 10 ms, 1 ms below 100 ms...; at most 10% wide), so a percentile is read from the
cumulative counts to within its bucket, and buckets of several windows add up. Closed windows
(ended more than ``GRACE_US`` ago) are stored once in the ``windows`` table (kind
``traffic``) and reused, as the online performance does with its own windows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from basketry.monitoring import aggregates, schema
from basketry.monitoring.aggregates import StoredWindow
from basketry.monitoring.windows import US, Window
from basketry.monitoring.windows import iso as _iso
from basketry.monitoring.windows import runs as _runs

#: A window is closed, and stored, this long after its end (as the performance's windows).
GRACE_US = 5 * 60 * US
KIND = "traffic"
QUANTILES = (0.5, 0.95, 0.99)

# Bucket codes: (first code, lower bound of the range, step). A latency l in [lower, 10 * lower)
# has code first + floor(l / step) - 10 (below 1 ms: floor(l / 0.01)); see ``bucket_of``.
_RANGES = ((0, 0.0, 0.01), (90, 1.0, 0.1), (180, 10.0, 1.0), (270, 100.0, 10.0),
           (360, 1_000.0, 100.0), (450, 10_000.0, 1_000.0))
#: Latencies above this are counted in the last bucket (a request that hung for minutes).
_MAX_MS = 1_000_000.0


def bucket_of(latency_ms: float) -> int:
    """The bucket code of a latency (what the SQL computes; kept for the tests)."""
    value = min(max(float(latency_ms), 0.0), _MAX_MS)
    for first, lower, step in reversed(_RANGES):
        if value >= lower:
            return first + math.floor(value / step)
    return 0


def bucket_bounds(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (ms) of bucket codes."""
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = np.zeros(codes.shape), np.zeros(codes.shape)
    starts = [r[0] + (10 if i else 0) for i, r in enumerate(_RANGES)]
    for i, (first, _lower, step) in enumerate(_RANGES):
        end = starts[i + 1] if i + 1 < len(_RANGES) else np.iinfo(np.int64).max
        at = (codes >= starts[i]) & (codes < end)
        lo[at] = (codes[at] - first) * step
        hi[at] = lo[at] + step
    return lo, hi


def _bucket_sql(dialect: str) -> str:
    def floor(x: str) -> str:
        # latencies are not negative: SQLite's integer cast truncates, which is floor there;
        # PostgreSQL's rounds, so it floors first
        return f"CAST(FLOOR({x}) AS BIGINT)" if dialect == "postgresql" else \
            f"CAST({x} AS INTEGER)"

    # the column is read once per comparison, the division made once (a CASE per row is
    # most of the query's cost over a million events)
    top = _RANGES[-1][0] + math.floor(_MAX_MS / _RANGES[-1][2])
    cases = " ".join(f"WHEN latency_ms >= {lower!r} THEN {first} + "
                     f"{floor(f'latency_ms / {step!r}')}"
                     for first, lower, step in reversed(_RANGES[1:]))
    return (f"CASE WHEN latency_ms >= {_MAX_MS!r} THEN {top} {cases} "
            f"WHEN latency_ms > 0 THEN {floor('latency_ms / 0.01')} ELSE 0 END")


@dataclass
class TrafficWindow:
    """One window's answered recommendations: counts per endpoint and version, and the
    latency histogram per endpoint (``{endpoint: {bucket code: count}}``)."""

    start_us: int
    end_us: int
    endpoints: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    latency: dict[str, dict[int, int]] = field(default_factory=dict)
    latency_max: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.endpoints.values())

    def metrics(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints, "versions": self.versions,
                "latency": {e: sorted(h.items()) for e, h in self.latency.items()},
                "latency_max": self.latency_max}

    @classmethod
    def of(cls, row: StoredWindow) -> TrafficWindow:
        m = row.metrics
        return cls(row.start_us, row.end_us, dict(m.get("endpoints", {})),
                   dict(m.get("versions", {})),
                   {e: {int(c): int(n) for c, n in h} for e, h in m.get("latency", {}).items()},
                   float(m.get("latency_max", 0.0)))


def traffic_windows(store: Any, window: Window, since_us: int, until_us: int,
                    now_us: int) -> tuple[list[TrafficWindow], int, int]:
    """The traffic of every time window of ``window`` overlapping ``[since_us, until_us)``
    (closed windows reused from the store, the others read and closed ones stored); with the
    numbers of windows reused and computed."""
    first = window.start_of(since_us)
    end = window.start_of(until_us - 1) + window.width_us
    starts = list(range(first, end, window.width_us))
    with store._errors("reading the traffic"), store.engine.connect() as c:
        stored = {r.start_us: TrafficWindow.of(r)
                  for r in aggregates.stored_windows(c, window.name, first, end)
                  if r.kind == KIND}
        missing = [s for s in starts if s not in stored]
        fresh: dict[int, TrafficWindow] = {}
        for a, b in _runs(missing, window.width_us):
            fresh |= _read(c, window, a, b)
    for s in missing:
        fresh.setdefault(s, TrafficWindow(s, s + window.width_us))
    closed = [fresh[s] for s in missing if s + window.width_us + GRACE_US <= now_us]
    if closed:
        _store(store, window.name, closed)
    return [stored.get(s) or fresh[s] for s in starts], len(stored), len(missing)


def _read(c: sa.Connection, window: Window, a: int, b: int) -> dict[int, TrafficWindow]:
    statement = sa.text(f"""
        SELECT (time_us - :origin) / :width AS w, endpoint, model_version,
               {_bucket_sql(c.dialect.name)} AS bucket, COUNT(*), MAX(latency_ms)
        FROM recommendation_events WHERE time_us >= :a AND time_us < :b
        GROUP BY 1, 2, 3, 4
    """)
    out: dict[int, TrafficWindow] = {}
    rows = c.execute(statement, {"origin": window.origin_us, "width": window.width_us,
                                 "a": a, "b": b})
    for w, endpoint, version, bucket, n, top in rows:
        start = int(w) * window.width_us + window.origin_us
        x = out.get(start)
        if x is None:
            x = out[start] = TrafficWindow(start, start + window.width_us)
        x.endpoints[endpoint] = x.endpoints.get(endpoint, 0) + int(n)
        x.versions[version] = x.versions.get(version, 0) + int(n)
        h = x.latency.setdefault(endpoint, {})
        h[int(bucket)] = h.get(int(bucket), 0) + int(n)
        x.latency_max = max(x.latency_max, float(top))
    return out


def _store(store: Any, window: str, closed: Sequence[TrafficWindow]) -> None:
    t = schema.windows
    computed = round(datetime.now(UTC).timestamp() * US)
    with store._errors("storing the traffic"):
        try:
            with store.engine.begin() as w:
                starts = [x.start_us for x in closed]
                for i in range(0, len(starts), 500):
                    w.execute(t.delete().where(t.c.kind == KIND, t.c.window == window,
                                               t.c.start_us.in_(starts[i:i + 500])))
                w.execute(t.insert(), [
                    {"kind": KIND, "model_version": "", "window": window,
                     "start_us": x.start_us, "end_us": x.end_us, "n": x.requests,
                     "metrics": x.metrics(), "computed_us": computed} for x in closed])
        except sa.exc.IntegrityError:
            pass  # another worker stored the same windows meanwhile: the same figures


def merged(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for h in histograms:
        for code, n in h.items():
            out[code] = out.get(code, 0) + n
    return out


def percentiles(histogram: Mapping[int, int], latency_max: float,
                quantiles: Sequence[float] = QUANTILES) -> dict[str, float | None]:
    """Nearest-rank percentiles from a bucket histogram, interpolated within the bucket that
    holds the rank (and at most ``latency_max``): the true value is in the same bucket, so
    within 10% of the figure."""
    names = [f"p{round(q * 100)}" for q in quantiles]
    if not histogram:
        return dict.fromkeys(names)
    codes = np.array(sorted(histogram), dtype=np.int64)
    counts = np.array([histogram[c] for c in codes.tolist()], dtype=np.int64)
    cumulative = np.cumsum(counts)
    lo, hi = bucket_bounds(codes)
    out: dict[str, float | None] = {}
    for name, q in zip(names, quantiles, strict=True):
        rank = max(math.ceil(q * int(cumulative[-1])), 1)
        at = int(np.searchsorted(cumulative, rank))
        below = int(cumulative[at] - counts[at])
        # the rank's place among the bucket's values, assumed spread evenly over it
        inside = (rank - below - 0.5) / int(counts[at])
        value = float(lo[at]) + inside * float(hi[at] - lo[at])
        out[name] = round(min(value, latency_max), 3)
    return out


def window_json(x: TrafficWindow, now_us: int) -> dict[str, Any]:
    every = merged(x.latency.values())
    return {"start": _iso(x.start_us), "end": _iso(x.end_us),
            "closed": x.end_us + GRACE_US <= now_us, "requests": x.requests,
            "endpoints": dict(sorted(x.endpoints.items())),
            "versions": dict(sorted(x.versions.items())),
            "latency_ms": percentiles(every, x.latency_max),
            "latency_ms_by_endpoint": {e: percentiles(h, x.latency_max)
                                       for e, h in sorted(x.latency.items())}}


def traffic_json(windows: Sequence[TrafficWindow], window: Window, now_us: int,
                 reused: int, computed: int) -> dict[str, Any]:
    """The traffic part of the dashboard's document: per window, and the whole period."""
    endpoints: dict[str, int] = {}
    for x in windows:
        for e, n in x.endpoints.items():
            endpoints[e] = endpoints.get(e, 0) + n
    top = max((x.latency_max for x in windows), default=0.0)
    return {"window": window.label,
            "windows": [window_json(x, now_us) for x in windows],
            "total": {"requests": sum(endpoints.values()),
                      "endpoints": dict(sorted(endpoints.items())),
                      "latency_ms": percentiles(merged(h for x in windows
                                                       for h in x.latency.values()), top)},
            "windows_reused": reused, "windows_computed": computed}



def loads(value: Any) -> Any:
    """A JSON column's value (some drivers hand JSON back as text)."""
    return json.loads(value) if isinstance(value, str) else value
