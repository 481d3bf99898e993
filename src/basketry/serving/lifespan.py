"""A worker's life: load the model at start (the service stays up without one, not ready) while
the monitoring writer process opens its store (a store that cannot be opened stops the worker),
run the watcher and the metrics hand-over meanwhile, flush what is buffered at the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from basketry.serving.capture import Capture, CaptureError
from basketry.serving.docs_ui import check_swagger_ui
from basketry.serving.heap import freeze_heap
from basketry.serving.logs import AccessLog
from basketry.serving.metrics import FLUSH_SECONDS, Metrics
from basketry.serving.state import ModelHolder, ReloadOutcome
from basketry.serving.watcher import signalled_reference, watch

log = logging.getLogger("basketry.serving")


def lifespan(holder: ModelHolder, metrics: Metrics, *, watch_interval: float,
             run_dir: str | None, access: AccessLog | None, freeze_gc: bool,
             capture: Capture | None = None
             ) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """The application's lifespan context (Litestar's ``lifespan=``)."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        if capture is not None:  # the writer process opens the store while the model loads
            capture.spawn()
        signalled = signalled_reference(run_dir)
        if signalled is not None:
            # a worker (re)started after an admin reload serves what the others serve
            holder.reference = signalled
        if holder.current is None and holder.reference:
            await asyncio.to_thread(holder.load_initial)
            if freeze_gc:
                freeze_heap()
        elif holder.current is None:
            log.error("no model reference given: set BASKETRY_MODEL or --model",
                      extra={"event": "no_model"})
        elif holder.last_reload is None:  # given a loaded holder: publish it
            metrics.on_reload(ReloadOutcome(ok=True, at="", reference=holder.reference or "",
                                            model_version=holder.current.version,
                                            changed=True), holder.current)
        if capture is not None:
            try:  # waits for the store's first connection and migration: off the event loop
                await asyncio.to_thread(capture.start)
            except CaptureError as exc:
                await asyncio.to_thread(capture.close)
                log.error("%s", exc, extra={"event": "monitor_store_unusable"})
                raise
        check_swagger_ui()
        if access is not None:
            access.bind()  # the logging set-up is complete now
        tasks = [asyncio.create_task(watch(holder, watch_interval, run_dir))]
        if metrics.multiprocess:
            tasks.append(asyncio.create_task(_flush_metrics(metrics)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if capture is not None:  # flushed within the monitoring shutdown deadline
                await asyncio.to_thread(capture.close)
            metrics.flush()
            if access is not None:
                access.flush()

    return run


async def _flush_metrics(metrics: Metrics) -> None:
    """With several workers: hand this worker's counts to the shared metrics files often."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            metrics.flush()
        except Exception:  # metrics must never take the worker down
            log.exception("metrics flush error")
