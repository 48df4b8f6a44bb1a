"""The Hydra entry point (``python -m ekya``): compose the config, build the run, play it, end it cleanly."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf


def _run_dir(resume: str | None, fresh: str) -> str:
    """A resumed run keeps writing into its own directory; a new run gets a fresh one."""
    return str(resume) if resume not in (None, "", "None", "null") else fresh


def register_resolvers() -> None:
    """The resolvers ekya's configs use (the run directory of a fresh or resumed run)."""
    if not OmegaConf.has_resolver("ekya_run_dir"):
        OmegaConf.register_new_resolver("ekya_run_dir", _run_dir)


register_resolvers()


def check_overrides(argv: list[str]) -> None:
    """Compose a plain run's overrides once up front, so a bad key or group is one line and exit 2.

    Hydra reports its own composition errors over several lines with exit status 1; flags
    (``-m``, ``--cfg``, ``--help`` ...) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    from hydra.errors import HydraException

    from ekya.configs import compose_config

    try:
        compose_config(argv)
    except HydraException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"ekya: error: {first} (python -m ekya --help lists the groups and keys)", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one cell and return its mean window accuracy (what sweepers optimise).

    A user error prints one line and exits with status 2; Ctrl-C prints the resume command and
    exits with 130. Either way, and on any other failure, the MLflow runs are ended (KILLED or FAILED).
    In a multirun a failed cell does not stop the sweep: it prints its error, leaves its status
    (ekya.sweeps) and returns NaN; the sweep's report lists it and the sweep exits with status 1.
    A multirun cell whose config already FINISHED in MLflow is skipped (``skip_finished``).
    """
    import math
    import traceback

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ekya.composition import run_config
    from ekya.errors import user_error
    from ekya.sweeps import CellStatus, write_cell

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    try:
        run = run_config(cfg, run_dir, skip_finished=multirun and bool(cfg.get("skip_finished", False)))
    except KeyboardInterrupt:
        print(f"\nekya: interrupted; resume with:  python -m ekya resume={run_dir}", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # user errors become one line; anything else is a bug to show
        message = user_error(e)
        if multirun:
            if message is None:
                traceback.print_exc()
            error = message or f"{type(e).__name__}: {e}"
            print(f"ekya: error in cell {' '.join(overrides)}: {error}", file=sys.stderr)
            write_cell(run_dir, CellStatus("FAILED", overrides, error=error))
            return math.nan
        if message is None:
            raise
        print(f"ekya: error: {message}", file=sys.stderr)
        sys.exit(2)
    mean = float(run.summary.get("mean_accuracy", math.nan))
    if run.skipped is not None:
        print(f"ekya: skipped: this config FINISHED before as MLflow run {run.skipped.run_id} in experiment "
              f"{run.skipped.experiment!r} (mean_accuracy {mean:.4f}); skip_finished=false plays it again")
    if multirun:
        tracking = run.callbacks.get("tracking")
        run_id = run.skipped.run_id if run.skipped is not None else getattr(getattr(tracking, "tracker", None),
                                                                            "parent_id", None)
        write_cell(run_dir, CellStatus("SKIPPED" if run.skipped is not None else "FINISHED", overrides, mean, run_id))
    return mean
