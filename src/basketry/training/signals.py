"""Signals during tracking and registration: SIGTERM unwinds like Ctrl-C, and the few writes
that put a store back in order are not cut short by a second signal.

- :func:`terminate_raises`: while it is active, SIGTERM raises :class:`Terminated` (a
  ``KeyboardInterrupt``), so ``except BaseException`` cleanups (undoing a registration, ending
  the MLflow run ``KILLED``) run for ``kill`` as they do for Ctrl-C.
- :func:`deferred_signals`: SIGINT and SIGTERM arriving during the body are held and delivered
  when it ends (a handler-level deferral: a blocked signal mask would not stop another thread
  from taking the signal).

Only the main thread can install handlers; elsewhere both are no-ops. SIGKILL cannot be caught:
what it leaves half-done is found and repaired by :func:`basketry.training.doctor.doctor`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the body (when SIGTERM had its default action)."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the body; deliver the first one held afterwards."""
    if not _main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, hold) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])
