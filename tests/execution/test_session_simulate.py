"""The session loop on the simulate runtime: MLflow layout, resume after an interruption, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from ekya.app import CONF_DIR
from ekya.errors import EkyaError
from ekya.execution import session as session_mod
from ekya.execution.session import run_session


def make_cfg(tmp_path: Path, *overrides: str):
    """Compose the real config with a private MLflow store."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[
            "runtime=simulate", "runtime.synthetic.streams=4", "runtime.synthetic.windows=4",
            "runtime.synthetic.configs=6", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"tracking.artifact_root={tmp_path}/artifacts", "tracking.experiment=test", *overrides])


def test_run_logs_parent_children_and_window_steps(tmp_path):
    cfg = make_cfg(tmp_path, "scheduler=thief", "cluster.accelerators=2")
    df = run_session(cfg, tmp_path / "run", quiet=True)
    assert len(df) == 4 * 4 and set(df["window"]) == {0, 1, 2, 3}
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("test")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["cluster.accelerators"] == "2"
    assert parent.data.params["scheduler._target_"].endswith("ThiefScheduler")
    hist = client.get_metric_history(children[0].info.run_id, "accuracy")
    assert sorted(m.step for m in hist) == [0, 1, 2, 3]
    stream = children[0].data.tags["stream"]
    expected = df[df["stream"] == stream].sort_values("window")["accuracy"].tolist()
    assert [m.value for m in sorted(hist, key=lambda m: m.step)] == pytest.approx(expected)
    assert parent.data.metrics["mean_accuracy"] == pytest.approx(df["accuracy"].mean())
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"windows.csv", "config.yaml"} <= arts


def test_interrupted_run_resumes_to_identical_numbers(tmp_path, monkeypatch):
    full = run_session(make_cfg(tmp_path / "a", "scheduler=thief"), tmp_path / "a" / "run", quiet=True)

    from ekya.execution.simulate_runtime import SimulateRuntime

    real_play = SimulateRuntime.play

    def dying_play(self, window):
        if window == 2:
            raise KeyboardInterrupt
        return real_play(self, window)

    monkeypatch.setattr(SimulateRuntime, "play", dying_play)
    run_dir = tmp_path / "b" / "run"
    with pytest.raises(KeyboardInterrupt):
        run_session(make_cfg(tmp_path / "b", "scheduler=thief"), run_dir, quiet=True)
    assert not (run_dir / "windows.csv").exists()  # nothing claims to be finished
    monkeypatch.setattr(SimulateRuntime, "play", real_play)
    resumed = run_session(make_cfg(tmp_path / "b", f"resume={run_dir}"), run_dir, quiet=True)
    cols = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "infer_share", "train_share"]
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    client = MlflowClient(f"sqlite:///{tmp_path}/b/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" not in r.data.tags]) == 1  # same parent run
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "accuracy")]
    assert sorted(steps) == [0, 1, 2, 3]  # each window logged exactly once


def test_resume_of_missing_run_names_the_key(tmp_path):
    cfg = make_cfg(tmp_path, f"resume={tmp_path / 'nope'}")
    with pytest.raises(EkyaError, match="resume="):
        run_session(cfg, tmp_path / "nope", quiet=True)


@pytest.mark.parametrize("override, key", [("cluster.accelerators=0", "cluster.accelerators"),
                                           ("cluster.delta=0", "cluster.delta"),
                                           ("runtime.profiles=/does/not/exist", "runtime.profiles")])
def test_bad_budget_or_input_fails_fast_naming_the_key(tmp_path, override, key):
    with pytest.raises(EkyaError, match=key.replace(".", r"\.")):
        run_session(make_cfg(tmp_path, override), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "state.pkl").exists()
    assert not (tmp_path / "mlflow.db").exists()  # failed before any run was opened


def test_run_name_uses_scheduler_name(tmp_path):
    cfg = make_cfg(tmp_path, "scheduler=fair")
    assert session_mod.run_name(cfg, "fair") == "synthetic-fair-1acc-seed0"
