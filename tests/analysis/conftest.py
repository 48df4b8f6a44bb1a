"""The analysis tests' shared fixture: one tiny tracked sweep per session (see analysis_sweep.py)."""

from __future__ import annotations

import pytest

from analysis_sweep import Sweep, build_study_sweeps, build_sweep


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The sweep's store, built once: 16 finished cells, a failed one, a dead one and a rerun."""
    return build_sweep(tmp_path_factory.mktemp("analysis_sweep"))


@pytest.fixture(scope="session")
def study_experiments(sweep: Sweep) -> dict[str, str]:
    """The studies that read params or scheduler variants, each with its few cells in the sweep's store."""
    return build_study_sweeps(sweep.root)
