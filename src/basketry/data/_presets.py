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
    """Column names and filters for a known source layout.

    ``non_product_items``: item codes of the layout's lines that are not merchandise (postage,
    fees, manual lines, discounts, adjustments...); a preset with some drops their rows by
    default (``read_baskets(drop_non_products=...)``).
    """

    name: str
    columns: dict[str, str]  # role -> column name
    drop_cancelled: bool
    description: str = ""
    non_product_items: frozenset[str] = frozenset()

    def matches(self, names: list[str]) -> bool:
        return set(self.columns.values()) <= set(names)


# StockCodes of UCI Online Retail lines that are not merchandise. Chosen from the data: every
# StockCode of ../shared/data/online_retail.parquet (md5 97aa5089c05532c27d6b789a5f1db74e, all
# 541,909 lines) that is not 5 digits optionally followed by letters, with its descriptions
# (lines), plus the one 5-digit code whose description names a fee:
#   POST    POSTAGE (1,256)              DOT          DOTCOM POSTAGE (710)
#   M, m    Manual (571, 1)              C2           CARRIAGE (144)
#   D       Discount (77)                S            SAMPLES (63)
#   BANK CHARGES  Bank Charges (37)      AMAZONFEE    AMAZON FEE (34)
#   CRUK    CRUK Commission (16)         B            Adjust bad debt (3)
#   23444   Next Day Carriage (80, and 1 blank at price 0: a delivery charge, 78 of its lines
#           one unit at 15.00)
# Kept, as they are items sold: DCGSSBOY / DCGSSGIRL (BOYS / GIRLS PARTY BAG), the DCGS0...
# codes (named products, e.g. BOXED GLASS ASHTRAY, HAYNES CAMPER SHOULDER BAG), PADS (PADS TO
# MATCH ALL CUSHIONS) and the gift vouchers gift_0001_10 .. gift_0001_50 (Dotcomgiftshop Gift
# Voucher). Online Retail II (2009-2011) holds these 2010-2011 lines too; it is not in
# the shared data, so codes found only in its 2009-2010 part (e.g. ADJUST, TEST...) are not
# verified here and not listed.
ONLINE_RETAIL_NON_PRODUCTS: frozenset[str] = frozenset({
    "POST", "DOT", "M", "m", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "B", "23444",
})

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
        non_product_items=ONLINE_RETAIL_NON_PRODUCTS,
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
        non_product_items=ONLINE_RETAIL_NON_PRODUCTS,
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
    for role, col in roles.items():
        if names.count(col) > 1:
            raise DataError(
                f"{source}: the {role} column {col!r} appears {names.count(col)} times among "
                f"the columns ({shown}); rename the copies"
            )
    if roles["transaction"] == roles["item"]:
        raise DataError(
            f"{source}: the same column {roles['item']!r} is named as transaction and item"
        )
    return roles, preset
