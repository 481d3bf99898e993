"""Configuration of the serving application, 12-factor style.

Every setting has a safe default and can be given by an environment variable (``BASKETRY_*``)
or, with precedence, by an explicit override (the CLI's flags, a test's keyword arguments).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from basketry import _env
from basketry.serving.cors import parse_origins

#: Environment variable prefix of every setting.
ENV_PREFIX = "BASKETRY_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used (the message names the variable)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the service serves, where, and within which limits.

    ``model`` is a model reference: a model directory today (a registry reference such as
    ``models:/basketry@champion`` later, resolved by :func:`basketry.serving.resolve_model_ref`).
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    #: Token required by ``/v1/admin/*`` (``Authorization: Bearer <token>``); no token: admin off.
    admin_token: str | None = None
    #: A file of unavailable or banned items, one item per line (``#`` starts a comment).
    catalogue: str | None = None
    #: ``json`` (one object per line), ``text`` (a readable line), or ``auto``: text when
    #: stderr is a terminal (a developer's), JSON otherwise (production: files, collectors).
    log_format: str = "auto"
    log_level: str = "info"
    #: Seconds between checks for a new model version or catalogue; 0 disables the watcher.
    watch: float = 0.0
    #: Seconds an idle kept-alive connection stays open (set it above the idle timeout of a
    #: load balancer in front, which would otherwise reuse connections the server closes).
    keep_alive: float = 5.0
    #: Seconds a request's head (request line and headers) may take to come in, counted from
    #: its first byte, or from the connection's opening for its first request: past it, the
    #: request is answered 408 (a connection that sent nothing is closed) and the connection
    #: closed. A head is one packet for any real client; this only bounds slow or idle ones.
    header_timeout: float = 10.0
    #: Seconds a request's body may take to come in, counted from the end of its head (408
    #: and the connection closed past it): >= 26 KB/s for the default 256 KiB body limit.
    body_timeout: float = 10.0
    #: Open connections per worker; beyond it a new connection is closed at once (existing
    #: ones keep being served), so that idle sockets cannot exhaust file descriptors or memory.
    max_connections: int = 1000
    #: Per-request access log lines at INFO (never with basket contents; those are DEBUG only).
    access_log: bool = True
    max_basket: int = 100
    max_k: int = 50
    default_k: int = 5
    max_exclude: int = 100
    max_batch: int = 100
    max_item_length: int = 128
    max_body_bytes: int = 256 * 1024
    #: Orders in one ``POST /v1/orders`` at most.
    max_orders: int = 100
    #: Answer the recommendation endpoints below the framework (same checks and documents).
    fast_path: bool = True
    #: Also verify SHA-256 checksums of the model files when loading (on by default).
    verify: bool = True
    #: Origins allowed to call the service from a browser (CORS), comma-separated
    #: (``https://shop.example,https://www.shop.example``), or ``*``; none by default.
    cors_origins: str = ""

    def __post_init__(self) -> None:
        if self.log_format not in ("json", "text", "auto"):
            raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT must be 'json', 'text' or 'auto', "
                                f"not {self.log_format!r}")
        try:
            parse_origins(self.cors_origins)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}CORS_ORIGINS: {exc}") from None
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(f"{ENV_PREFIX}LOG_LEVEL {self.log_level!r} is not a log level")
        positive = ("port", "workers", "max_basket", "max_k", "default_k", "max_exclude",
                    "max_batch", "max_item_length", "max_body_bytes", "max_connections",
                    "max_orders")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be >= 1")
        if self.port > 65535:
            raise SettingsError(f"{ENV_PREFIX}PORT must be <= 65535")
        if self.default_k > self.max_k:
            raise SettingsError(f"{ENV_PREFIX}DEFAULT_K must be <= {ENV_PREFIX}MAX_K")
        if self.watch < 0:
            raise SettingsError(f"{ENV_PREFIX}WATCH must be >= 0 seconds")
        for name in ("keep_alive", "header_timeout", "body_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be a number of seconds > 0")
        if self.admin_token is not None and len(self.admin_token) < 8:
            raise SettingsError(f"{ENV_PREFIX}ADMIN_TOKEN must be at least 8 characters")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Settings from ``BASKETRY_*`` variables, then ``overrides`` (``None`` = not given)."""
        return _env.from_env(cls, lambda f: ENV_PREFIX + f.upper(), SettingsError, "serving",
                             environ, overrides)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings without secrets (for logs and the model endpoint)."""
        out = dataclasses.asdict(self)
        out["admin_token"] = "***" if self.admin_token else None
        return out
