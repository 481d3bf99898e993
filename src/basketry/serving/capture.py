"""Capture: every answered recommendation offered to the monitoring writer, off the hot path.

The service calls :meth:`Capture.record` once per answered basket (a batch: once per basket,
with the request's id) after the answer is built. It builds a
:class:`~basketry.monitoring.RecommendationEvent` from what it has at hand (the snapshot's
version, the basket, the ranked ids) and hands it to :class:`~basketry.monitoring.EventWriter`,
whose ``offer`` never blocks and never does I/O: no JSON is encoded here.

The writer and its store are opened in each worker's lifespan (:meth:`Capture.start`, in a
thread: the store's first connection and its migration) and closed at the end
(:meth:`Capture.close`, flushed within ``BASKETRY_MONITOR_SHUTDOWN_TIMEOUT``).

Start-up: capture on (``BASKETRY_MONITOR_CAPTURE``, off by default) and a store that cannot be
opened is :class:`CaptureError` (one line naming the store), and the worker does not start: the
operator asked for a record, and a service silently not recording would be found out weeks
later. A store failing while serving is the writer's business (counted, logged, serving goes
on). Without the monitor extra (SQLAlchemy): capture is off with one warning line when capture
was left at its default, and :class:`CaptureError` when it was asked for explicitly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from basketry.model import Ranked
from basketry.monitoring import EventWriter, MonitorSettings, RecommendationEvent, mask_url
from basketry.monitoring.settings import ENV_PREFIX

if TYPE_CHECKING:
    from basketry.monitoring.store import MonitorStore
    from basketry.serving.state import Snapshot

log = logging.getLogger("basketry.serving")

CAPTURE_VAR = f"{ENV_PREFIX}CAPTURE"


class CaptureError(RuntimeError):
    """Capture is on and cannot start (one line naming the store or the missing extra)."""


class MissingExtra(CaptureError):
    """The monitor extra (SQLAlchemy, alembic) is not installed."""


class Capture:
    """The recommendation events of one worker (see the module's docstring)."""

    def __init__(self, settings: MonitorSettings, *, explicit: bool = False) -> None:
        self.settings = settings
        #: capture was asked for explicitly (not just the default): a missing extra is an error
        self.explicit = explicit
        self.writer: EventWriter | None = None
        self.store: MonitorStore | None = None
        self._lock = threading.Lock()  # one store opened, by the lifespan or the first order

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Capture:
        env = os.environ if environ is None else environ
        settings = MonitorSettings.from_env(env, **overrides)
        explicit = bool(env.get(CAPTURE_VAR)) or overrides.get("capture") is not None
        return cls(settings, explicit=explicit)

    @classmethod
    def off(cls) -> Capture:
        """A capture that records nothing (tests, benches, applications without monitoring)."""
        return cls(MonitorSettings(capture=False))

    @property
    def on(self) -> bool:
        return self.writer is not None

    # -- lifecycle (a worker's lifespan) --------------------------------------------------

    def start(self) -> None:
        """Open the store (migrated, under its lock) and start the writer; blocking: run it in
        a thread. Raises :class:`CaptureError` (one line) when capture is on and cannot be."""
        s = self.settings
        if not s.capture or self.writer is not None:
            return
        try:
            store = self.open_store()
        except MissingExtra as exc:
            if self.explicit:
                raise CaptureError(f"{CAPTURE_VAR} is on but {exc}") from None
            log.warning("monitoring capture is off: %s", exc,
                        extra={"event": "monitor_capture_off"})
            return
        except CaptureError as exc:
            raise CaptureError(f"{exc} (set {ENV_PREFIX}DB to a store that works, or "
                               f"{CAPTURE_VAR}=false to serve without capture)") from None
        self.writer = EventWriter(store, s).start()
        log.info("monitoring capture on: %s, sample rate %s", mask_url(s.url()), s.sample_rate,
                 extra={"event": "monitor_capture_on"})

    def open_store(self) -> MonitorStore:
        """The store, opened and migrated on first use (blocking; the orders endpoint opens it
        this way when capture is off). :class:`MissingExtra` without SQLAlchemy,
        :class:`CaptureError` (one line naming the store) when it cannot be used."""
        with self._lock:
            if self.store is not None:
                return self.store
            try:
                from basketry.monitoring.store import MonitorStore, MonitorStoreError
            except ImportError as exc:
                raise MissingExtra("the monitoring store needs the monitor extra (pip install "
                                   f"'basketry[monitor]'): {exc}") from None
            try:
                store = MonitorStore.from_settings(self.settings)
                store.migrate()
            except MonitorStoreError as exc:
                raise CaptureError(str(exc)) from None
            self.store = store
            return store

    def close(self) -> None:
        """Flush what is queued (within the shutdown deadline) and close the store."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
        with self._lock:
            store, self.store = self.store, None
        if store is not None:
            store.close()

    # -- the request path ----------------------------------------------------------------

    def record(self, endpoint: str, rid: str, snap: Snapshot, basket: Sequence[str],
               ranked: Ranked, started: float) -> None:
        """Offer one answered basket (``started``: ``time.perf_counter()`` at the request's
        start). Never blocks, never raises for the store."""
        writer = self.writer
        if writer is None:
            return
        names = snap.model.items
        returned = [names[i] for i in ranked.items]
        from_rules = ranked.from_rules
        writer.offer(RecommendationEvent(
            time.time(), rid, snap.version, endpoint, basket, returned, from_rules,
            len(returned) - from_rules, (time.perf_counter() - started) * 1000.0))

    def record_batch(self, rid: str, snap: Snapshot, baskets: Sequence[Sequence[str]],
                     answers: Sequence[Ranked], started: float) -> None:
        """One event per basket of a batch, sharing the request's id."""
        if self.writer is None:
            return
        for basket, ranked in zip(baskets, answers, strict=True):
            self.record("batch", rid, snap, basket, ranked, started)

    def counts(self) -> dict[str, int]:
        """The writer's counters and its queue depth (all 0 with capture off)."""
        writer = self.writer
        if writer is None:
            return {}
        out = writer.counters.snapshot()
        out["queue_depth"] = writer.pending
        return out
