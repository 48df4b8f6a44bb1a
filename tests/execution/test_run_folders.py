"""Runs and sweeps started at once in one folder each keep their own folder, records and MLflow runs."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import hydra.core.utils
import pandas as pd
from hydra.utils import get_class
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

import ekya.app  # noqa: F401 - registers the resolvers the run and sweep folders use
from ekya.hydra_compose import compose_config

from helpers.stores import seed_store

CHEAP = ["runtime=simulate", "runtime.synthetic.streams=2", "runtime.synthetic.windows=2"]
#: what each run plays; the two fair runs have identical configs
SCHEDULERS = ["thief", "fair", "fair"]
#: two one-cell sweeps beside them (another seed, so that no cell is skipped as a twin of a plain run)
SWEEPS = ["noretrain", "thief"]
COMPARED = ["window", "stream", "config", "infer_share", "train_share", "accuracy", "retrain_cost"]


class _Frozen(datetime.datetime):
    """A clock that always says the same second: every process that starts reads the same timestamp."""

    @classmethod
    def now(cls, tz=None):
        return cls(2030, 1, 2, 3, 4, 5)


def test_runs_and_sweeps_that_pick_a_folder_in_the_same_second_get_their_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hydra.core.utils, "datetime", _Frozen)  # what Hydra's ${now:} reads
    (tmp_path / "outputs" / "runs" / "2030-01-02_03-04-05").mkdir(parents=True)  # another process's, made first
    # two processes' configs: each picks its folder the first time it is read, and keeps it
    first, second = (compose_config([], return_hydra_config=True) for _ in range(2))
    picked = [str(first.hydra.run.dir), str(second.hydra.run.dir), str(first.hydra.run.dir)]
    assert picked == ["outputs/runs/2030-01-02_03-04-05-1", "outputs/runs/2030-01-02_03-04-05-2",
                      "outputs/runs/2030-01-02_03-04-05-1"]
    sweeps = [str(first.hydra.sweep.dir), str(second.hydra.sweep.dir), str(second.hydra.sweep.dir)]
    assert sweeps == ["outputs/multiruns/2030-01-02_03-04-05", "outputs/multiruns/2030-01-02_03-04-05-1",
                      "outputs/multiruns/2030-01-02_03-04-05-1"]
    assert sorted(p.name for p in (tmp_path / "outputs" / "runs").iterdir()) == [
        "2030-01-02_03-04-05", "2030-01-02_03-04-05-1", "2030-01-02_03-04-05-2"]
    resumed = compose_config(["resume=outputs/runs/2030-01-02_03-04-05"], return_hydra_config=True)
    assert str(resumed.hydra.run.dir) == "outputs/runs/2030-01-02_03-04-05"  # a resumed run keeps its folder


def _scheduler(run_dir: Path) -> str:
    """The scheduler a run folder's own config.yaml says it played."""
    return get_class(OmegaConf.load(run_dir / "config.yaml").scheduler._target_).name


def _reference(make_cfg, scheduler: str) -> pd.DataFrame:
    """What a run of ``scheduler`` writes to windows.csv (simulate is deterministic for a seed)."""
    from ekya.composition import run_config

    return run_config(make_cfg(*CHEAP, f"scheduler={scheduler}", "~tracking"), Path(f"ref-{scheduler}"),
                      quiet=True).frame


def test_runs_and_sweeps_started_at_once_keep_their_own_folders_records_and_mlflow_runs(tmp_path, make_cfg):
    work = tmp_path / "work"
    seed_store(work)
    env = {**os.environ, "EKYA_DATA": str(tmp_path / "data"), "HYDRA_FULL_ERROR": "0"}
    commands = [[*CHEAP, f"scheduler={s}"] for s in SCHEDULERS]
    commands += [["-m", *CHEAP, f"scheduler={s}", "seed=5"] for s in SWEEPS]
    # started back to back: each picks its folder within the same second or two as the others
    procs = [subprocess.Popen([sys.executable, "-m", "ekya", *args], cwd=work, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for args in commands]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errors

    run_dirs = sorted((work / "outputs" / "runs").iterdir())
    assert len(run_dirs) == len(SCHEDULERS), run_dirs
    assert sorted(_scheduler(d) for d in run_dirs) == sorted(SCHEDULERS)
    cells = sorted((work / "outputs" / "multiruns").glob("*/*/cell.json"))
    assert len({c.parent.parent for c in cells}) == len(SWEEPS), cells
    assert sorted(_scheduler(c.parent) for c in cells) == sorted(SWEEPS)
    assert {json.loads(c.read_text())["status"] for c in cells} == {"FINISHED"}

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic-profiles").experiment_id])
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert len(parents) == len(commands) and len(runs) == 3 * len(commands)  # a parent and 2 cameras each
    assert {r.info.status for r in runs} == {"FINISHED"}
    references = {s: _reference(make_cfg, s) for s in set(SCHEDULERS)}
    for run_dir in [*run_dirs, *(c.parent for c in cells)]:
        scheduler = _scheduler(run_dir)
        parent = parents[json.loads((run_dir / "tracking.json").read_text())["parent"]]
        assert parent.data.tags["scheduler"] == scheduler and Path(parent.data.tags["run_dir"]) == run_dir
        if run_dir in run_dirs:  # the records are those of the scheduler the folder's config names
            records = pd.read_csv(run_dir / "windows.csv")
            pd.testing.assert_frame_equal(records[COMPARED], references[scheduler][COMPARED], check_dtype=False)
            logged = [m.value for m in sorted(client.get_metric_history(parent.info.run_id, "accuracy"),
                                              key=lambda m: m.step)]
            assert logged == records.groupby("window")["accuracy"].mean().tolist()
