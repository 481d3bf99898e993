"""The :class:`Kernels` of one package: its ahead-of-time module when current, else the JIT."""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from basketry._kernels.signatures import matcher

__all__ = ["MODE_ENV", "Kernels", "KernelsUnavailable"]

MODE_ENV = "BASKETRY_KERNELS"
_MODES = ("auto", "jit", "aot")
#: what to install for the JIT kernels (numba is in the training extra, not a core dependency)
INSTALL_HINT = "install basketry[train] (pip install 'basketry[train]')"


class KernelsUnavailable(RuntimeError):
    """The ahead-of-time kernels cannot be used and numba, for the JIT ones, is not installed."""


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
        """numba's JIT function ``name`` (imports numba; ``KernelsUnavailable`` when numba is
        not installed)."""
        try:
            module = importlib.import_module(f"{self._package}.{self._module_of[name]}")
            from basketry._kernels.jit import ready
        except ModuleNotFoundError as e:
            if (e.name or "").split(".")[0] not in ("numba", "llvmlite"):
                raise
            # one line that says what to do (a serving install has the compiled kernels only)
            why = (self._status or "jit").removeprefix("jit: ")
            raise KernelsUnavailable(
                f"{self._package}: the compiled kernels cannot be used ({why})"
                f" and numba is not installed: {INSTALL_HINT}, or rebuild basketry "
                "(pip install .) so that its kernels are compiled ahead of time") from None
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

    def matches(self, name: str, args: tuple) -> bool:
        """Whether ``args`` are exactly the types kernel ``name`` was compiled ahead of time for
        (the check each call through ``kernels.name`` makes)."""
        return matcher(self._spec[self._module_of[name]][name])(args)

    def unchecked(self, name: str) -> Callable:
        """Kernel ``name`` without the per-call type check (3 us for a dozen arrays): the
        ahead-of-time function when the module is in use, else the JIT's. Only for a caller that
        builds the arguments itself, so that their types cannot change from call to call, and
        checked them once with :meth:`matches`; any other type is undefined behaviour."""
        if self._status is None:
            self._resolve()
        if self._aot is None:
            return getattr(self, name)
        return self.aot_kernel(name)

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
        matches = matcher(self._spec[self._module_of[name]][name])
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
