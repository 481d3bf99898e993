"""Configuration of the alerts and their webhook, read once from the environment.

``BASKETRY_MONITOR_WEBHOOK_*`` say where alerts are POSTed and how hard to try;
``BASKETRY_ALERT_*`` which conditions raise an alert. Every setting has a safe default (no
webhook: alerts are stored, logged and exported only). The webhook URL may carry a token (as
chat services' incoming webhooks do): logs and :meth:`AlertSettings.public` show its scheme and
host only. No SQLAlchemy here: serving reads these settings with monitoring off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from basketry import _env
from basketry.monitoring.drift_types import DETECTORS
from basketry.monitoring.settings import MonitorSettingsError

#: The performance condition's kind (beside the detectors' names).
PERFORMANCE = "performance"
#: Every alert kind.
KINDS = (*DETECTORS, PERFORMANCE)
SEVERITIES = ("info", "warning", "critical")

#: Settings read from ``BASKETRY_MONITOR_<NAME>`` (the rest from ``BASKETRY_ALERT_<NAME>``).
_MONITOR_PREFIXED = ("webhook_url", "webhook_timeout", "webhook_retries", "webhook_backoff",
                     "webhook_queue")


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Where alerts go and which conditions raise them."""

    #: POST every opened and resolved alert here as JSON (http or https); unset: no webhook.
    webhook_url: str | None = None
    #: Seconds one delivery attempt may take (connecting, and each read of the answer).
    webhook_timeout: float = 5.0
    #: Attempts after the first one failed (connection refused, timeout, HTTP 5xx or 429).
    webhook_retries: int = 3
    #: Seconds before the first retry; doubled at each retry (at most 60 s).
    webhook_backoff: float = 1.0
    #: Deliveries waiting at most; beyond it new ones are dropped (counted; the alert stays
    #: stored and is sent again by the next ``resend``).
    webhook_queue: int = 1_000
    #: Detectors whose drifted verdict raises an alert (comma-separated; default: all).
    detectors: str = ",".join(DETECTORS)
    #: The performance alert compares this online figure's upper 95% bound with the offline one.
    performance_metric: str = "hit_rate@10"
    #: A performance window with fewer hide-one queries neither raises nor clears an alert.
    min_queries: int = 100
    #: An open alert is resolved after this many consecutive clear windows (2 or more: a
    #: figure hovering about its threshold does not open and resolve an alert every window).
    clear_after: int = 1
    #: Severity of drift alerts and of the performance alert.
    drift_severity: str = "warning"
    performance_severity: str = "critical"
    #: Undelivered openings and resolutions younger than this are sent again by ``resend``.
    resend_hours: float = 24.0

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise MonitorSettingsError(
                    f"{_var('webhook_url')} must be an http:// or https:// URL with a host, "
                    f"not {safe_url(self.webhook_url)!r}")
        for name in ("webhook_timeout", "webhook_backoff"):
            if not 0 < getattr(self, name) < float("inf"):
                raise MonitorSettingsError(f"{_var(name)} must be a number of seconds > 0")
        for name, low in (("webhook_retries", 0), ("webhook_queue", 1), ("min_queries", 0),
                          ("clear_after", 1)):
            if getattr(self, name) < low:
                raise MonitorSettingsError(f"{_var(name)} must be >= {low}")
        if not 0 <= self.resend_hours < float("inf"):
            raise MonitorSettingsError(f"{_var('resend_hours')} must be a number of hours >= 0")
        unknown = sorted(set(self.detector_set) - set(DETECTORS))
        if unknown:
            raise MonitorSettingsError(f"{_var('detectors')}: unknown detector(s) "
                                       f"{', '.join(unknown)} (known: {', '.join(DETECTORS)})")
        for name in ("drift_severity", "performance_severity"):
            if getattr(self, name) not in SEVERITIES:
                raise MonitorSettingsError(f"{_var(name)} must be one of {', '.join(SEVERITIES)}")

    @property
    def detector_set(self) -> frozenset[str]:
        return frozenset(d.strip() for d in self.detectors.split(",") if d.strip())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> AlertSettings:
        """Settings from the environment, then ``overrides`` (None: not given)."""
        return _env.from_env(cls, _var, MonitorSettingsError, "alert", environ, overrides)

    def replace(self, **changes: Any) -> AlertSettings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings with the webhook URL cut to its scheme and host."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["webhook_url"] = safe_url(self.webhook_url) if self.webhook_url else None
        return out


def safe_url(url: str) -> str:
    """``scheme://host[:port]/…``: what a log may show of a URL that may carry a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unparsable URL>"
    if not parts.scheme or not host:
        return "<an unparsable URL>"
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _var(name: str) -> str:
    prefix = "BASKETRY_MONITOR_" if name in _MONITOR_PREFIXED else "BASKETRY_ALERT_"
    return prefix + name.upper()
