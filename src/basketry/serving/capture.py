"""Capture: every answered recommendation handed to the monitoring writer process, off the hot path.

The service calls :meth:`Capture.record` once per answered basket (a batch: once per basket,
with the request's id) after the answer is built. It builds the event's row (a tuple: the time,
the request id, the snapshot's version, the endpoint, the basket, the returned names, the counts
and the latency) from what it has at hand and hands it to
:class:`~basketry.monitoring.process_writer.ProcessWriter`, whose ``offer_row`` never blocks and
does no I/O but one non-blocking send per chunk of events: no JSON is encoded here, and the
store's work (SQLAlchemy, the driver) runs in a process of its own, so it does not compete with
the event loop for the interpreter's lock.

The writer process is started in each worker's lifespan (:meth:`Capture.spawn`, before the
model loads, so the store opens meanwhile; :meth:`Capture.start` waits for it) and closed at the
end (:meth:`Capture.close`, flushed within ``BASKETRY_MONITOR_SHUTDOWN_TIMEOUT``). The worker
does not import SQLAlchemy for it (the orders endpoint does, on its first order).

Start-up: capture on (``BASKETRY_MONITOR_CAPTURE``, on by default) and a store that cannot be
opened is :class:`CaptureError` (one line naming the store), and the worker does not start: the
operator asked for a record, and a service silently not recording would be found out weeks
later. A store failing while serving, or a writer process that dies, is the writer's business
(counted, logged, serving goes on). Without the monitor extra (SQLAlchemy): capture is off with
one warning line when capture was left at its default, and :class:`CaptureError` when it was
asked for explicitly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from basketry.model import Ranked
from basketry.monitoring import MonitorSettings, mask_url
from basketry.monitoring.process_writer import ProcessWriter, WriterStartError
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
        self.writer: ProcessWriter | None = None  # once the writer process opened the store
        self._spawned: ProcessWriter | None = None
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

    def spawn(self) -> None:
        """Start the writer process without waiting for it (the store opens while the worker
        loads its model); :meth:`start` waits. Does nothing with capture off."""
        if not self.settings.capture or self._spawned is not None:
            return
        self._spawned = ProcessWriter(self.settings).spawn()

    def start(self) -> None:
        """Start the writer process (unless :meth:`spawn` did) and wait until it has opened
        the store (migrated, under its lock); blocking: run it in a thread. Raises
        :class:`CaptureError` (one line) when capture is on and cannot be."""
        s = self.settings
        if not s.capture or self.writer is not None:
            return
        self.spawn()
        writer = self._spawned
        assert writer is not None
        try:
            writer.wait_ready()
        except WriterStartError as exc:
            writer.close(0)
            self._spawned = None
            if not exc.missing_extra:
                raise CaptureError(f"{exc} (set {ENV_PREFIX}DB to a store that works, or "
                                   f"{CAPTURE_VAR}=false to serve without capture)") from None
            if self.explicit:
                raise CaptureError(f"{CAPTURE_VAR} is on but {exc}") from None
            log.warning("monitoring capture is off: %s", exc,
                        extra={"event": "monitor_capture_off"})
            return
        self.writer = writer
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
        writer, self.writer, self._spawned = self._spawned, None, None
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
        from_rules = ranked.from_rules
        n = len(ranked.items)
        writer.offer_row((time.time(), rid, snap.version, endpoint, basket,
                          [names[i] for i in ranked.items], from_rules, n - from_rules,
                          (time.perf_counter() - started) * 1000.0))

    def record_batch(self, rid: str, snap: Snapshot, baskets: Sequence[Sequence[str]],
                     answers: Sequence[Ranked], started: float) -> None:
        """One event per basket of a batch, sharing the request's id."""
        if self.writer is None:
            return
        for basket, ranked in zip(baskets, answers, strict=True):
            self.record("batch", rid, snap, basket, ranked, started)

    def counts(self) -> dict[str, int]:
        """The writer's counters and its queue depth (empty with capture off)."""
        writer = self.writer
        if writer is None:
            return {}
        return writer.counts()
