"""Structured logging: one JSON object per line (or a readable line of text: by default when
stderr is a terminal), with request ids.

Basket contents are never logged at INFO; the access line carries sizes and counts only. At
DEBUG the request's items are added (for troubleshooting on a developer's machine).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is emitted.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        return f"{base} {extras}" if extras else base


def resolve_format(log_format: str) -> str:
    """``json`` or ``text``: ``auto`` is text when stderr is a terminal (someone reads it),
    JSON otherwise (a file, a pipe, a log collector)."""
    if log_format != "auto":
        return log_format
    try:
        interactive = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        interactive = False
    return "text" if interactive else "json"


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Send basketry's and uvicorn's logs to stderr in one format (see
    :func:`resolve_format`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if resolve_format(log_format) == "json"
                         else TextFormatter())
    for name in ("basketry", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # our access line replaces uvicorn's (which has the path but no request id)
    logging.getLogger("uvicorn.access").disabled = True


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config`` dict for uvicorn's own loggers in the same format as ours."""
    formatter = ("basketry.serving.logs.JsonFormatter" if resolve_format(log_format) == "json"
                 else "basketry.serving.logs.TextFormatter")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "basketry": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }


#: Access lines are written together, at most this many seconds after the first of them...
FLUSH_DELAY = 0.05
#: ... or as soon as this many wait: one write per batch, not one system call per request.
FLUSH_LINES = 256


class AccessLog:
    """The access line of every request (``request`` at INFO), at a few microseconds each.

    Going through :mod:`logging` costs about a hundred microseconds a line (a LogRecord, the
    caller's frame, a datetime, ``json.dumps``, a locked write and a flush), as much as scoring
    a basket. When the access logger's handlers are the ones :func:`configure_logging` (or
    uvicorn's config from :func:`uvicorn_log_config`) installs, stream handlers with this
    module's formatters and no filters, the same line is formatted here and the lines of up to
    50 ms (or 256 lines) are written together. With any other logging set-up (a
    user's handlers or filters) each line goes through ``logger.info`` as before.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.enabled = False
        self._json = True
        self._handlers: list[logging.StreamHandler[Any]] = []
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self.bind()

    def bind(self) -> None:
        """Look at the logging set-up again (after it changed)."""
        self.flush()
        logger = self.logger
        self.enabled = logger.isEnabledFor(logging.INFO)
        handlers: list[logging.Handler] = []
        filtered = False
        node: logging.Logger | None = logger
        while node is not None:
            handlers.extend(node.handlers)
            filtered = filtered or bool(node.filters)
            node = node.parent if node.propagate else None
        kinds = {type(h.formatter) for h in handlers}
        direct = (self.enabled and handlers and not filtered and len(kinds) == 1
                  and kinds <= {JsonFormatter, TextFormatter}
                  and all(isinstance(h, logging.StreamHandler) and not h.filters
                          and h.level <= logging.INFO for h in handlers))
        self._handlers = list(handlers) if direct else []  # type: ignore[arg-type]
        self._json = JsonFormatter in kinds

    def __call__(self, request_id: str, method: str, endpoint: str, status: int,
                 seconds: float) -> None:
        """One access line; ``endpoint`` is a route template (plain characters)."""
        if not self.enabled:
            return
        ms = round(seconds * 1000, 3)
        if not self._handlers:
            self.logger.info("request", extra={"request_id": request_id, "method": method,
                                               "endpoint": endpoint, "status": status, "ms": ms})
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = (datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                           if self._json else
                           time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        millis = int((now - second) * 1000)
        if self._json:
            line = (f'{{"ts": "{self._stamp}.{millis:03d}+00:00", "level": "info", "logger": '
                    f'"{self.logger.name}", "message": "request", "request_id": '
                    f'{_json_str(request_id)}, "method": {_json_str(method)}, "endpoint": '
                    f'"{endpoint}", "status": {status}, "ms": {ms!r}}}')
        else:
            line = (f"{self._stamp},{millis:03d} INFO    {self.logger.name}: request "
                    f"request_id={request_id} method={method} endpoint={endpoint} "
                    f"status={status} ms={ms!r}")
        lines = self._lines
        lines.append(line)
        if len(lines) == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
            except RuntimeError:  # no event loop: write now
                self.flush()
        elif len(lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the lines kept so far."""
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines = []
        for handler in self._handlers:
            handler.acquire()
            try:
                handler.stream.write(text)
                handler.flush()
            except Exception:  # as logging does: a broken stream must not fail a request
                handler.handleError(logging.makeLogRecord({"msg": "access log write failed"}))
            finally:
                handler.release()


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/{} ")


def _json_str(text: str) -> str:
    """``text`` as a JSON string (the common case, plain characters, without json.dumps)."""
    if text.isalnum() or set(text) <= _PLAIN:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)
