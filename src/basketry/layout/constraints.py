"""The store's constraints and the files that state them (docs/layout.md, "File formats").

- capacities: one aisle per line in walking order, ``capacity`` or ``aisle,capacity`` (a header
  line ``aisle,capacity`` is allowed; aisles numbered 1..A in order);
- categories: ``item,category`` lines, plus rule lines starting with ``!``:
  ``!together,CATEGORY`` (every product of the category in one aisle) and
  ``!apart,CATEGORY,CATEGORY[,...]`` (no aisle holds two of these categories);
- fixed products (anchors): ``item,aisle[,position]``;
- the current layout: the plan's CSV (``item,label,aisle,position,fixed,category``; only
  ``item`` and ``aisle`` are required) or a ``layout.json``.

Blank lines and lines starting with ``#`` are ignored; a header line is recognised by its first
field (``item`` or ``aisle``). Every error is one line naming the file and the line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from basketry.model.layout import LayoutError, LayoutFormatError, read_layout

#: how many unknown names an error shows before the count
SHOW = 5


@dataclass(frozen=True)
class Categories:
    of: dict[str, str] = field(default_factory=dict)  # item -> category
    together: tuple[str, ...] = ()
    apart: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Anchor:
    aisle: int  # 1-based
    position: int | None = None


@dataclass(frozen=True)
class Current:
    """A store's current layout: item -> (aisle, position), aisles 1-based."""

    aisle: dict[str, int]
    position: dict[str, int]
    path: str = ""


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LayoutError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise LayoutError(f"{path}: not UTF-8 text") from None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        yield number, cells


def _int(text: str, where: str, what: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise LayoutError(f"{where}: {what} {text!r} is not a whole number") from None
    if value < minimum:
        raise LayoutError(f"{where}: {what} must be >= {minimum}, got {value}")
    return value


def read_capacities(path: Path) -> tuple[int, ...]:
    caps: list[int] = []
    for number, cells in _rows(path):
        where = f"{path}:{number}"
        if cells[0].lower() in ("aisle", "capacity"):
            continue
        if len(cells) == 1:
            caps.append(_int(cells[0], where, "capacity", 0))
        elif len(cells) == 2:
            aisle = _int(cells[0], where, "aisle")
            if aisle != len(caps) + 1:
                raise LayoutError(f"{where}: aisles must be listed 1..A in order, got {aisle} "
                                  f"where {len(caps) + 1} was expected")
            caps.append(_int(cells[1], where, "capacity", 0))
        else:
            raise LayoutError(f"{where}: expected 'capacity' or 'aisle,capacity', got "
                              f"{len(cells)} fields")
    if not caps:
        raise LayoutError(f"{path}: no aisle capacities")
    return tuple(caps)


def read_categories(path: Path) -> Categories:
    of: dict[str, str] = {}
    together: list[str] = []
    apart: list[tuple[str, ...]] = []
    for number, cells in _rows(path):
        where = f"{path}:{number}"
        head = cells[0]
        if head.startswith("!"):
            rule, names = head[1:].lower(), tuple(c for c in cells[1:] if c)
            if rule == "together" and len(names) >= 1:
                together.extend(names)
            elif rule == "apart" and len(names) >= 2:
                apart.append(names)
            else:
                raise LayoutError(f"{where}: expected '!together,CATEGORY' or "
                                  f"'!apart,CATEGORY,CATEGORY[,...]', got {','.join(cells)!r}")
            continue
        if head.lower() == "item" and number == 1:
            continue
        if len(cells) < 2 or not cells[1]:
            raise LayoutError(f"{where}: expected 'item,category'")
        if head in of and of[head] != cells[1]:
            raise LayoutError(f"{where}: item {head!r} has two categories "
                              f"({of[head]!r} and {cells[1]!r})")
        of[head] = cells[1]
    known = set(of.values())
    named = set(together) | {c for group in apart for c in group}
    unknown = sorted(named - known)
    if unknown:
        raise LayoutError(f"{path}: rules name categories no item has: {_few(unknown)}")
    return Categories(of=of, together=tuple(dict.fromkeys(together)), apart=tuple(apart))


def read_fixed(path: Path) -> dict[str, Anchor]:
    fixed: dict[str, Anchor] = {}
    for number, cells in _rows(path):
        where = f"{path}:{number}"
        if cells[0].lower() == "item" and number == 1:
            continue
        if len(cells) < 2:
            raise LayoutError(f"{where}: expected 'item,aisle[,position]'")
        position = _int(cells[2], where, "position") if len(cells) > 2 and cells[2] else None
        if cells[0] in fixed:
            raise LayoutError(f"{where}: item {cells[0]!r} is fixed twice")
        fixed[cells[0]] = Anchor(_int(cells[1], where, "aisle"), position)
    return fixed


def read_current(path: Path) -> Current:
    if path.suffix.lower() == ".json":
        try:
            plan = read_layout(path)
        except LayoutFormatError:
            raise
        return Current({s.item: s.aisle for s in plan.slots()},
                       {s.item: s.position for s in plan.slots()}, str(path))
    aisle: dict[str, int] = {}
    position: dict[str, int] = {}
    columns: dict[str, int] | None = None
    for number, cells in _rows(path):
        where = f"{path}:{number}"
        if columns is None:
            lowered = [c.lower() for c in cells]
            if "item" in lowered and "aisle" in lowered:
                columns = {name: k for k, name in enumerate(lowered)}
                continue
            columns = {"item": 0, "aisle": 1, "position": 2}
        try:
            item = cells[columns["item"]]
            a = _int(cells[columns["aisle"]], where, "aisle")
        except IndexError:
            raise LayoutError(f"{where}: expected the columns item and aisle") from None
        if item in aisle:
            raise LayoutError(f"{where}: item {item!r} stands in the layout twice")
        aisle[item] = a
        k = columns.get("position")
        if k is not None and k < len(cells) and cells[k]:
            position[item] = _int(cells[k], where, "position")
    if not aisle:
        raise LayoutError(f"{path}: no products in the current layout")
    return Current(aisle, position, str(path))


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOW])
    more = f" and {len(names) - SHOW} more" if len(names) > SHOW else ""
    return f"{shown}{more} ({len(names)} in all)"


