"""Compiled kernels, ahead of time when they were built so, else by numba's JIT.

The kernels are numba functions (``@njit(cache=True)``) in kernel modules of three packages:
``basketry.data`` (``_lines.py``, ``_columns.py``, ``_fingerprint.py``), ``basketry.mining``
(``_kernels.py`` and its neighbours) and ``basketry.model`` (``_fire.py``, the scoring walk). Each
package lists its kernels and their signatures in its ``_compiled.py``. At install time
(``pip install .``, see ``setup.py``) numba's ``pycc`` compiles them once more, ahead of time,
into one extension module per package (``_kernels_aot``). A process that finds that module
current uses it and never imports numba: no numba/LLVM import (0.3-0.4 s, ~65 MB), no loading of
numba's registries (0.2 s, ~40 MB) and of the cached machine code (~0.15 s); and numba need not
be installed at all (a serving install, ``pip install 'basketry[serve]'``).

A :class:`Kernels` object hands out the kernels by name (``kernels.tokenize(buf, sep)``):

- the ahead-of-time function when the extension module imports and was built from the kernel
  sources as they are now (a digest of the sources and the signatures is compiled into it: a
  kernel edited since the build falls back to the JIT until ``pip install -e .`` is run again);
- numba's JIT function otherwise, and for any call whose arguments are not exactly the types the
  kernel was compiled ahead of time for (an exported function does not check the types it is
  given, so the check is made here, per call, in Python: a few microseconds). Without numba
  installed, that is :class:`KernelsUnavailable`, one line saying to install ``basketry[train]``
  or to rebuild.

``BASKETRY_KERNELS=jit`` forces the JIT kernels (the tests run both ways), ``=aot`` makes a
missing or stale ahead-of-time module an error instead of a silent fallback; the default is
``auto``. The results are the same either way: the same source compiled by the same compiler
(``tests/mining/test_aot.py`` and ``tests/model/test_aot_scoring.py`` check it).

This package imports nothing else of basketry (an import-linter contract says so): the model
contract, the training side and the build (``setup.py``) all use it.
"""

from __future__ import annotations

from basketry._kernels.loader import INSTALL_HINT, MODE_ENV, Kernels, KernelsUnavailable
from basketry._kernels.signatures import parse_code

__all__ = ["INSTALL_HINT", "MODE_ENV", "Kernels", "KernelsUnavailable", "parse_code"]
