"""Configuration of the monitoring store and its writer, read once from ``BASKETRY_MONITOR_*``.

Every setting has a safe default; explicit overrides (a flag, a test's keyword) win over the
environment. The customer key is a secret: it never appears in :meth:`MonitorSettings.public`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from basketry import _env
from basketry._env import basketry_home

#: Environment variable prefix of every monitoring setting.
ENV_PREFIX = "BASKETRY_MONITOR_"
#: The shortest customer key accepted (an HMAC key shorter than this is guessable).
MIN_CUSTOMER_KEY = 16


class MonitorSettingsError(ValueError):
    """A monitoring setting has a value that cannot be used (the message names the variable)."""


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """Where events and orders go, how they are captured, and for how long they are kept."""

    #: SQLAlchemy URL of the store; unset: ``sqlite:///$BASKETRY_HOME/monitoring.db``.
    db: str | None = None
    #: Record answered recommendations at all (each worker's writer process writes them). On
    #: by default: bench/serving.py --capture measured a worker at 0.94x of its throughput
    #: with every request recorded (docs/monitoring.md, "What it costs").
    capture: bool = True
    #: Share of requests recorded (0..1), decided by the request id so a batch stays whole.
    sample_rate: float = 1.0
    #: Events held in memory at most; beyond it new events are dropped (and counted).
    queue_size: int = 100_000
    #: Events written per transaction at most.
    batch_size: int = 2_000
    #: Seconds an event waits at most before its batch is written.
    max_delay: float = 1.0
    #: Attempts to write one batch while the store fails, before it is dropped (and counted).
    write_retries: int = 5
    #: Seconds the writer keeps flushing at shutdown.
    shutdown_timeout: float = 5.0
    #: Seconds between two log lines about drops or store failures.
    log_interval: float = 60.0
    #: Seconds to wait for the store's first connection (and for a lock held by a migration).
    connect_timeout: float = 10.0
    #: Days events and orders are kept; 0 keeps them forever.
    retention_days: int = 0
    #: Secret keying the HMAC of customer identifiers; unset: customers are not stored.
    customer_key: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise MonitorSettingsError(f"{ENV_PREFIX}SAMPLE_RATE must be between 0 and 1, "
                                       f"not {self.sample_rate!r}")
        for name in ("queue_size", "batch_size"):
            if getattr(self, name) < 1:
                raise MonitorSettingsError(f"{ENV_PREFIX}{name.upper()} must be >= 1")
        if self.write_retries < 0:
            raise MonitorSettingsError(f"{ENV_PREFIX}WRITE_RETRIES must be >= 0")
        if self.retention_days < 0:
            raise MonitorSettingsError(f"{ENV_PREFIX}RETENTION_DAYS must be >= 0 (0: keep all)")
        for name in ("max_delay", "shutdown_timeout", "log_interval", "connect_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise MonitorSettingsError(
                    f"{ENV_PREFIX}{name.upper()} must be a number of seconds > 0")
        if self.customer_key is not None and len(self.customer_key) < MIN_CUSTOMER_KEY:
            raise MonitorSettingsError(f"{ENV_PREFIX}CUSTOMER_KEY must be at least "
                                       f"{MIN_CUSTOMER_KEY} characters")

    def url(self, environ: Mapping[str, str] | None = None) -> str:
        """The store's URL: ``db``, else a SQLite file under ``$BASKETRY_HOME``."""
        if self.db:
            return self.db
        return f"sqlite:///{(basketry_home(environ) / 'monitoring.db').resolve()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> MonitorSettings:
        """Settings from ``BASKETRY_MONITOR_*`` variables, then ``overrides`` (None: not given)."""
        return _env.from_env(cls, lambda f: ENV_PREFIX + f.upper(), MonitorSettingsError,
                             "monitoring", environ, overrides)

    def replace(self, **changes: Any) -> MonitorSettings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings without secrets (the key hidden, the URL's password masked)."""
        from basketry.monitoring.privacy import mask_url

        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["customer_key"] = "***" if self.customer_key else None
        out["db"] = mask_url(self.db) if self.db else None
        return out
