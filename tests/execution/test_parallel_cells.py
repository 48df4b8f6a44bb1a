"""Sweep cells started at once in a fresh folder share one new MLflow store without tripping over each other."""

from __future__ import annotations

import subprocess
import sys

from mlflow.tracking import MlflowClient


def test_two_cells_started_at_once_in_a_fresh_folder_both_finish(tmp_path):
    args = ["runtime=simulate", "runtime.synthetic.streams=3", "runtime.synthetic.windows=2"]
    procs = [subprocess.Popen([sys.executable, "-m", "ekya", *args, f"seed={s}", f"output_root=runs{s}"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for s in (0, 1)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic-profiles").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.data.tags["seed"] for r in parents) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}
