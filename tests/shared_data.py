"""The project's reference data (Dopamine's runs, the TD3 paper's curves, Atari scores),
which tests may read but the package does not ship: ../shared/data beside the repository,
or the folder VALUERL_SHARED_DATA names."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("VALUERL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"no reference data at {SHARED_DATA}: set VALUERL_SHARED_DATA to its folder",
)
