"""A sweep whose cells already finished does no work on rerun; a failing cell neither stops the sweep nor hides."""

from __future__ import annotations

import json
import subprocess
import sys

from mlflow.tracking import MlflowClient

from ekya.sweeps import fingerprint

from helpers.stores import seed_store

CELL = ["runtime=simulate", "runtime.synthetic.streams=3", "runtime.synthetic.windows=2"]


def _sweep(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    seed_store(tmp_path)
    return subprocess.run([sys.executable, "-m", "ekya", "-m", *CELL, *overrides], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def _parents(tmp_path) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic-profiles").experiment_id])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def _cells(tmp_path) -> dict[str, str]:
    out = {}
    for path in tmp_path.glob("outputs/multiruns/*/*/cell.json"):
        cell = json.loads(path.read_text())
        out[next(o for o in cell["overrides"] if o.startswith("scheduler="))] = cell["status"]
    return out


def test_rerun_skips_finished_cells_and_a_failed_cell_does_not_stop_the_sweep(tmp_path):
    # scheduler=replay without its required path fails; the cells after it still run
    first = _sweep(tmp_path, "scheduler=fair,replay,thief", "hydra.sweep.dir=outputs/multiruns/a")
    assert first.returncode == 1, first.stderr
    assert "cell FAILED: " in first.stderr and "scheduler=replay" in first.stderr
    assert "scheduler.path is required" in first.stderr
    assert "3 cells: 2 ran, 0 skipped" in first.stderr
    assert _cells(tmp_path) == {"scheduler=fair": "FINISHED", "scheduler=replay": "FAILED",
                                "scheduler=thief": "FINISHED"}
    before = _parents(tmp_path)
    assert sorted(r.data.tags["scheduler"] for r in before) == ["fair", "thief"]
    assert {r.info.status for r in before} == {"FINISHED"}
    assert len({r.data.tags["config_hash"] for r in before}) == 2

    again = _sweep(tmp_path, "scheduler=fair,thief,uniform", "hydra.sweep.dir=outputs/multiruns/b")
    assert again.returncode == 0, again.stderr
    assert "3 cells: 1 ran, 2 skipped" in again.stderr
    assert again.stdout.count("ekya: skipped: this config FINISHED before as MLflow run") == 2
    after = _parents(tmp_path)
    assert sorted(r.data.tags["scheduler"] for r in after) == ["fair", "thief", "uniform"]  # no second fair/thief
    ids = {r.data.tags["scheduler"]: r.info.run_id for r in before}
    assert all(r.info.run_id == ids[r.data.tags["scheduler"]] for r in after if r.data.tags["scheduler"] in ids)



def test_a_twin_stands_for_a_finished_cell_unless_skip_finished_is_off(make_cfg, tmp_path):
    from ekya.composition import run_config

    cfg = make_cfg(*CELL, "scheduler=fair")
    first = run_config(cfg, tmp_path / "a", quiet=True)
    again = run_config(make_cfg(*CELL, "scheduler=fair", "log_level=error"), tmp_path / "b", quiet=True,
                       skip_finished=True)
    assert again.skipped is not None and again.records == []
    assert again.skipped.run_id == first.callbacks["tracking"].tracker.parent_id
    assert again.summary["mean_accuracy"] == first.summary["mean_accuracy"]
    other_seed = run_config(make_cfg(*CELL, "scheduler=fair", "seed=1"), tmp_path / "c", quiet=True, skip_finished=True)
    assert other_seed.skipped is None and other_seed.records
    forced = run_config(make_cfg(*CELL, "scheduler=fair"), tmp_path / "d", quiet=True, skip_finished=False)
    assert forced.skipped is None and forced.records
    assert [r.data.tags["seed"] for r in _parents(tmp_path)].count("0") == 2


def test_fingerprint_ignores_where_files_go_but_not_what_changes_numbers():
    cfg = {"seed": 0, "scheduler": {"name": "thief"}, "output_root": "a", "log_level": "info",
           "tracking": {"uri": "sqlite:///x.db"}, "runtime": {"base_cache": None, "cost_noise": 0.0}}
    same = {**cfg, "output_root": "b", "log_level": "error", "tracking": None,
            "runtime": {"base_cache": "/tmp/c", "cost_noise": 0.0, "connect_timeout_s": 5.0}}
    assert fingerprint(cfg) == fingerprint(same)
    assert fingerprint(cfg) != fingerprint({**cfg, "seed": 1})
    assert fingerprint(cfg) != fingerprint({**cfg, "runtime": {"base_cache": None, "cost_noise": 0.1}})


def test_a_cell_tracked_before_a_module_rename_keeps_its_fingerprint():
    # python -m ekya -m skips a cell whose FINISHED twin has the same fingerprint; a part whose module was
    # renamed (ekya.learners.learner -> ekya.learners.finetune) computes the same numbers, so its cells
    # tracked under the old name must still be found
    def cell(target: str) -> dict:
        return {"seed": 0, "learner": {"_target_": target, "epochs": 5}, "scheduler": {"_target_": "x.Y"}}

    assert fingerprint(cell("ekya.learners.finetune.FinetuneLearner")) == fingerprint(
        cell("ekya.learners.learner.FinetuneLearner"))
    assert fingerprint(cell("ekya.learners.icarl.IcarlLearner")) != fingerprint(
        cell("ekya.learners.finetune.FinetuneLearner"))
