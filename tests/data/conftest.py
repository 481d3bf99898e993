"""Fixtures for the basketry.data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import SHARED_DATA, shared_file


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of the shared real data sets (skip when it is not there)."""
    shared_file("retail.dat")
    return SHARED_DATA
