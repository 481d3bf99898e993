"""Which column of a long table plays which role: the roles, the known source layouts
(presets, e.g. UCI Online Retail), the column names recognised without a flag, and resolving
the columns of a file from flags, a preset and those names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from basketry.data.errors import DataError

ROLES: tuple[str, ...] = ("transaction", "item", "timestamp", "customer", "quantity", "label")
_FLAG = {role: f"{role}_col" for role in ROLES}


@dataclass(frozen=True)
class Preset:
    """Column names and filters for a known source layout."""

    name: str
    columns: dict[str, str]  # role -> column name
    drop_cancelled: bool
    description: str = ""

    def matches(self, names: list[str]) -> bool:
        return set(self.columns.values()) <= set(names)


PRESETS: dict[str, Preset] = {
    "online-retail": Preset(
        name="online-retail",
        columns={
            "transaction": "InvoiceNo",
            "item": "StockCode",
            "label": "Description",
            "quantity": "Quantity",
            "timestamp": "InvoiceDate",
            "customer": "CustomerID",
        },
        drop_cancelled=True,
        description="UCI Online Retail (2010-2011)",
    ),
    "online-retail-ii": Preset(
        name="online-retail-ii",
        columns={
            "transaction": "Invoice",
            "item": "StockCode",
            "label": "Description",
            "quantity": "Quantity",
            "timestamp": "InvoiceDate",
            "customer": "Customer ID",
        },
        drop_cancelled=True,
        description="UCI Online Retail II (2009-2011)",
    ),
}

# Column names recognised when no flag names a role, in order of preference, compared after
# lower-casing and removing everything but letters and digits.
_KNOWN: dict[str, tuple[str, ...]] = {
    "transaction": (
        "transactionid", "transaction", "invoiceno", "invoice", "invoiceid", "orderid", "order",
        "basketid", "basket", "receiptid", "receipt", "ticketid", "ticket", "tid", "txid",
        "txnid",
    ),
    "item": (
        "item", "itemid", "stockcode", "sku", "productid", "product", "article", "articleid",
        "itemname", "productname",
    ),
    "timestamp": (
        "timestamp", "datetime", "invoicedate", "orderdate", "transactiondate", "date", "time",
    ),
    "customer": ("customerid", "customer", "clientid", "client", "userid", "user", "memberid"),
    "quantity": ("quantity", "qty", "units"),
    "label": (
        "description", "label", "itemdescription", "productdescription", "itemname",
        "productname", "name", "title",
    ),
}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _closest(name: str, names: list[str]) -> str | None:
    by_norm = {_norm(n): n for n in names}
    if _norm(name) in by_norm:
        return by_norm[_norm(name)]
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if match:
        return match[0]
    match = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1, cutoff=0.5)
    if match:
        return next(n for n in names if n.lower() == match[0])
    return None


def _resolve_columns(
    source: Path,
    names: list[str],
    flags: dict[str, str | None],
    preset_name: str | None,
) -> tuple[dict[str, str], Preset | None]:
    if preset_name is not None:
        preset: Preset | None = PRESETS[preset_name]
    else:
        preset = next((p for p in PRESETS.values() if p.matches(names)), None)
    shown = ", ".join(repr(n) for n in names)
    roles: dict[str, str] = {}
    missing: list[tuple[str, str, str]] = []  # (role, column, origin)
    for role in ROLES:
        col = flags[role]
        origin = _FLAG[role]
        if col is None and preset is not None and role in preset.columns:
            col = preset.columns[role]
            origin = f"{_FLAG[role]} of preset {preset.name!r}"
        if col is None:
            continue
        if col in names:
            roles[role] = col
        else:
            missing.append((role, col, origin))
    if missing:
        free = [n for n in names if n not in roles.values()]
        parts = []
        for role, col, origin in missing:
            hint = _closest(col, free)
            parts.append(
                f"{col!r} for the {role} ({origin}"
                + (f"; did you mean {hint!r}?)" if hint else ")")
            )
        raise DataError(
            f"{source}: no column {'; no column '.join(parts)}; the columns are: {shown}"
        )
    taken = set(roles.values())
    normed = {_norm(n): n for n in reversed(names)}
    for role in ROLES:
        if role in roles:
            continue
        for known in _KNOWN[role]:
            col = normed.get(known)
            if col is not None and col not in taken:
                roles[role] = col
                taken.add(col)
                break
    for role in ("transaction", "item"):
        if role not in roles:
            raise DataError(
                f"{source}: cannot tell which column holds the {role}; pass {_FLAG[role]}=... "
                f"(the columns are: {shown})"
            )
    if roles["transaction"] == roles["item"]:
        raise DataError(
            f"{source}: the same column {roles['item']!r} is named as transaction and item"
        )
    return roles, preset
