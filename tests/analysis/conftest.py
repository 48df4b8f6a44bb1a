"""The analysis tests' shared fixture: one tiny tracked sweep per session (see analysis_sweep.py)."""

from __future__ import annotations

import pytest
from analysis_sweep import Sweep, build_sweep


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The sweep's store, built once: 16 finished cells, a failed one, a dead one and a rerun."""
    return build_sweep(tmp_path_factory.mktemp("analysis_sweep"))
