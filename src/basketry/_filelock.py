"""An exclusive lock on a file (``flock``), waited for within a timeout: the registry's writers
and the monitoring store's migrations serialise with it. A leaf: it imports nothing of basketry.
The kernel releases the lock when its process dies, so a killed holder never leaves it stale."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_SECONDS = 0.05


@contextlib.contextmanager
def file_lock(path: Path, timeout: float,
              on_timeout: Callable[[Path, float], Exception]) -> Iterator[int]:
    """Hold the exclusive lock on ``path`` (created with its folder if missing); past
    ``timeout`` seconds of waiting, raise ``on_timeout(path, timeout)``. Yields the open
    descriptor (a holder may write who it is into the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise on_timeout(path, timeout) from None
                time.sleep(POLL_SECONDS)
        yield fd
    finally:
        os.close(fd)  # releases the flock
