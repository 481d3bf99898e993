"""Reloads without a request: the watcher that follows a new model version or catalogue, and
the hand-over of an admin reload to the other worker processes of the same server.

With several workers, ``serve`` gives them a shared folder (``BASKETRY_RUN_DIR``). A worker
that reloads on an admin request writes the reference it loaded to ``RUN_DIR/reload``; every
worker's watcher sees the file change and reloads that reference, and a worker (re)started
later serves it from the start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from basketry.serving.state import ModelHolder

log = logging.getLogger("basketry.serving")

#: Environment variable naming a folder shared by the worker processes of one ``serve``.
RUN_DIR_ENV = "BASKETRY_RUN_DIR"
_SIGNAL = "reload"


def run_dir() -> str | None:
    """The folder shared by this server's workers, if it has several."""
    return os.environ.get(RUN_DIR_ENV)


def signal_workers(run_dir: Path, reference: str) -> None:
    """Tell the other workers to serve ``reference`` (written atomically)."""
    target = run_dir / _SIGNAL
    tmp = run_dir / f".{_SIGNAL}.{os.getpid()}"
    tmp.write_text(reference, encoding="utf-8")
    os.replace(tmp, target)


def signalled_reference(run_dir: str | None) -> str | None:
    """The reference an admin reload of another worker asked for, if any: a worker (re)started
    after it serves what the others serve."""
    signal = Path(run_dir) / _SIGNAL if run_dir else None
    if signal is None or not signal.is_file():
        return None
    return signal.read_text(encoding="utf-8").strip()


async def watch(holder: ModelHolder, interval: float, run_dir: str | None) -> None:
    """Poll for a new model version or catalogue (``interval`` > 0) and for reloads asked of
    another worker of the same server (``run_dir``)."""
    if interval <= 0 and not run_dir:
        return
    signal = Path(run_dir) / _SIGNAL if run_dir else None
    seen = None  # a signal written while this worker was starting is applied at the first tick
    tick = min(interval, 0.5) if interval > 0 else 0.5
    next_check = time.monotonic() + interval
    while True:
        await asyncio.sleep(tick)
        try:
            if signal is not None:
                stamp = _mtime(signal)
                if stamp != seen:
                    seen = stamp
                    ref = signal.read_text(encoding="utf-8").strip() or None
                    await holder.reload(ref, force=False)
            if interval > 0 and time.monotonic() >= next_check:
                next_check = time.monotonic() + interval
                if await asyncio.to_thread(holder.needs_reload):
                    await holder.reload(force=False)
        except asyncio.CancelledError:
            raise
        except Exception:  # the watcher must outlive any single failure
            log.exception("model watcher error")


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
