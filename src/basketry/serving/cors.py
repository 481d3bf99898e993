"""Cross-origin requests (CORS) from the configured origins (``BASKETRY_CORS_ORIGINS``), so
that a browser widget on the shop's own domain can call the service.

One implementation for every path: the middleware answers preflights and adds the headers to
the framework's and its fast path's answers; the HTTP protocol adds the same headers to the
answers it writes itself. Off (no origins, the default), nothing is added and no path does any
extra work but one ``is None`` test per request.

What is allowed: simple and preflighted ``GET``, ``HEAD`` and ``POST`` with the headers
``Content-Type`` and ``X-Request-ID``, no credentials (the API uses no cookies; the admin
token is not for browsers, so ``Authorization`` is not allowed); ``X-Request-ID`` is exposed
to the page (the shop sends it back with its orders).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

#: A browser caches a preflight's answer this many seconds (Chromium caps it at 7,200).
MAX_AGE = 600
METHODS = b"GET, HEAD, POST"
HEADERS = b"content-type, x-request-id"
#: Head lines kept for this many origins at most (then the cache starts again).
MAX_KEPT = 256
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def parse_origins(text: str) -> tuple[str, ...]:
    """``BASKETRY_CORS_ORIGINS`` (comma-separated origins, or ``*``) as a tuple; ValueError
    naming the first entry that is not an origin (``scheme://host[:port]``, no path)."""
    origins = []
    for entry in text.split(","):
        origin = entry.strip().rstrip("/").lower()
        if not origin:
            continue
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"{entry.strip()!r} is not an origin (scheme://host[:port], or *)")
        origins.append(origin)
    return tuple(origins)


@dataclass(frozen=True)
class Cors:
    """The allowed origins, and the headers an answer carries for a request's ``Origin``."""

    origins: frozenset[bytes]
    any_origin: bool
    _lines: dict[bytes | None, bytes] = field(default_factory=dict, compare=False, repr=False)

    def allowed(self, origin: bytes | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None (not allowed)."""
        if origin is None:
            return None
        if self.any_origin:
            return b"*"
        return origin if origin.lower() in self.origins else None

    def headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """The headers of an answer to a request from ``origin`` (none: not a browser's)."""
        # the answer depends on the origin when origins are listed: caches must know
        out = [] if self.any_origin else [(b"vary", b"origin")]
        allowed = self.allowed(origin)
        if allowed is not None:
            out += [(b"access-control-allow-origin", allowed),
                    (b"access-control-expose-headers", b"x-request-id")]
        return out

    def preflight(self, origin: bytes | None) -> list[tuple[bytes, bytes]] | None:
        """The headers of the answer (204) to a preflight from ``origin``; None when the
        origin is not allowed (the request then goes on as any ``OPTIONS``)."""
        if self.allowed(origin) is None:
            return None
        return [*self.headers(origin), (b"access-control-allow-methods", METHODS),
                (b"access-control-allow-headers", HEADERS),
                (b"access-control-max-age", str(MAX_AGE).encode())]

    def head_lines(self, request_headers: list[tuple[bytes, bytes]]) -> bytes:
        """:meth:`headers` for a request's headers, as lines of an HTTP head (kept per origin:
        a shop's pages come from a few)."""
        origin = origin_of(request_headers)
        lines = self._lines.get(origin)
        if lines is None:
            if len(self._lines) >= MAX_KEPT:  # origins not allowed may be many
                self._lines.clear()
            lines = self._lines[origin] = b"".join(b"%s: %s\r\n" % pair
                                                   for pair in self.headers(origin))
        return lines


def origin_of(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The request's ``Origin`` (header names in lower case, as servers give them)."""
    for name, value in headers:
        if name == b"origin":
            return value
    return None


def is_preflight(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    return method == "OPTIONS" and any(name == b"access-control-request-method"
                                       for name, _ in headers)


@cache
def cors_of(setting: str) -> Cors | None:
    """The CORS policy of ``BASKETRY_CORS_ORIGINS`` (one object per value: the middleware and
    the protocol share it); None when no origin is allowed."""
    origins = parse_origins(setting)
    if not origins:
        return None
    return Cors(frozenset(o.encode() for o in origins if o != "*"), "*" in origins)
