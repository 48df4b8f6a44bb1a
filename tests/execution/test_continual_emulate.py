"""Forgetting measured in emulate: the accuracy matrix, what is logged of it, and that a resume keeps it."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from ekya.composition import run_config
from ekya.results.continual import continual_metrics, running_metrics

from helpers.cli import ekya, run_dir_of

# 3 windows after the bootstrap one: the first run length where backward transfer is defined (lag 1)
TINY = ["experiment=tiny", "dataset.windows=4", "threads=1", "scheduler=uniform",
        "++callbacks.continual._target_=ekya.callbacks.continual.ContinualCsv"]


def test_matrix_rows_are_the_served_models_on_every_probe(make_cfg, tmp_path):
    run = run_config(make_cfg(*TINY), tmp_path / "run", quiet=True)
    rt = run.runtime
    svc = rt.retraining
    mats = rt.accuracy_matrices()
    assert sorted(mats) == sorted(rt.streams)
    for cam, m in mats.items():
        probes = [w.probe for w in svc.windows_of[cam][1:]]
        assert m.values.shape == (4, 3) and m.played == 3
        assert m.probe_sizes == tuple(len(p) for p in probes) and min(m.probe_sizes) > 0
        # row 0 is the base model, the last row the model serving when the run ended (carry-over)
        base = [svc.learner.evaluate(rt.models.base[cam], p, svc.stream_set) for p in probes]
        last = [svc.learner.evaluate(rt.models.serving[cam], p, svc.stream_set) for p in probes]
        np.testing.assert_allclose(m.values[0], base)
        np.testing.assert_allclose(m.values[-1], last)
        assert np.isfinite(m.values).all() and ((m.values >= 0) & (m.values <= 1)).all()
    # uniform retrains every camera in every window, so the rows after the base model are new models
    assert any(not np.array_equal(m.values[0], m.values[1]) for m in mats.values())

    table = pd.read_csv(tmp_path / "run" / "continual.csv")
    assert len(table) == len(mats) * 4 * 3
    cam = rt.streams[0]
    back = table[table.camera == cam].pivot(index="row", columns="col", values="accuracy").to_numpy()
    np.testing.assert_allclose(back, mats[cam].values)

    # MLflow: running metrics per window step, the last step being the final metrics of the whole matrix
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    child = next(r for r in runs if r.data.tags.get("stream") == cam)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    history = client.get_metric_history(child.info.run_id, "cl_live_accuracy")
    assert sorted(h.step for h in history) == [1, 2, 3]
    final = continual_metrics(mats[cam].values, sizes=mats[cam].probe_sizes)
    assert child.data.metrics["cl_bwt"] == pytest.approx(final["bwt"])
    assert child.data.metrics["cl_forgetting"] == pytest.approx(final["forgetting"])
    assert [h.step for h in client.get_metric_history(child.info.run_id, "cl_bwt")] == [3]  # NaN before
    _, macro = running_metrics(mats, 3)
    assert parent.data.metrics["cl_final_accuracy"] == pytest.approx(macro["final_accuracy"])
    assert any(a.path == "continual.csv" for a in client.list_artifacts(parent.info.run_id))


def test_switched_off_changes_no_number(make_cfg, tmp_path):
    on = run_config(make_cfg(*TINY[:4]), tmp_path / "on", quiet=True)
    off = run_config(make_cfg(*TINY, "window.forgetting=false"), tmp_path / "off", quiet=True)
    assert off.runtime.accuracy_matrices() is None and not (tmp_path / "off" / "continual.csv").exists()
    cols = [c for c in on.frame.columns if c != "scheduler_seconds"]
    pd.testing.assert_frame_equal(on.frame[cols], off.frame[cols])


def test_simulate_has_no_matrix(make_cfg, tmp_path):
    run = run_config(make_cfg("runtime=simulate", *TINY[4:]), tmp_path / "sim", quiet=True)
    assert run.runtime.accuracy_matrices() is None and not (tmp_path / "sim" / "continual.csv").exists()


RESULT_COLS = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "start_accuracy",
               "end_accuracy", "retrain_cost", "completion_time", "infer_share", "train_share", "predicted_cost"]


def test_a_killed_run_resumes_to_the_same_numbers_and_matrix(tmp_path, base_cache):
    # the thief (its profiler's state must survive the restart) with the accuracy matrix written per window
    args = ["experiment=tiny", "dataset.windows=4", "threads=1", TINY[-1]]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir(), broken.mkdir()
    done = ekya(whole, *args, base_cache=base_cache)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "overall" in done.stdout and "mlflow ui" in done.stdout
    # dies hard right after window 2 is checkpointed, before it is logged
    out = ekya(broken, *args, "+callbacks.crash._target_=helpers.crash.CrashAfter", "+callbacks.crash.window=2",
               base_cache=base_cache)
    assert out.returncode == 137, out.stderr[-3000:]
    run_dir = run_dir_of(broken)
    assert (run_dir / "state.pkl").exists() and not (run_dir / "windows.csv").exists()
    out = ekya(broken, f"resume={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    ref_dir = run_dir_of(whole)
    reference = pd.read_csv(ref_dir / "windows.csv")
    pd.testing.assert_frame_equal(reference[RESULT_COLS], pd.read_csv(run_dir / "windows.csv")[RESULT_COLS])
    pd.testing.assert_frame_equal(pd.read_csv(ref_dir / "continual.csv"), pd.read_csv(run_dir / "continual.csv"))
    # one parent run, FINISHED; every window's metrics logged once, window 2's by the resumed process
    client = mlflow.tracking.MlflowClient(f"sqlite:///{broken}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(h.step for h in client.get_metric_history(parents[0].info.run_id, "cl_live_accuracy")) == [1, 2, 3]
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "accuracy"))
    assert steps == sorted(reference["window"].unique().tolist())


def test_a_model_that_serves_again_is_scored_once(make_cfg, tmp_path, monkeypatch):
    from ekya.execution.continual_eval import ProbeEvaluator

    scored = []
    real = ProbeEvaluator.score
    monkeypatch.setattr(ProbeEvaluator, "score", lambda self, cam, model: scored.append(cam) or real(self, cam, model))
    run = run_config(make_cfg(*TINY[:3], "scheduler=noretrain"), tmp_path / "run", quiet=True)
    for m in run.runtime.accuracy_matrices().values():
        assert (m.values == m.values[0]).all()  # the base model served every window
    assert sorted(scored) == sorted(run.runtime.streams)  # row 0 only; later rows are the same model's
