"""Where the shared real data sets live (``../shared/data`` beside the project root, or
``$BASKETRY_SHARED_DATA``). Tests skip without them on a developer's machine, but fail under CI
(``CI`` set), so a CI run can never pass by silently skipping the real-data checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("BASKETRY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
).resolve()


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"shared data set {name} not found in {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must provide ../shared/data", pytrace=False)
        pytest.skip(message)
    return path