def check_known(names: Sequence[str], known: set[str], path: str, what: str) -> None:
    """One error naming the first few of ``names`` that are not known products."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LayoutError(f"{path}: {what} names products the source does not have: "
                          f"{_few(unknown)}")


def resolve_capacities(n_items: int, *, aisles: int | None = None, capacity: int | None = None,
                       capacities: Sequence[int] | None = None,
                       default_aisles: int = 10) -> tuple[int, ...]:
    """The capacity of each aisle from ``--aisles`` / ``--capacity`` / ``--capacities``."""
    if capacities is not None:
        if aisles is not None and aisles != len(capacities):
            raise LayoutError(f"--aisles {aisles} but the capacities file lists "
                              f"{len(capacities)} aisles")
        caps = tuple(int(c) for c in capacities)
    elif aisles is not None and capacity is not None:
        caps = (capacity,) * aisles
    elif aisles is not None:
        caps = (max(1, math.ceil(n_items / aisles)),) * aisles
    elif capacity is not None:
        caps = (capacity,) * max(1, math.ceil(n_items / capacity))
    else:
        caps = (max(1, math.ceil(n_items / default_aisles)),) * default_aisles
    if aisles is not None and aisles < 1:
        raise LayoutError(f"--aisles must be >= 1, got {aisles}")
    if capacity is not None and capacity < 1:
        raise LayoutError(f"--capacity must be >= 1, got {capacity}")
    total = sum(caps)
    if n_items > total:
        raise LayoutError(f"{n_items:,} products but the {len(caps)} aisles hold only "
                          f"{total:,}: add aisles or capacity")
    return caps
