"""What of a customer and of a store URL may be kept or shown.

A customer identifier is stored only as HMAC-SHA256 under a secret key
(``BASKETRY_MONITOR_CUSTOMER_KEY``): the same customer gets the same key, so orders can be
grouped by customer, but the identifier cannot be read back or guessed from a list of
candidates without the secret. Without the secret no customer is stored at all.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit


def customer_key(secret: str | None, customer: str | None) -> str | None:
    """The stored key of ``customer``: HMAC-SHA256 hex, or ``None`` (no secret, no customer)."""
    if secret is None or customer is None:
        return None
    return hmac.new(secret.encode(), customer.encode(), hashlib.sha256).hexdigest()


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
