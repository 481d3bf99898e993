"""The shelf plan: which aisle and position each product takes, and the file it is kept in.

A plan is made on the training side (``basketry.layout``) and read by whoever shows or serves it
(the pictures, ``GET /v1/layout``), so its format lives here beside the model artifact's, with the
standard library only. Aisles are numbered 1..A in walking order (aisle i stands next to i-1 and
i+1); positions are 1..n within an aisle in shelf order.

The file (``layout.json``, saved next to the model) carries a ``sha256`` of its canonical payload
(the JSON of every other field, keys sorted, no spaces, UTF-8), written atomically and verified,
with the whole content, before a plan is returned.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from basketry.model.errors import ModelError

LAYOUT_FILE = "layout.json"
FORMAT = "basketry-layout/1"
SOURCES = ("model", "data")


class LayoutError(ModelError):
    """A shelf plan cannot be made from what it was given (capacity, constraints, files)."""


class LayoutFormatError(LayoutError):
    """A shelf plan's file or document is not a sound plan: the message names the file and the
    field (format tag, checksum, an item in two aisles, an aisle over capacity...)."""


@dataclass(frozen=True)
class Slot:
    item: str
    label: str | None
    aisle: int
    position: int
    fixed: bool = False
    category: str | None = None

    @property
    def name(self) -> str:
        """What to show people: the label when there is one, else the item code."""
        return self.label if self.label else self.item


@dataclass(frozen=True)
class Aisle:
    aisle: int
    capacity: int
    items: tuple[Slot, ...]

    @property
    def free(self) -> int:
        return self.capacity - len(self.items)


@dataclass(frozen=True)
class AisleLink:
    """The affinity between two aisles (the sum of item-item weights across them)."""

    a: int
    b: int
    weight: float


@dataclass(frozen=True)
class Edge:
    """An item-item affinity kept for the pictures (the strongest ones only)."""

    a: str
    b: str
    weight: float


@dataclass(frozen=True)
class Move:
    """A proposed move from the current layout, with its gain on the objective."""

    item: str
    label: str | None
    from_aisle: int
    to_aisle: int
    to_position: int
    gain: float


@dataclass(frozen=True)
class LayoutPlan:
    aisles: tuple[Aisle, ...]
    links: tuple[AisleLink, ...] = ()
    edges: tuple[Edge, ...] = ()
    moves: tuple[Move, ...] = ()
    model_version: str | None = None
    source: str = "model"
    weighting: str = "lift"
    params: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    created_at: str = ""
    _index: dict[str, Slot] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.item: s for a in self.aisles for s in a.items})
        if not self.created_at:
            object.__setattr__(self, "created_at", _now())

    def slot(self, item: str) -> Slot | None:
        """Where ``item`` stands, or None when the plan does not place it."""
        return self._index.get(item)

    @property
    def n_items(self) -> int:
        return sum(len(a.items) for a in self.aisles)

    @property
    def n_aisles(self) -> int:
        return len(self.aisles)

    def slots(self) -> Iterable[Slot]:
        """Every slot, aisle by aisle in walking order, in shelf order within an aisle."""
        for a in self.aisles:
            yield from a.items

    def aisle_of(self) -> dict[str, int]:
        """item -> aisle number, for every placed item."""
        return {item: s.aisle for item, s in self._index.items()}

    def to_json(self) -> dict[str, Any]:
        doc = _payload(self)
        doc["sha256"] = _digest(doc)
        return doc

    @classmethod
    def from_json(cls, doc: Any, *, where: str = "layout") -> LayoutPlan:
        """The plan a document describes, every field checked (``where`` names it in errors).
        The ``sha256``, when present, must match the payload."""
        return _parse(doc, where, require_digest=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _payload(plan: LayoutPlan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model_version": plan.model_version,
        "source": plan.source,
        "weighting": plan.weighting,
        "created_at": plan.created_at,
        "params": plan.params,
        "aisles": [
            {"aisle": a.aisle, "capacity": a.capacity,
             "items": [{"item": s.item, "label": s.label, "position": s.position,
                        "fixed": s.fixed, "category": s.category} for s in a.items]}
            for a in plan.aisles
        ],
        "links": [{"a": k.a, "b": k.b, "weight": k.weight} for k in plan.links],
        "edges": [{"a": e.a, "b": e.b, "weight": e.weight} for e in plan.edges],
        "moves": [{"item": m.item, "label": m.label, "from_aisle": m.from_aisle,
                   "to_aisle": m.to_aisle, "to_position": m.to_position, "gain": m.gain}
                  for m in plan.moves],
        "evaluation": plan.evaluation,
    }


def _canonical(payload: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in payload.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(payload)).hexdigest()


def write_layout(plan: LayoutPlan, path: str | os.PathLike[str]) -> Path:
    """Write ``plan`` to ``path`` (a file, or a directory that gets ``layout.json``) atomically:
    a temporary sibling replaced into place, so a reader never sees half a plan."""
    target = Path(path)
    if target.is_dir():
        target = target / LAYOUT_FILE
    where = str(target)
    try:
        doc = plan.to_json()
    except ValueError as exc:  # a NaN or infinity somewhere: allow_nan=False refuses it
        raise LayoutFormatError(f"{where}: cannot write a plan with a non-finite number") from exc
    _parse(doc, where, require_digest=True)  # never write what could not be read back
    text = json.dumps(doc, ensure_ascii=False, indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the plan from the serving user
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_layout(path: str | os.PathLike[str]) -> LayoutPlan:
    """Read and verify a plan (a ``layout.json`` file, or a directory holding one)."""
    target = Path(path)
    if target.is_dir():
        target = target / LAYOUT_FILE
    where = str(target)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LayoutFormatError(f"{where}: no shelf plan (file not found)") from None
    except UnicodeDecodeError:
        raise LayoutFormatError(f"{where}: not a shelf plan (not UTF-8 text)") from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise LayoutFormatError(f"{where}: not a shelf plan (invalid JSON: {exc})") from None
    return _parse(doc, where, require_digest=True)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


# --- checking a document -------------------------------------------------------------------

def _fail(where: str, field_name: str, problem: str) -> LayoutFormatError:
    return LayoutFormatError(f"{where}: field '{field_name}': {problem}")


def _int(v: Any, where: str, name: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(where, name, f"expected a whole number, got {v!r}")
    if v < minimum:
        raise _fail(where, name, f"must be >= {minimum}, got {v}")
    return v


def _float(v: Any, where: str, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(where, name, f"expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise _fail(where, name, f"must be finite, got {v!r}")
    return x


def _str(v: Any, where: str, name: str, *, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or (not optional and not v):
        raise _fail(where, name, f"expected a {'' if optional else 'non-empty '}string, got {v!r}")
    return v


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise _fail(where, key, f"expected a list, got {type(v).__name__}")
    return v


def _obj(v: Any, where: str, name: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise _fail(where, name, f"expected an object, got {type(v).__name__}")
    return v


def _parse(doc: Any, where: str, *, require_digest: bool) -> LayoutPlan:
    if not isinstance(doc, dict):
        raise LayoutFormatError(f"{where}: not a shelf plan (expected a JSON object)")
    if doc.get("format") != FORMAT:
        raise _fail(where, "format", f"expected {FORMAT!r}, got {doc.get('format')!r}")
    stored = doc.get("sha256")
    if stored is None and require_digest:
        raise _fail(where, "sha256", "missing")
    if stored is not None:
        try:
            actual = _digest(doc)
        except ValueError:
            raise _fail(where, "sha256", "the payload holds a non-finite number") from None
        if stored != actual:
            raise _fail(where, "sha256", "checksum mismatch: the file was changed after writing")
    source = _str(doc.get("source"), where, "source")
    if source not in SOURCES:
        raise _fail(where, "source", f"expected one of {', '.join(SOURCES)}, got {source!r}")
    weighting = _str(doc.get("weighting"), where, "weighting")
    created_at = _str(doc.get("created_at"), where, "created_at")
    model_version = _str(doc.get("model_version"), where, "model_version", optional=True)
    params = _obj(doc.get("params", {}), where, "params")
    evaluation = doc.get("evaluation")
    if evaluation is not None:
        evaluation = dict(_obj(evaluation, where, "evaluation"))

    aisles = _parse_aisles(_list(doc, "aisles", where), where)
    numbers = {a.aisle for a in aisles}
    placed = {s.item: s for a in aisles for s in a.items}

    links = []
    for i, d in enumerate(_list(doc, "links", where)):
        name = f"links[{i}]"
        d = _obj(d, where, name)
        a, b = _int(d.get("a"), where, f"{name}.a", 1), _int(d.get("b"), where, f"{name}.b", 1)
        for end in (a, b):
            if end not in numbers:
                raise _fail(where, name, f"links to unknown aisle {end}")
        if a == b:
            raise _fail(where, name, f"links aisle {a} to itself")
        links.append(AisleLink(a, b, _float(d.get("weight"), where, f"{name}.weight")))

    edges = []
    for i, d in enumerate(_list(doc, "edges", where)):
        name = f"edges[{i}]"
        d = _obj(d, where, name)
        a, b = _str(d.get("a"), where, f"{name}.a"), _str(d.get("b"), where, f"{name}.b")
        for end in (a, b):
            if end not in placed:
                raise _fail(where, name, f"names item {end!r}, which the plan does not place")
        edges.append(Edge(str(a), str(b), _float(d.get("weight"), where, f"{name}.weight")))

    moves = []
    for i, d in enumerate(_list(doc, "moves", where)):
        name = f"moves[{i}]"
        d = _obj(d, where, name)
        item = str(_str(d.get("item"), where, f"{name}.item"))
        if item not in placed:
            raise _fail(where, name, f"moves item {item!r}, which the plan does not place")
        fa = _int(d.get("from_aisle"), where, f"{name}.from_aisle", 1)
        ta = _int(d.get("to_aisle"), where, f"{name}.to_aisle", 1)
        if ta not in numbers:
            raise _fail(where, name, f"moves to unknown aisle {ta}")
        moves.append(Move(item, _str(d.get("label"), where, f"{name}.label", optional=True),
                          fa, ta, _int(d.get("to_position"), where, f"{name}.to_position", 1),
                          _float(d.get("gain"), where, f"{name}.gain")))

    return LayoutPlan(aisles=tuple(aisles), links=tuple(links), edges=tuple(edges),
                      moves=tuple(moves), model_version=model_version, source=str(source),
                      weighting=str(weighting), params=dict(params), evaluation=evaluation,
                      created_at=str(created_at))


def _parse_aisles(raw: list[Any], where: str) -> list[Aisle]:
    aisles: list[Aisle] = []
    seen: dict[str, int] = {}
    for i, d in enumerate(raw):
        name = f"aisles[{i}]"
        d = _obj(d, where, name)
        number = _int(d.get("aisle"), where, f"{name}.aisle", 1)
        if number != i + 1:
            raise _fail(where, f"{name}.aisle", f"aisles must be numbered 1..A in order, "
                        f"got {number} at place {i + 1}")
        capacity = _int(d.get("capacity"), where, f"{name}.capacity", 0)
        raw_items = d.get("items")
        if not isinstance(raw_items, list):
            raise _fail(where, f"{name}.items", "expected a list")
        if len(raw_items) > capacity:
            raise _fail(where, name, f"aisle {number} holds {len(raw_items)} items, over its "
                        f"capacity {capacity}")
        slots = []
        for j, s in enumerate(raw_items):
            sname = f"{name}.items[{j}]"
            s = _obj(s, where, sname)
            item = str(_str(s.get("item"), where, f"{sname}.item"))
            if item in seen:
                raise _fail(where, sname, f"item {item!r} stands in two aisles "
                            f"({seen[item]} and {number})")
            seen[item] = number
            position = _int(s.get("position"), where, f"{sname}.position", 1)
            if position != j + 1:
                raise _fail(where, f"{sname}.position", f"positions must be 1..n in shelf "
                            f"order, got {position} at place {j + 1}")
            fixed = s.get("fixed", False)
            if not isinstance(fixed, bool):
                raise _fail(where, f"{sname}.fixed", f"expected true or false, got {fixed!r}")
            slots.append(Slot(item=item,
                              label=_str(s.get("label"), where, f"{sname}.label", optional=True),
                              aisle=number, position=position, fixed=fixed,
                              category=_str(s.get("category"), where, f"{sname}.category",
                                            optional=True)))
        aisles.append(Aisle(aisle=number, capacity=capacity, items=tuple(slots)))
    if not aisles:
        raise _fail(where, "aisles", "a plan has at least one aisle")
    return aisles
