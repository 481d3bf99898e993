"""Cheaper numba start-up: make the first compiled call of a process skip ``import scipy.linalg``.

The first time a process compiles or loads a cached numba function, numba loads its registries
of NumPy implementations; one of them (``numba.np.arraymath``) checks that a BLAS is available
by importing ``scipy.linalg.cython_blas``, which imports the whole ``scipy.linalg`` package:
about 0.3 s and 30 MB, paid on every run although our kernels never call BLAS.

:func:`ready` loads the ``cython_blas`` extension module on its own (a few milliseconds), lets
numba load its registries (the check passes: BLAS is there, numba's ``np.dot`` keeps using it),
then takes the stand-alone module out of ``sys.modules`` again so that a later
``import scipy.linalg.cython_blas`` goes through the normal import system. Anything unexpected
(no scipy, another layout, registries already loaded) leaves numba to do as it always does.
Call it before the first compiled kernel of a public entry point; after the first call it costs
one attribute check. (scipy is no dependency of basketry: where it is absent, numba has no BLAS
to find and this does nothing.)
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

_NAME = "scipy.linalg.cython_blas"
_done = False


def _load_cython_blas() -> bool:
    if _NAME in sys.modules or "scipy.linalg" in sys.modules:
        return False
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(location) / "linalg" / f"cython_blas{suffix}"
            if not path.is_file():
                continue
            ext = importlib.util.spec_from_file_location(_NAME, path)
            if ext is None or ext.loader is None:
                return False
            module = importlib.util.module_from_spec(ext)
            sys.modules[_NAME] = module
            try:
                ext.loader.exec_module(module)
            except Exception:
                del sys.modules[_NAME]
                return False
            return True
    return False


def ready() -> None:
    """Load numba's registries now, without importing ``scipy.linalg`` (once per process)."""
    global _done
    if _done:
        return
    _done = True
    try:
        loaded = _load_cython_blas()
    except Exception:  # pragma: no cover - an unusual scipy layout: numba imports it itself
        return
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        if loaded and "scipy.linalg" not in sys.modules:
            sys.modules.pop(_NAME, None)
