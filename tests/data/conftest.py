"""Fixtures for the basketry.data tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of the shared real data sets (skip when it is not there)."""
    path = Path(os.environ.get("BASKETRY_SHARED_DATA", _DEFAULT)).resolve()
    if not (path / "retail.dat").is_file():
        pytest.skip(f"shared data sets not found in {path}")
    return path
