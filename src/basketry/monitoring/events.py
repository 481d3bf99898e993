"""What one answered recommendation leaves in the record.

Built by the serving side on the request's path, so it is a plain slotted object with no
checks beyond what serving already did to the request (items were validated there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The endpoints that answer recommendations, as stored in ``recommendation_events.endpoint``.
ENDPOINTS = ("single", "batch", "associations")


@dataclass(frozen=True, slots=True)
class RecommendationEvent:
    """One answered recommendation (one item of a batch is one event, sharing its request id)."""

    #: Seconds since the epoch (``time.time()``), UTC.
    time: float
    request_id: str
    model_version: str
    #: ``single``, ``batch`` or ``associations``.
    endpoint: str
    #: The basket asked about (for ``associations``: the item asked about).
    basket: Sequence[str]
    #: The items returned, in rank order.
    returned: Sequence[str]
    #: How many of ``returned`` came from rules, and how many from the popularity fallback.
    n_rules: int
    n_fallback: int
    latency_ms: float
