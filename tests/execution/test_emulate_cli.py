"""`python -m ekya` as a user runs it: determinism, kill-and-resume, clear errors, help."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

RESULT_COLS = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "start_accuracy",
               "end_accuracy", "retrain_cost", "completion_time", "infer_share", "train_share", "predicted_cost"]


def ekya(tmp: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run python -m ekya in tmp (its own MLflow store and data cache)."""
    env = {**os.environ, "EKYA_DATA": str(tmp / "data"), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "ekya", *args], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=timeout)


def run_dir_of(tmp: Path) -> Path:
    (d,) = list((tmp / "outputs" / "runs").iterdir())
    return d


TINY = ["experiment=tiny", "runtime.num_threads=1", "learner.num_threads=1"]


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


def test_killed_run_resumes_to_the_same_numbers(reference, tmp_path):
    env = {**os.environ, "EKYA_DATA": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "ekya", *TINY], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    state = None
    while time.time() < deadline and proc.poll() is None:
        runs = tmp_path / "outputs" / "runs"
        if runs.exists():
            found = list(runs.glob("*/state.pkl"))
            if found:
                state = found[0]
                break
        time.sleep(0.2)
    assert state is not None, "the run never completed a window"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = state.parent
    assert not (run_dir / "windows.csv").exists()
    out = ekya(tmp_path, f"resume={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = pd.read_csv(run_dir / "windows.csv")
    pd.testing.assert_frame_equal(reference[RESULT_COLS], resumed[RESULT_COLS])
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


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
])
def test_bad_input_fails_fast_with_one_clear_message(tmp_path, args, needle):
    out = ekya(tmp_path, *args, timeout=300)
    assert out.returncode != 0
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.glob("outputs/runs/*/state.pkl"))  # nothing half-run left to resume


def test_help_and_cfg_job(tmp_path):
    out = ekya(tmp_path, "--help", timeout=120)
    assert out.returncode == 0 and "scheduler" in out.stdout
    out = ekya(tmp_path, "--cfg", "job", timeout=120)
    assert out.returncode == 0 and "accelerators" in out.stdout and "window" in out.stdout
