"""What the benchmarks say about the machine they ran on."""

from __future__ import annotations

import os
import time
from pathlib import Path


def steal_ticks() -> int:
    """Clock ticks the hypervisor gave to other guests while this machine's CPUs wanted to run
    (the ``steal`` column of /proc/stat, summed over CPUs; 0 where there is none). On a shared
    virtual machine that time is lost to whatever was running, and it shows in the figures."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) if len(fields) > 8 else 0
    except OSError:
        return 0


class StealMeter:
    """The host's steal time since the meter was made, as a share of one core."""

    def __init__(self) -> None:
        self._ticks = steal_ticks()
        self._started = time.perf_counter()

    def share(self) -> float:
        elapsed = time.perf_counter() - self._started
        return (steal_ticks() - self._ticks) / os.sysconf("SC_CLK_TCK") / elapsed
