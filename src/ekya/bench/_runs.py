"""Run whole emulate cells quietly in a scratch directory (shared by the end-to-end benchmarks)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir

from ekya.app import CONF_DIR
from ekya.execution.session import run_session


def run_cell(work: Path, name: str, overrides: list[str]) -> pd.DataFrame:
    """One `python -m ekya` cell with the given overrides; its per-window records."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"tracking.uri=sqlite:///{work}/mlflow.db",
                                           f"tracking.artifact_root={work}/mlartifacts",
                                           f"dataset.root={work}/data", *overrides])
    return run_session(cfg, work / "runs" / name, quiet=True)


def scratch() -> tempfile.TemporaryDirectory:
    """A temporary working directory for benchmark cells."""
    return tempfile.TemporaryDirectory(prefix="ekya-bench-")
