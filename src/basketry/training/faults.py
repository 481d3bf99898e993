"""A test hook: make the process kill itself at a named step of tracking or registration.

``BASKETRY_FAULT_AT=<step>`` (a step name passed to :func:`fault_point`, e.g.
``version_created``) sends the process ``BASKETRY_FAULT_SIGNAL`` (``KILL``, ``TERM`` or ``INT``;
default ``KILL``) when it reaches that step, so that tests can kill a real ``basketry train`` at
every step and check what is left. Unset, it costs one environment lookup per step. Not for
production use.
"""

from __future__ import annotations

import os
import signal

FAULT_AT = "BASKETRY_FAULT_AT"
FAULT_SIGNAL = "BASKETRY_FAULT_SIGNAL"


def fault_point(step: str) -> None:
    """Kill this process with the configured signal if ``BASKETRY_FAULT_AT`` names ``step``."""
    if os.environ.get(FAULT_AT) != step:
        return
    name = os.environ.get(FAULT_SIGNAL, "KILL").upper().removeprefix("SIG")
    os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
