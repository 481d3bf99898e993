"""Kernel signature codes, and the per-call check that arguments match them exactly.

Per kernel, one code per argument. ``i8 f8 b1``: an int64, float64 or bool scalar (an ``int``,
``float`` or ``bool`` from Python, or a numpy scalar of exactly that type); ``i8[:]`` (or
``i4 u1 u4 u8 f8 b1``): a C-contiguous, aligned 1-D numpy array of that dtype, ``i4[:,:]`` 2-D;
a trailing ``!`` marks an array the kernel writes into (compiled as mutable; the others are
compiled read-only, so a kernel that writes into an unmarked argument does not build).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["matcher", "parse_code"]

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


def matcher(codes: tuple[str, ...]) -> Callable[[tuple], bool]:
    """Whether a call's arguments are exactly of the types ``codes`` (an exported
    ahead-of-time function does not check the types it is given)."""
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
