"""Settings dataclasses read from environment variables: one reader for every group.

A settings class is a dataclass whose fields are its options; each field is read from one
variable (``name(field)``, e.g. ``BASKETRY_MONITOR_SAMPLE_RATE``), parsed by the field's type
(true/false, an integer, a number, else text), then keyword overrides (flags) win. A blank
variable counts as unset; a value that does not parse is the group's error, one line naming
the variable and what it expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")

#: basketry's home folder (registry, monitoring store, models, caches), and its default.
HOME_ENV = "BASKETRY_HOME"
DEFAULT_HOME = "~/.basketry"


def basketry_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$BASKETRY_HOME`` (of ``environ``, default the process's), default ``~/.basketry``
    (not created here). Here, in a leaf, so that a process that needs only the home (a serving
    worker's writer process) does not import the model package (numpy, pyarrow)."""
    env = os.environ if environ is None else environ
    return Path(env.get(HOME_ENV) or DEFAULT_HOME).expanduser()

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def from_env(cls: type[T], name: Callable[[str], str], error: type[Exception], what: str,
             environ: Mapping[str, str] | None, overrides: Mapping[str, Any]) -> T:
    """An instance of the dataclass ``cls`` from ``environ`` (default ``os.environ``), then
    ``overrides`` (None: not given). ``name``: a field's variable; ``error``: raised for a
    value that does not parse; ``what``: the group, in the error for an unknown override."""
    env = os.environ if environ is None else environ
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for field in names:
        var = name(field)
        raw = env.get(var)
        if raw is not None and raw.strip() != "":
            values[field] = parse(var, raw, hints[field], error)
    unknown = set(overrides) - set(names)
    if unknown:
        raise TypeError(f"unknown {what} setting(s): {sorted(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)


def parse(var: str, raw: str, hint: Any, error: type[Exception]) -> Any:
    """``raw`` (the value of ``var``) as the type ``hint`` names."""
    text = raw.strip()
    kinds = str(hint)
    try:
        if "bool" in kinds:
            lowered = text.lower()
            if lowered in TRUE:
                return True
            if lowered in FALSE:
                return False
            raise ValueError(text)
        if "int" in kinds:
            return int(text)
        if "float" in kinds:
            return float(text)
    except ValueError:
        kind = ("true/false" if "bool" in kinds else "an integer" if "int" in kinds
                else "a number")
        raise error(f"{var}={raw!r}: expected {kind}") from None
    return text
