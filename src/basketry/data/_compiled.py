"""The data kernels by name, ahead of time or JIT (see ``basketry._kernels``)."""

from __future__ import annotations

from pathlib import Path

from basketry._kernels import Kernels

# kernel module -> kernel -> signature codes (see basketry._kernels.signatures)
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
