"""The window loop on the simulate runtime: MLflow layout and endings, resume, schedules, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ekya.composition import run_config
from ekya.errors import EkyaError

SIM = ["runtime=simulate", "runtime.synthetic.streams=4", "runtime.synthetic.windows=4",
       "runtime.synthetic.configs=6", "tracking.experiment=test"]


def _runs(store):
    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_run_logs_parent_children_and_window_steps(make_cfg, tmp_path):
    run = run_config(make_cfg(*SIM, "scheduler=thief", "cluster.accelerators=2"), tmp_path / "run", quiet=True)
    df = run.frame
    assert len(df) == 4 * 4 and set(df["window"]) == {0, 1, 2, 3}
    client, parents, children = _runs(tmp_path / "mlflow.db")  # ${hydra:runtime.cwd} resolved to tmp_path
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["cluster.accelerators"] == "2"
    # class paths are not params (the tags below name the scheduler); tests/results/test_tracking_params.py
    assert "scheduler._target_" not in parent.data.params and parent.data.params["scheduler.rule"]
    # simulate reads no dataset, learner or profiler: their keys are not logged as if they mattered
    assert not any(k.split(".")[0] in ("dataset", "learner", "profiler", "labeler") for k in parent.data.params)
    assert parent.data.tags["scheduler"] == "thief" and parent.data.tags["runtime"] == "simulate"
    hist = client.get_metric_history(children[0].info.run_id, "accuracy")
    assert sorted(m.step for m in hist) == [0, 1, 2, 3]
    stream = children[0].data.tags["stream"]
    expected = df[df["stream"] == stream].sort_values("window")["accuracy"].tolist()
    assert [m.value for m in sorted(hist, key=lambda m: m.step)] == pytest.approx(expected)
    assert parent.data.metrics["mean_accuracy"] == pytest.approx(df["accuracy"].mean())
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"windows.csv", "config.yaml", "schedule.json"} <= arts


def test_run_name_is_built_from_the_scheduler_that_ran(make_cfg, tmp_path):
    run = run_config(make_cfg(*SIM, "scheduler=fair", "cluster.accelerators=2", "seed=3"), tmp_path / "r", quiet=True)
    _, parents, _ = _runs(tmp_path / "mlflow.db")
    assert run.name == parents[0].info.run_name == "synthetic-profiles-fair-2acc-seed3"


def test_interrupted_run_resumes_to_identical_numbers(make_cfg, tmp_path, monkeypatch):
    full = run_config(make_cfg(*SIM, "scheduler=thief"), tmp_path / "a", quiet=True).frame

    from ekya.execution.simulate import SimulateRuntime

    real_play = SimulateRuntime.play

    def dying_play(self, window):
        if window == 2:
            raise KeyboardInterrupt
        return real_play(self, window)

    monkeypatch.setattr(SimulateRuntime, "play", dying_play)
    run_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run_config(make_cfg(*SIM, "scheduler=thief", "tracking.experiment=test"), run_dir, quiet=True)
    assert not (run_dir / "windows.csv").exists()  # nothing claims to be finished
    _, parents, children = _runs(tmp_path / "mlflow.db")
    killed = [p for p in parents if p.data.tags["run_dir"] == str(run_dir.resolve())]
    assert [p.info.status for p in killed] == ["KILLED"]
    monkeypatch.setattr(SimulateRuntime, "play", real_play)
    resumed = run_config(make_cfg(f"resume={run_dir}"), run_dir, quiet=True).frame
    cols = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "infer_share", "train_share"]
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    client, parents, children = _runs(tmp_path / "mlflow.db")
    mine = [p for p in parents if p.data.tags["run_dir"] == str(run_dir.resolve())]
    assert len(mine) == 1 and mine[0].info.status == "FINISHED"  # the same parent run, reopened
    child = next(r for r in children if r.data.tags["mlflow.parentRunId"] == mine[0].info.run_id)
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "accuracy")]
    assert sorted(steps) == [0, 1, 2, 3]  # each window logged exactly once


def test_any_failure_ends_the_runs_as_failed_with_the_error(make_cfg, tmp_path, monkeypatch):
    from ekya.execution.simulate import SimulateRuntime

    def broken_play(self, window):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SimulateRuntime, "play", broken_play)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_config(make_cfg(*SIM, "scheduler=fair"), tmp_path / "run", quiet=True)
    _, parents, children = _runs(tmp_path / "mlflow.db")
    assert {r.info.status for r in parents + children} == {"FAILED"}
    assert parents[0].data.tags["error"] == "RuntimeError: disk on fire"


def test_the_schedule_writer_feeds_replay(make_cfg, tmp_path):
    thief = run_config(make_cfg(*SIM, "scheduler=thief"), tmp_path / "thief", quiet=True).frame
    doc = json.loads((tmp_path / "thief" / "schedule.json").read_text())
    assert doc["format"] == "ekya-schedule/1" and sorted(doc["windows"], key=int) == ["0", "1", "2", "3"]
    replay = run_config(make_cfg(*SIM, "scheduler=replay", f"scheduler.path={tmp_path / 'thief' / 'schedule.json'}"),
                        tmp_path / "replay", quiet=True).frame
    cols = ["window", "stream", "config", "infer_share", "train_share"]  # the initial plans, replayed
    pd.testing.assert_frame_equal(thief[cols], replay[cols])


def test_resume_of_missing_run_names_the_key(make_cfg, tmp_path):
    with pytest.raises(EkyaError, match="resume="):
        run_config(make_cfg(f"resume={tmp_path / 'nope'}"), tmp_path / "nope", quiet=True)


@pytest.mark.parametrize("override, key", [("cluster.accelerators=0", "cluster.accelerators"),
                                           ("cluster.delta=0", "cluster.delta"),
                                           ("runtime.profiles=/does/not/exist", "runtime.profiles"),
                                           ("scheduler.starts=[fair,nope]", "scheduler.starts"),
                                           ("window.segments=0", "window.segments")])
def test_bad_budget_or_input_fails_fast_naming_the_key(make_cfg, tmp_path, override, key):
    with pytest.raises(EkyaError, match=key.replace(".", r"\.")):
        run_config(make_cfg(*SIM, "scheduler=thief", override), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "state.pkl").exists()
    # failed before any run was opened (make_cfg put an empty store in place)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert not client.search_runs(["0"])


def test_a_config_saved_before_a_module_rename_still_resumes(make_cfg, tmp_path):
    # an interrupted run resumes with the config it saved; one saved by the previous release names parts by
    # their old modules (ekya.learners.learner, ekya.plans.schedulers.replay), which must still build
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from ekya.composition import config_for

    run_dir = tmp_path / "old"
    config_for(make_cfg(*SIM, "scheduler=replay", "scheduler.path=schedule.json"), run_dir)
    saved = (run_dir / "config.yaml").read_text()
    old = saved.replace("ekya.learners.finetune.", "ekya.learners.learner.").replace(
        "ekya.plans.schedulers.schedule_replay.", "ekya.plans.schedulers.replay.")
    assert old != saved and "ekya.learners.learner.FinetuneLearner" in old
    (run_dir / "config.yaml").write_text(old)
    cfg = config_for(OmegaConf.create({"resume": str(run_dir)}), run_dir)
    assert OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(OmegaConf.create(saved))
    assert get_class(cfg.learner._target_).__name__ == "FinetuneLearner"
    assert get_class(cfg.scheduler._target_).__name__ == "ReplayScheduler"
