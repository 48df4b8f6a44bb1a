"""A tiny tracked sweep for the analysis tests (fixture in conftest.py): simulate cells in a temporary SQLite store.

2 schedulers x 2 accelerator counts x 2 stream counts x 2 seeds, plus what real sweeps leave behind:
a failed cell, a cell whose process died (left RUNNING) and a rerun of a finished cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from ekya.composition import run_config
from ekya.hydra_compose import compose_config

EXPERIMENT = "study"
SCHEDULERS = ("fair", "thief")
ACCELERATORS = (1, 2)
STREAMS = (2, 3)
SEEDS = (0, 1)
WINDOWS = 3


@dataclass
class Sweep:
    """Where the sweep is and what each finished cell produced."""

    root: Path
    uri: str
    #: (scheduler, accelerators, streams, seed) -> the cell's per-window records
    frames: dict[tuple[str, int, int, int], pd.DataFrame]
    #: the run directory of each cell (its schedule.json is there)
    run_dirs: dict[tuple[str, int, int, int], Path]


def cell_overrides(root: Path, scheduler: str, accelerators: int, streams: int, seed: int,
                   experiment: str = EXPERIMENT) -> list[str]:
    """The overrides of one simulate cell tracked in the sweep's store."""
    return ["runtime=simulate", f"runtime.synthetic.streams={streams}", f"runtime.synthetic.windows={WINDOWS}",
            f"tracking.experiment={experiment}",
            f"tracking.uri=sqlite:///{root}/mlflow.db", f"tracking.artifact_root={root}/mlartifacts",
            f"scheduler={scheduler}", f"cluster.accelerators={accelerators}", f"seed={seed}",
            f"hydra.run.dir={root}/outputs"]


def run_cell(root: Path, name: str, *cell, experiment: str = EXPERIMENT) -> tuple[pd.DataFrame, Path]:
    """Run one cell to the end; its records and run directory."""
    run_dir = root / "runs" / name
    run = run_config(compose_config(cell_overrides(root, *cell, experiment=experiment)), run_dir, quiet=True)
    return run.frame, run_dir


#: per study that reads params or scheduler variants: its cells (overrides beyond the simulate base), one seed each
STUDY_CELLS = {
    "ablations": [[f"scheduler={s}", f"cluster.accelerators={g}"]
                  for s in ("thief", "thief_fixed_split", "thief_fixed_config") for g in (1, 2)],
    "window_length": [[f"scheduler={s}", f"window.seconds={t}"] for s in ("thief", "noretrain") for t in (100, 200)],
    "quantum": [["scheduler=thief", f"cluster.delta={d}"] for d in (0.1, 0.25)],
    "noise": [["scheduler=thief", f"runtime.synthetic.noise={n}"] for n in (0.0, 0.2)],
    "robustness": [[f"scheduler={s}", f"cluster.accelerators={g}"] for s in ("thief", "fair") for g in (1, 2)],
    "optimality": [[f"scheduler={s}", f"runtime.synthetic.streams={n}", "runtime.use_predictions=false"]
                   for s in ("thief", "optimal") for n in (2, 3)],
}


def build_study_sweeps(root: Path) -> dict[str, str]:
    """The cells of STUDY_CELLS, each study in its own experiment of the sweep's store; study -> experiment."""
    experiments = {}
    for study, cells in STUDY_CELLS.items():
        experiments[study] = f"t-{study}"
        for n, extra in enumerate(cells):
            keys = {o.split("=")[0] for o in extra}
            base = [o for o in cell_overrides(root, "thief", 1, 3, 0, experiment=experiments[study])
                    if o.split("=")[0] not in keys]
            run_config(compose_config([*base, *extra]), root / "runs" / f"{study}-{n}", quiet=True)
    return experiments


def build_sweep(root: Path) -> Sweep:
    """The finished cells, then a failed one, a dead one and a rerun, all in experiment ``study``."""
    frames, dirs = {}, {}
    for sched in SCHEDULERS:
        for acc in ACCELERATORS:
            for streams in STREAMS:
                for seed in SEEDS:
                    cell = (sched, acc, streams, seed)
                    frames[cell], dirs[cell] = run_cell(root, "-".join(map(str, cell)), *cell)
    # a rerun of the first cell: the later run counts, the earlier one is superseded
    first = (SCHEDULERS[0], ACCELERATORS[0], STREAMS[0], SEEDS[0])
    frames[first], dirs[first] = run_cell(root, "rerun", *first)

    from ekya.execution.simulate import SimulateRuntime

    real_play = SimulateRuntime.play

    def failing_play(self, window):  # the runtime's own signature
        if window == 1:
            raise RuntimeError("accelerator lost")
        return real_play(self, window)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SimulateRuntime, "play", failing_play)
        with pytest.raises(RuntimeError):
            run_cell(root, "failed", "thief", 1, 2, 7)

    # a process killed -9 mid-run leaves its runs RUNNING: open them and never end them
    from ekya.results.tracking import Tracker

    dead = Tracker(f"sqlite:///{root}/mlflow.db", EXPERIMENT, str(root / "mlartifacts"), root / "runs" / "dead")
    (root / "runs" / "dead").mkdir(parents=True)
    dead.start("dead", {"seed": 8}, ["cam0", "cam1"],
               {"runtime": "simulate", "scheduler": "thief", "accelerators": "1", "seed": "8"})
    return Sweep(root=root, uri=f"sqlite:///{root}/mlflow.db", frames=frames, run_dirs=dirs)
