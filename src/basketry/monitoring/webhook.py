"""POSTing alert events as JSON to a webhook, off the caller's thread.

:meth:`Webhook.send` puts the payload on a bounded queue and returns at once (a full queue
drops it, counted): a slow or unreachable receiver never holds up the process that raised the
alert (a serving worker's schedule, ``basketry monitor watch``). One daemon thread delivers,
oldest first, with a timeout per attempt and retries with a doubling backoff on failures
that may pass (connection refused or reset, no answer in time, HTTP 5xx, 429); a 4xx answer
is final. After the last attempt it gives up with one log line: the alert is in the store
whatever happens here, and its delivery state (``on_result``) lets a restart send it again.
Redirects are not followed (a POST body is not re-sent to wherever a 3xx points).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from basketry.monitoring.alert_settings import safe_url

log = logging.getLogger("basketry.monitoring.webhook")

#: Every outcome counted, in the order they are reported.
OUTCOMES = ("delivered", "failed", "dropped", "retries")
#: The longest wait between two attempts.
MAX_BACKOFF = 60.0
#: Seconds between two log lines about a full queue.
DROP_LOG_INTERVAL = 60.0
#: Bytes read of a receiver's answer at most (its status is what counts).
MAX_ANSWER = 64 * 1024

#: ``on_result(key, delivered)``: called from the delivery thread after the last attempt.
ResultHook = Callable[[Any, bool], None]


class _Retryable(Exception):
    """An attempt failed in a way that may pass."""


class _Final(Exception):
    """An attempt failed in a way retrying will not change."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


class Webhook:
    """Deliveries of JSON payloads to ``url`` (see the module's docstring)."""

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 1.0, queue_size: int = 1_000,
                 on_result: ResultHook | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.on_result = on_result
        self.shown_url = safe_url(url)
        self._queue: queue.Queue[tuple[Any, bytes, str]] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self._busy = 0  # payloads queued or being delivered
        self._last_drop_log = float("-inf")
        self._down = False  # the last delivery was given up (the delivery thread's own)
        self._opener = urllib.request.build_opener(_NoRedirects)

    @classmethod
    def from_settings(cls, settings: Any, on_result: ResultHook | None = None) -> Webhook | None:
        """The webhook of :class:`~basketry.monitoring.alert_settings.AlertSettings` (None
        without a URL)."""
        if not settings.webhook_url:
            return None
        return cls(settings.webhook_url, timeout=settings.webhook_timeout,
                   retries=settings.webhook_retries, backoff=settings.webhook_backoff,
                   queue_size=settings.webhook_queue, on_result=on_result)

    def __repr__(self) -> str:
        return f"Webhook({self.shown_url!r})"

    # -- the caller's side -----------------------------------------------------------------

    def send(self, payload: dict[str, Any], *, key: Any = None, what: str = "an alert") -> bool:
        """Queue ``payload`` for delivery without waiting; False when the queue is full (the
        payload is dropped and counted; so it is once the webhook is closed). ``key`` is
        handed back to ``on_result``; ``what`` names the payload in log lines (never its
        contents). Never raises for the receiver's sake: the caller may be serving."""
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        with self._lock:
            try:
                if self._stop.is_set():
                    raise queue.Full
                self._start()
                self._queue.put_nowait((key, body, what))
            except queue.Full:
                self._counts["dropped"] += 1
                now = time.monotonic()
                if now - self._last_drop_log >= DROP_LOG_INTERVAL:
                    self._last_drop_log = now
                    why = ("it is closed" if self._stop.is_set() else
                           f"{self._queue.maxsize} deliveries are waiting already")
                    log.warning("alert webhook %s: %s; %s dropped (it stays in the store; %d "
                                "dropped so far)", self.shown_url, why, what,
                                self._counts["dropped"])
                return False
            self._busy += 1
        return True

    def counts(self) -> dict[str, int]:
        """Deliveries by outcome so far (cumulative), and ``queue_depth``."""
        with self._lock:
            return {**self._counts, "queue_depth": self._queue.qsize()}

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every payload queued so far is delivered or given up (True), or for
        ``timeout`` seconds (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop (waits and retries are
        cut short; what is left is logged once and stays undelivered in the store)."""
        self.flush(timeout)
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.timeout + 1.0)
        left = self._queue.qsize()
        if left:
            log.warning("alert webhook %s: closed with %d deliveries not made (they stay in "
                        "the store)", self.shown_url, left)

    def _start(self) -> None:
        if self._thread is None:  # started by the first send: constructing costs nothing
            self._thread = threading.Thread(target=self._run, name="basketry-alert-webhook",
                                            daemon=True)
            self._thread.start()

    # -- the delivery thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                key, body, what = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                delivered = self._deliver(body, what)
                if self.on_result is not None:
                    self._report(key, delivered, what)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _deliver(self, body: bytes, what: str) -> bool:
        # after a delivery given up, one attempt each until one succeeds: a backlog behind a
        # receiver that is down drains in seconds instead of filling the queue
        attempts = 1 if self._down else self.retries + 1
        reason, made = "", 0
        for attempt in range(attempts):
            if attempt:
                wait = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                if self._stop.wait(wait):
                    reason += " (closing: no more attempts)"
                    break
                with self._lock:
                    self._counts["retries"] += 1
            made += 1
            try:
                self._post(body)
            except _Retryable as exc:
                reason = str(exc)
                log.debug("alert webhook %s: attempt %d of %d for %s failed: %s",
                          self.shown_url, attempt + 1, attempts, what, reason)
                continue
            except _Final as exc:
                reason = str(exc)
                break
            with self._lock:
                self._counts["delivered"] += 1
            self._down = False
            return True
        with self._lock:
            self._counts["failed"] += 1
        note = " (the receiver was down: one attempt each until a delivery succeeds)" * (
            self._down)
        self._down = True
        log.warning("alert webhook %s: gave up on %s after %d attempt%s: %s (the alert stays "
                    "in the store)%s", self.shown_url, what, made, "s" * (made != 1), reason,
                    note)
        return False

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "basketry-alerts"})
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                answer.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            status = f"the receiver answered HTTP {exc.code} {exc.reason}".rstrip()
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(status) from None
            if 300 <= exc.code < 400:
                raise _Final(f"{status} (redirects are not followed: give the final URL)"
                             ) from None
            raise _Final(status) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _Retryable(_reason(exc, self.timeout)) from None

    def _report(self, key: Any, delivered: bool, what: str) -> None:
        try:
            self.on_result(key, delivered)  # type: ignore[misc]
        except Exception as exc:  # the thread must live on; the message says why
            log.warning("alert webhook %s: could not record the delivery of %s: %s",
                        self.shown_url, what, str(exc).splitlines()[0] if str(exc) else
                        type(exc).__name__)


def _reason(exc: BaseException, timeout: float) -> str:
    """Why a connection failed, in words (``connection refused``, ``no answer within 5 s``)."""
    cause: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(cause, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset by the receiver"
    if isinstance(cause, socket.gaierror):
        return f"the host name does not resolve ({cause.strerror})"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__
