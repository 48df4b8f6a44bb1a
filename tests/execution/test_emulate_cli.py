"""`python -m ekya` as a user runs it: determinism, kill-and-resume, clear errors, help."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers.cli import ekya, run_dir_of
from helpers.stores import seed_store

RESULT_COLS = ["window", "stream", "config", "accuracy", "noretrain_accuracy", "start_accuracy",
               "end_accuracy", "retrain_cost", "completion_time", "infer_share", "train_share", "predicted_cost"]


# experiment=tiny's pools hold a few dozen samples: a trial on the default 5 % of them sees three and
# predicts no gain, so the thief would retrain nothing; half the pool gives it something to go on
TINY = ["experiment=tiny", "threads=1", "profiler.sample_fraction=0.5"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    # the one run that trains its own base models: every other run here loads them from the session's
    # cache, so their equality with this one also checks that the cache changes no number
    tmp = tmp_path_factory.mktemp("ref")
    out = ekya(tmp, *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "overall" in out.stdout and "mlflow ui" in out.stdout
    return pd.read_csv(run_dir_of(tmp) / "windows.csv")


def test_same_seed_same_numbers(reference, tmp_path, base_cache):
    out = ekya(tmp_path, *TINY, base_cache=base_cache)
    assert out.returncode == 0, out.stderr[-3000:]
    again = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    pd.testing.assert_frame_equal(reference[RESULT_COLS], again[RESULT_COLS])


def test_different_seed_different_data(reference, tmp_path, base_cache):
    out = ekya(tmp_path, *TINY, "seed=1", "dataset.seed=1", base_cache=base_cache)
    assert out.returncode == 0, out.stderr[-3000:]
    other = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    assert not other["accuracy"].equals(reference["accuracy"])


def _parents(tmp: Path):
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" not in r.data.tags], runs


def test_ctrl_c_ends_the_runs_as_killed_and_prints_the_resume_command(tmp_path, base_cache):
    out = ekya(tmp_path, *TINY, "+callbacks.stop._target_=helpers.crash.CrashAfter", "+callbacks.stop.window=1",
               "+callbacks.stop.how=interrupt", base_cache=base_cache)
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


def test_cost_noise_makes_realised_costs_differ_from_predictions(reference, tmp_path, base_cache):
    exact = reference.dropna(subset=["predicted_cost"])
    exact = exact[exact["retrain_cost"] > 0]
    assert len(exact) and (exact["retrain_cost"] / exact["predicted_cost"]).sub(1).abs().max() < 1e-6
    out = ekya(tmp_path, *TINY, "runtime.cost_noise=0.3", base_cache=base_cache)
    assert out.returncode == 0, out.stderr[-3000:]
    noisy = pd.read_csv(run_dir_of(tmp_path) / "windows.csv")
    noisy = noisy[noisy["retrain_cost"] > 0]
    ratio = noisy["retrain_cost"] / noisy["predicted_cost"]
    assert len(ratio) and (ratio.sub(1).abs() > 0.01).all()  # seeded lognormal factors, sigma 0.3


BAD_INPUT = [
    (["runtime.cost_noise=-1"], "runtime.cost_noise"),
    (["tracking=null"], "~tracking"),
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
]


def _one_clear_line(tmp_path, args, needle, status, stderr) -> None:
    assert status == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ekya: error: ") and needle in lines[0], stderr
    assert not list(tmp_path.glob("outputs/runs/*/state.pkl"))  # nothing half-run left to resume
    # checked before any data was generated or any model trained
    assert not (tmp_path / "data").exists() or args[0].startswith("dataset=")


@pytest.mark.parametrize("args, needle", BAD_INPUT)
def test_bad_input_fails_fast_with_one_clear_message(tmp_path, monkeypatch, capfd, args, needle):
    # the entry point itself (what `python -m ekya ARGS` calls), in this process: the same code minus the
    # interpreter start; the two cases below pin it in a real child process too
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", *args])
    seed_store(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli()
    _one_clear_line(tmp_path, args, needle, done.value.code, capfd.readouterr().err)


@pytest.mark.parametrize("args, needle", [BAD_INPUT[-1], BAD_INPUT[0]], ids=["hydra-level", "from-a-target"])
def test_bad_input_in_a_child_process_exits_2_with_one_line(tmp_path, args, needle):
    out = ekya(tmp_path, *args, timeout=300)
    _one_clear_line(tmp_path, args, needle, out.returncode, out.stderr)


def test_cfg_job_prints_the_resolved_config(tmp_path):
    # --help is tests/test_help.py's
    out = ekya(tmp_path, "--cfg", "job", timeout=120)
    assert out.returncode == 0 and "accelerators" in out.stdout and "window" in out.stdout
