"""Run whole emulate cells quietly in a scratch directory (shared by the end-to-end benchmarks)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from ekya.composition import load_saved_config, run_config
from ekya.configspace import check_config_name, load_configspace
from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config

# Keys that say where a run writes, not what it computes: a resumed run keeps its own.
_WHERE_KEYS = ("tracking", "resume")


def compose_cell(overrides: list[str], store: Path, data: Path) -> DictConfig:
    """The config of one cell: the overrides, MLflow in the sqlite file ``store``, the data cache in ``data``."""
    artifacts = store.parent / "mlartifacts"
    try:
        return compose_config([f"tracking.uri=sqlite:///{store}", f"tracking.artifact_root={artifacts}",
                               f"dataset.root={data}", *overrides])
    except HydraException as e:
        raise EkyaError(f"overrides {overrides}: {e}") from None


def check_cell(overrides: list[str]) -> None:
    """Raise EkyaError now if these overrides cannot compose or name a config outside the space."""
    cfg = compose_cell(overrides, Path("/nonexistent/mlflow.db"), Path("/nonexistent/data"))
    space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
    check_config_name(cfg.scheduler.get("config"), space, "scheduler.config")


def run_cell(work: Path, name: str, overrides: list[str]) -> pd.DataFrame:
    """One `python -m ekya` cell with the given overrides; its per-window records."""
    cfg = compose_cell(overrides, Path(work) / "mlflow.db", Path(work) / "data")
    return run_config(cfg, Path(work) / "runs" / name, quiet=True).frame


def _what(cfg: DictConfig) -> dict:
    """The resolved config without the keys that only say where the run writes."""
    out = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in out.items() if k not in _WHERE_KEYS}


def run_or_resume(run_dir: Path, overrides: list[str], store: Path, data: Path,
                  experiment: str | None = None) -> pd.DataFrame:
    """Run a cell in run_dir, tracked in MLflow ``experiment`` (None: the dataset's); an interrupted one resumes.

    A resumed run keeps the config it saved (its MLflow store included, whichever process started
    it), after checking that the overrides still give the same config.
    """
    run_dir = Path(run_dir)
    # runs of one seed and dataset share their base models (loaded, they give the same numbers)
    where = [f"tracking.experiment={experiment}"] if experiment is not None else []
    cfg = compose_cell([*overrides, f"runtime.base_cache={Path(data).parent / 'base_models'}", *where], store, data)
    saved = run_dir / "config.yaml"
    if saved.exists():
        before, now = _what(load_saved_config(saved)), _what(cfg)
        if before != now:
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            raise EkyaError(f"{run_dir} holds an interrupted run of another config (differs in {changed}); "
                            "delete that directory or choose another output directory")
        cfg.resume = str(run_dir)
    return run_config(cfg, run_dir, quiet=True).frame


def scratch() -> tempfile.TemporaryDirectory:
    """A temporary working directory for benchmark cells."""
    return tempfile.TemporaryDirectory(prefix="ekya-bench-")
