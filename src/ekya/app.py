"""The Hydra entry point: compose the config, pick the runtime, track the run, print the summary."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ekya.errors import EkyaError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _run_dir(resume: str | None, fresh: str) -> str:
    """A resumed run keeps writing into its own directory; a new run gets a fresh one."""
    return str(resume) if resume not in (None, "", "None", "null") else fresh


if not OmegaConf.has_resolver("ekya_run_dir"):
    OmegaConf.register_new_resolver("ekya_run_dir", _run_dir)


def _quiet() -> None:
    """Keep the terminal to the progress bar and the summary; errors still surface."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def execute(cfg: DictConfig, run_dir: Path) -> object:
    """Run one cell (emulate or simulate) into run_dir and return its per-window records frame."""
    from ekya.execution.session import run_session

    return run_session(cfg, run_dir)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    """Compose the config and run it; user errors print one line and exit with status 2."""
    _quiet()
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        execute(cfg, run_dir)
    except EkyaError as e:
        print(f"ekya: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\nekya: interrupted; resume with:  python -m ekya resume={run_dir}", file=sys.stderr)
        sys.exit(130)
