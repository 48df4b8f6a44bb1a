"""`python -m ekya` as a user runs it: determinism, kill-and-resume, clear errors, help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

RESULT_COLS = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "start_accuracy",
               "end_accuracy", "retrain_cost", "completion_time", "infer_share", "train_share", "predicted_cost"]
TESTS = Path(__file__).resolve().parents[1]


def ekya(tmp: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run python -m ekya in tmp (its own MLflow store and data cache; tests/ importable for test callbacks)."""
    env = {**os.environ, "EKYA_DATA": str(tmp / "data"), "HYDRA_FULL_ERROR": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "ekya", *args], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=timeout)


def run_dir_of(tmp: Path) -> Path:
    (d,) = list((tmp / "outputs" / "runs").iterdir())
    return d


TINY = ["experiment=tiny", "threads=1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("ref")
    out = ekya(tmp, *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "overall" in out.stdout and "mlflow ui" in out.stdout
    return pd.read_csv(run_dir_of(tmp) / "windows.csv")


def test_same_seed_same_numbers(reference, tmp_path):
    out = ekya(tmp_path, *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    again = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    pd.testing.assert_frame_equal(reference[RESULT_COLS], again[RESULT_COLS])


def test_different_seed_different_data(reference, tmp_path):
    out = ekya(tmp_path, *TINY, "seed=1", "dataset.seed=1")
    assert out.returncode == 0, out.stderr[-3000:]
    other = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    assert not other["accuracy"].equals(reference["accuracy"])


def _parents(tmp: Path):
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" not in r.data.tags], runs


def test_killed_run_resumes_to_the_same_numbers(reference, tmp_path):
    # the process dies hard right after window 1 is checkpointed and before it is logged to MLflow
    out = ekya(tmp_path, *TINY, "+callbacks.crash._target_=helpers.crash.CrashAfter", "+callbacks.crash.window=1")
    assert out.returncode == 137, out.stderr[-3000:]
    run_dir = run_dir_of(tmp_path)
    assert (run_dir / "state.pkl").exists() and not (run_dir / "windows.csv").exists()
    out = ekya(tmp_path, f"resume={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = pd.read_csv(run_dir / "windows.csv")
    pd.testing.assert_frame_equal(reference[RESULT_COLS], resumed[RESULT_COLS])
    client, parents, runs = _parents(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "accuracy"))
    assert steps == sorted(reference["window"].unique().tolist())  # window 1 logged once, after the restart


def test_ctrl_c_ends_the_runs_as_killed_and_prints_the_resume_command(tmp_path):
    out = ekya(tmp_path, *TINY, "+callbacks.stop._target_=helpers.crash.CrashAfter", "+callbacks.stop.window=1",
               "+callbacks.stop.how=interrupt")
    assert out.returncode == 130, out.stderr[-3000:]
    run_dir = run_dir_of(tmp_path)
    assert f"python -m ekya resume={run_dir}" in out.stderr
    _, parents, runs = _parents(tmp_path)
    assert {r.info.status for r in runs} == {"KILLED"}


def test_cached_base_models_give_the_same_numbers(reference, tmp_path):
    cache = tmp_path / "base"
    for _ in range(2):  # the first run trains and keeps the base models, the second loads them
        out = ekya(tmp_path, *TINY, f"runtime.base_cache={cache}", f"output_root={tmp_path / 'runs'}/{_}")
        assert out.returncode == 0, out.stderr[-3000:]
    assert len(list(cache.glob("*.pt"))) == 2  # one per camera, shared by both runs
    (warm,) = list((tmp_path / "runs" / "1").iterdir())
    pd.testing.assert_frame_equal(reference[RESULT_COLS], pd.read_csv(warm / "windows.csv")[RESULT_COLS])


def test_cost_noise_makes_realised_costs_differ_from_predictions(reference, tmp_path):
    exact = reference.dropna(subset=["predicted_cost"])
    exact = exact[exact["retrain_cost"] > 0]
    assert len(exact) and (exact["retrain_cost"] / exact["predicted_cost"]).sub(1).abs().max() < 1e-6
    out = ekya(tmp_path, *TINY, "runtime.cost_noise=0.3")
    assert out.returncode == 0, out.stderr[-3000:]
    noisy = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    noisy = noisy[noisy["retrain_cost"] > 0]
    ratio = noisy["retrain_cost"] / noisy["predicted_cost"]
    assert len(ratio) and (ratio.sub(1).abs() > 0.01).all()  # seeded lognormal factors, sigma 0.3


@pytest.mark.parametrize("args, needle", [
    (["runtime.cost_noise=-1"], "runtime.cost_noise"),
    (["window.segments=0"], "window.segments"),
    (["dataset=nope"], "dataset"),
    (["scheduler=nope"], "scheduler"),
    (["cluster.accelerators=0"], "cluster.accelerators"),
    (["dataset=cityscapes", "dataset.root=/no/such/dir"], "/no/such/dir"),
    (["dataset=waymo"], "dataset.root"),
    (["scheduler=fair", "scheduler.inference_weight=2"], "scheduler.inference_weight"),
    (["profiler.family=nope"], "profiler.family"),
    (["scheduler.starts=[fair,nope]"], "scheduler.starts"),
    (["scheduler=replay"], "scheduler.path"),
    (["learner.accelerator=tpu"], "learner.accelerator"),
    (["no_such_key=1"], "no_such_key"),
])
def test_bad_input_fails_fast_with_one_clear_message(tmp_path, args, needle):
    out = ekya(tmp_path, *args, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ekya: error: ") and needle in lines[0], out.stderr
    assert not list(tmp_path.glob("outputs/runs/*/state.pkl"))  # nothing half-run left to resume
    # checked before any data was generated or any model trained
    assert not (tmp_path / "data").exists() or args[0].startswith("dataset=")


def test_help_and_cfg_job(tmp_path):
    out = ekya(tmp_path, "--help", timeout=120)
    assert out.returncode == 0 and "scheduler" in out.stdout
    out = ekya(tmp_path, "--cfg", "job", timeout=120)
    assert out.returncode == 0 and "accelerators" in out.stdout and "window" in out.stdout
