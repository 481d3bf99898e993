"""basketry.data: read transaction files into baskets, profile and fingerprint them.

Public API::

    read_baskets(path, ...) -> Baskets     # basket lines, long CSV, long Parquet, presets
    profile(baskets) -> dict               # JSON-serialisable dataset profile
    fingerprint(baskets) -> str            # "sha256:<hex>" of the canonical content
    sample_path() -> pathlib.Path          # the bundled Online Retail sample (Parquet)
    DataError                              # ValueError naming the file, line or field
"""

from __future__ import annotations

from pathlib import Path

from basketry.data.baskets import Baskets
from basketry.data.errors import DataError
from basketry.data.profile import fingerprint, profile
from basketry.data.readers import FORMATS, PRESETS, read_baskets

__all__ = [
    "FORMATS",
    "PRESETS",
    "Baskets",
    "DataError",
    "fingerprint",
    "profile",
    "read_baskets",
    "sample_path",
]

SAMPLE_NAME = "online_retail_sample.parquet"


def sample_path() -> Path:
    """Path of the bundled sample: a slice of UCI Online Retail (CC BY 4.0, see its README).

    Read it with ``read_baskets(sample_path())`` (the online-retail preset is detected).
    """
    from importlib import resources  # 50 ms to import: only when the sample is asked for

    resource = resources.files("basketry.data").joinpath("sample", SAMPLE_NAME)
    path = Path(str(resource))
    if not path.is_file():
        raise DataError(f"the bundled sample {SAMPLE_NAME} is missing from the installation")
    return path
