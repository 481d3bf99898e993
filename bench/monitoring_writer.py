"""The monitoring writer's sustained rate (issue 14): events/s it writes to the store.

Events shaped like a single recommendation (a 4-item basket, 5 items returned) are offered
through :class:`basketry.monitoring.EventWriter` from the main thread, as fast as it can (the
serving loop's place), into a fresh store; the rate is the events written over the time from
the first offer until everything is flushed. Also the store alone (``add_events`` in batches,
no queue, no thread), and the cost of one ``offer`` on the caller's thread. The goal: the
writer's rate at least the single worker's peak request rate (about 15,000 req/s here).

    python bench/monitoring_writer.py [--events 200000] [--batch 2000] [--url URL]

Without ``--url``: a SQLite file in a temporary directory. With a PostgreSQL URL, point it at
an empty database (or schema): the tables are created there.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _host import StealMeter  # bench/ is the script's directory
from basketry.monitoring import EventWriter, MonitorSettings, RecommendationEvent
from basketry.monitoring.store import MonitorStore


def events(n: int, seed: int = 0) -> list[RecommendationEvent]:
    rng = random.Random(seed)
    items = [f"item-{i:05d}" for i in range(20_000)]
    now = time.time()
    return [RecommendationEvent(now + i * 1e-4, f"req-{i:08x}", "3f2a9c1d", "single",
                                tuple(rng.sample(items, 4)), tuple(rng.sample(items, 5)),
                                4, 1, 0.35) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    data = events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        def fresh(name: str) -> MonitorStore:
            store = MonitorStore(args.url or f"sqlite:///{Path(tmp) / name}")
            store.migrate()
            return store

        store = fresh("direct.db")
        steal = StealMeter()
        start = time.perf_counter()
        for k in range(0, len(data), args.batch):
            store.add_events(data[k:k + args.batch])
        direct = len(data) / (time.perf_counter() - start)
        store.close()

        store = store if args.url else fresh("writer.db")
        settings = MonitorSettings(batch_size=args.batch, queue_size=len(data), max_delay=0.05)
        writer = EventWriter(store, settings).start()
        start = time.perf_counter()
        for event in data:
            writer.offer(event)
        offered = time.perf_counter() - start
        writer.flush(600)
        elapsed = time.perf_counter() - start
        writer.close()
        c = writer.counters.snapshot()
        assert c["written"] == len(data), c
        print(f"store: {store!r} ({args.events} events, batches of {args.batch})")
        print(f"  store alone (add_events):  {direct:10,.0f} events/s")
        print(f"  through the writer:        {len(data) / elapsed:10,.0f} events/s sustained")
        print(f"  offer on the caller:       {offered / len(data) * 1e6:10.2f} us/event")
        print(f"  host steal time:           {steal.share():10.1%} of a core")


if __name__ == "__main__":
    main()
