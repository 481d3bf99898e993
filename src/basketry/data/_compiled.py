"""Compiled kernels, ahead of time when they were built so, else by numba's JIT.

The kernels are numba functions (``@njit(cache=True)`` in ``_lines.py``, ``_columns.py``,
``_fingerprint.py`` and, for mining, ``basketry/mining/_kernels.py`` and its neighbours). At
install time (``pip install -e .``, see ``setup.py``) numba's ``pycc`` compiles them once more,
ahead of time, into one extension module per package (``_kernels_aot``). A process that finds
that module current uses it and never imports numba: no numba/LLVM import (0.3-0.4 s, ~65 MB),
no loading of numba's registries (0.2 s, ~40 MB) and of the cached machine code (~0.15 s).

A :class:`Kernels` object hands out the kernels by name (``kernels.tokenize(buf, sep)``):

- the ahead-of-time function when the extension module imports and was built from the kernel
  sources as they are now (a digest of the sources and the signatures is compiled into it: a
  kernel edited since the build falls back to the JIT until ``pip install -e .`` is run again);
- numba's JIT function otherwise, and for any call whose arguments are not exactly the types the
  kernel was compiled ahead of time for (an exported function does not check the types it is
  given, so the check is made here, per call, in Python: a few microseconds).

``BASKETRY_KERNELS=jit`` forces the JIT kernels (the tests run both ways), ``=aot`` makes a
missing or stale ahead-of-time module an error instead of a silent fallback; the default is
``auto``. The results are the same either way: the same source compiled by the same compiler
(``tests/mining/test_aot.py`` checks it kernel by kernel).

Signatures: per kernel, one code per argument. ``i8 f8 b1``: an int64, float64 or bool scalar
(an ``int``, ``float`` or ``bool`` from Python, or a numpy scalar of exactly that type);
``i8[:]`` (or ``i4 u1 u4 u8 f8 b1``): a C-contiguous, aligned 1-D numpy array of that dtype,
``i4[:,:]`` 2-D; a trailing ``!`` marks an array the kernel writes into (compiled as mutable; the
others are compiled read-only, so a kernel that writes into an unmarked argument does not
build).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODE_ENV", "Kernels", "parse_code"]

MODE_ENV = "BASKETRY_KERNELS"
_MODES = ("auto", "jit", "aot")

_SCALARS: dict[str, tuple[type, ...]] = {
    # code -> accepted Python/numpy scalar types (bool is not an int here: numba would type a
    # Python bool as a boolean, so it would not be the same compiled function)
    "i8": (int, np.int64),
    "f8": (float, np.float64),
    "b1": (bool, np.bool_),
}


def parse_code(code: str) -> tuple[str, int, bool]:
    """(dtype code, number of dimensions (0: scalar), written by the kernel) of a signature
    code such as ``i8``, ``i4[:]``, ``u8[:]!`` or ``i4[:,:]``."""
    written = code.endswith("!")
    body = code.rstrip("!")
    if "[" not in body:
        if written or body not in _SCALARS:
            raise ValueError(f"unsupported scalar code {code!r}")
        return body, 0, False
    dtype, dims = body.split("[", 1)
    if not dims.endswith("]"):
        raise ValueError(f"bad signature code {code!r}")
    ndim = dims[:-1].count(":")
    np.dtype(dtype)  # a valid numpy dtype code
    return dtype, ndim, written


def _checker(codes: tuple[str, ...]) -> Callable[[tuple], bool]:
    parsed = [parse_code(c) for c in codes]
    arrays = [(i, np.dtype(d), n, w) for i, (d, n, w) in enumerate(parsed) if n]
    scalars = [(i, _SCALARS[d]) for i, (d, n, _) in enumerate(parsed) if not n]
    n_args = len(codes)

    def matches(args: tuple) -> bool:
        if len(args) != n_args:
            return False
        for i, dtype, ndim, written in arrays:
            a = args[i]
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != ndim:
                return False
            flags = a.flags
            if not (flags.c_contiguous and flags.aligned) or (written and not flags.writeable):
                return False
        for i, kinds in scalars:
            a = args[i]
            if not isinstance(a, kinds) or (kinds[0] is int and isinstance(a, bool)):
                return False
        return True

    return matches


class Kernels:
    """The compiled kernels of one package, by attribute: ``kernels.name(*args)``.

    ``package``: e.g. ``"basketry.data"``; ``spec``: kernel module -> kernel name -> signature
    codes; ``directory``: where the kernel modules' sources are (for the digest).
    """

    def __init__(
        self, package: str, spec: Mapping[str, Mapping[str, tuple[str, ...]]], directory: Path,
        extension: str = "_kernels_aot",
    ) -> None:
        names = [k for kernels in spec.values() for k in kernels]
        if len(names) != len(set(names)):
            raise ValueError(f"{package}: a kernel name appears in two modules")
        if any(k.startswith("_") for k in names):
            raise ValueError(f"{package}: kernel names must not start with an underscore")
        self._package = package
        self._spec = {m: dict(k) for m, k in spec.items()}
        self._module_of = {k: m for m, kernels in spec.items() for k in kernels}
        self._directory = directory
        self._extension = extension
        self._aot: Any = None
        self._status: str | None = None
        #: kernel name -> calls that went to the JIT although the AOT module is in use
        self.jit_calls: dict[str, int] = {}

    # ------------------------------------------------------------------ build side

    @property
    def package(self) -> str:
        return self._package

    @property
    def extension(self) -> str:
        return self._extension

    @property
    def spec(self) -> dict[str, dict[str, tuple[str, ...]]]:
        return {m: dict(k) for m, k in self._spec.items()}

    def sources(self) -> list[Path]:
        return [self._directory / f"{m}.py" for m in sorted(self._spec)]

    def digest(self) -> int:
        """A 60-bit digest of the kernel sources and the signatures (compiled into the
        ahead-of-time module; a mismatch means the module is stale)."""
        h = hashlib.sha256(repr(sorted((m, sorted(k.items())) for m, k in
                                       self._spec.items())).encode())
        for path in self.sources():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return int.from_bytes(h.digest()[:8], "little") >> 4

    # ------------------------------------------------------------------ run side

    @property
    def status(self) -> str:
        """``"aot"``, or ``"jit: <why>"``."""
        if self._status is None:
            self._resolve()
        assert self._status is not None
        return self._status

    def _resolve(self) -> None:
        mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
        if mode not in _MODES:
            raise RuntimeError(f"{MODE_ENV}={mode!r}: expected one of {', '.join(_MODES)}")
        if mode == "jit":
            self._status = f"jit: {MODE_ENV}=jit"
            return
        try:
            aot = importlib.import_module(f"{self._package}.{self._extension}")
        except ImportError as e:
            why = f"jit: no ahead-of-time module ({e})"
        else:
            try:
                built = int(aot._digest())
                current = self.digest()
            except (AttributeError, OSError) as e:  # pragma: no cover - a damaged install
                built, current = -1, 0
                why = f"jit: cannot check the ahead-of-time module ({e})"
            if built == current:
                self._aot = aot
                self._status = "aot"
                return
            if built != -1:
                why = "jit: the ahead-of-time module is stale (kernel sources changed since " \
                      "it was built; rebuild with pip install -e .)"
        if mode == "aot":
            raise RuntimeError(f"{MODE_ENV}=aot, but {self._package}: {why}")
        self._status = why

    def jit_kernel(self, name: str) -> Callable:
        """numba's JIT function ``name`` (imports numba)."""
        from basketry.data._jit import ready

        module = importlib.import_module(f"{self._package}.{self._module_of[name]}")
        ready()
        return getattr(module, name)

    def aot_kernel(self, name: str) -> Callable:
        """The ahead-of-time function ``name`` itself, unchecked (``RuntimeError`` when the
        module is not in use)."""
        if self._status is None:
            self._resolve()
        if self._aot is None:
            raise RuntimeError(f"{self._package}: {self._status}")
        if name not in self._module_of:
            raise AttributeError(f"{self._package} has no compiled kernel {name!r}")
        return getattr(self._aot, name)

    def names(self) -> list[str]:
        return sorted(self._module_of)

    def __getattr__(self, name: str) -> Callable:
        if name.startswith("_"):  # never a kernel (and not yet set in __init__)
            raise AttributeError(name)
        if name not in self._module_of:
            raise AttributeError(f"{self._package} has no compiled kernel {name!r}")
        if self._status is None:
            self._resolve()
        fn = self.jit_kernel(name) if self._aot is None else self._dispatching(name)
        self.__dict__[name] = fn
        return fn

    def _dispatching(self, name: str) -> Callable:
        aot_fn = getattr(self._aot, name)
        matches = _checker(self._spec[self._module_of[name]][name])
        jit_fn: list[Callable] = []
        jit_calls = self.jit_calls

        def kernel(*args: Any) -> Any:
            if matches(args):
                return aot_fn(*args)
            if not jit_fn:
                jit_fn.append(self.jit_kernel(name))
            jit_calls[name] = jit_calls.get(name, 0) + 1
            return jit_fn[0](*args)

        kernel.__name__ = kernel.__qualname__ = name
        kernel.__doc__ = f"{self._package} kernel {name} (ahead of time, JIT for other types)"
        return kernel

    def __repr__(self) -> str:
        return f"<Kernels {self._package} ({self._status or 'not resolved yet'})>"


DATA_SPEC: dict[str, dict[str, tuple[str, ...]]] = {
    "_lines": {
        "tokenize": ("u1[:]", "i8"),
        "group_lines": ("i4[:]", "i4[:]", "i8"),
    },
    "_columns": {
        "int_codes": ("i8[:]",),
        "group_pairs": ("i4[:]", "i4[:]", "i8"),
    },
    "_fingerprint": {
        "ranks_sorted": ("i8[:]", "u4[:]"),
        "sort_segments": ("i8[:]", "u4[:]!"),
        "gather": ("i8[:]", "u4[:]", "i8[:]", "i8"),
        "pack": ("i8[:]", "u4[:]", "i8[:]", "i8", "i8", "i8"),
        "sort_runs": ("i8[:]!", "u8[:]!", "i8[:]"),
    },
}

kernels = Kernels("basketry.data", DATA_SPEC, Path(__file__).parent)
