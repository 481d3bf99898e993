"""Heavy optional dependencies imported on first use, not when basketry is imported.

``pa = LazyModule("pyarrow")`` behaves as the module for attribute access (``pa.array``,
``pa.types.is_string``, ``except pa.ArrowInvalid``): the first access imports it. Reading a
basket-per-line file never touches Arrow, so a process that only mines such a file does not pay
pyarrow's import (about 0.1-0.2 s and 30 MB).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported on the first attribute access; ``sys.modules`` is left as it is."""

    __slots__ = ("_lazy_module", "_lazy_name")

    def __init__(self, name: str) -> None:
        self._lazy_name = name
        self._lazy_module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._lazy_module
        if module is None:
            module = importlib.import_module(self._lazy_name)
            self._lazy_module = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._lazy_module is not None else "not imported yet"
        return f"<lazy module {self._lazy_name!r} ({state})>"
