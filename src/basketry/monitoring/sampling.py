"""Which requests are recorded: a decision by the request id alone.

The same id always gets the same answer (in every process: no salted ``hash``), so the items
of a batch, which share their request's id, are kept or dropped together, and a request seen
by two workers is recorded by both or neither.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def sampled(request_id: str, rate: float) -> bool:
    """Whether the request ``request_id`` is recorded at sampling ``rate`` (0..1)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * _SCALE
