"""model_cache and the thief with cached models, end to end: emulate, profiling mode, simulate, resume."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ekya.composition import run_config
from ekya.profiles.io import read_profiles

TINY = ["experiment=tiny", "threads=1", "~tracking"]
# profiling mode trains every config of the space: two configs (one per family) are enough for the cache's
# bookkeeping (tests/execution/test_profiling_mode.py runs it over the full space)
QUICK = "configspace=quick"
COLS = ["window", "stream", "config", "accuracy", "oracle_accuracy", "start_accuracy", "end_accuracy",
        "completion_time", "infer_share", "train_share", "retrain_cost", "profiling_cost"]


def _source_window(config: str) -> int:
    return int(config.rsplit(":w", 1)[1])


def test_model_cache_in_emulate_then_simulate_from_its_profiles(make_cfg, tmp_path):
    emu = run_config(make_cfg(*TINY, QUICK, "scheduler=model_cache", "callbacks=[default,profile_all]"),
                     tmp_path / "emu", quiet=True).frame
    assert len(emu) == 2 * 2
    assert emu["config"].str.startswith("cache:").all()
    # only models of earlier windows, switched to at the label delay, nothing retrained, all to inference
    assert all(_source_window(c) < w for c, w in zip(emu["config"], emu["window"]))
    assert (emu["train_share"] == 0).all() and (emu["retrain_cost"] == 0).all()
    assert (emu["completion_time"] == 2.0).all()
    assert (emu["oracle_accuracy"] >= emu["accuracy"] - 1e-12).all()
    assert (emu["oracle_accuracy"] <= 1).all()

    ps = read_profiles(tmp_path / "emu" / "profiles.json")
    for w, (truth, pred) in enumerate(zip(ps.truth, ps.predicted), start=1):
        for t, p in zip(truth, pred):
            assert t.observables["window"] == w and len(t.observables["class_distribution"]) == 6
            cached = [c for c in t.configs if c.config.startswith("cache:")]
            assert [c.config for c in cached] == [f"cache:w{i}" for i in range(w)]
            for c in cached:
                assert c.cost == 0 and 0 <= c.accuracy <= 1 and 0 <= c.val_accuracy <= 1
                assert p.config(c.config).accuracy == c.val_accuracy  # what a scheduler is told: val accuracy
    table = pd.read_csv(tmp_path / "emu" / "profiling.csv")
    assert table["config"].str.startswith("cache:").sum() == 2 * (1 + 2)

    sim = run_config(make_cfg("runtime=simulate", f"runtime.profiles={tmp_path}/emu/profiles.json",
                              "scheduler=model_cache", "~tracking"), tmp_path / "sim", quiet=True).frame
    # the same observables, the same heuristic: simulate picks what emulate picked
    assert list(sim["config"]) == list(emu["config"])
    assert (sim["oracle_accuracy"] >= sim["accuracy"] - 1e-12).all()

    thief = run_config(make_cfg("runtime=simulate", f"runtime.profiles={tmp_path}/emu/profiles.json",
                                "scheduler=thief", "~tracking"), tmp_path / "sim_thief", quiet=True).frame
    assert not thief["config"].str.startswith("cache:").any()  # ignored without scheduler.cached_models
    assert thief["oracle_accuracy"].isna().all()


def test_thief_with_cached_models_in_emulate_and_profiling_mode(make_cfg, tmp_path):
    emu = run_config(make_cfg(*TINY, QUICK, "scheduler.cached_models=true", "callbacks=[default,profile_all]"),
                     tmp_path / "emu", quiet=True).frame
    assert emu["accuracy"].between(0, 1).all() and (emu["profiling_cost"] > 0).all()
    ps = read_profiles(tmp_path / "emu" / "profiles.json")
    for w, truth in enumerate(ps.truth, start=1):
        for t in truth:
            cached = [c for c in t.configs if c.config.startswith("cache:")]
            # the run's own earlier models, never the one serving (that is "no retraining")
            assert all(_source_window(c.config) < w for c in cached)
    sim = run_config(make_cfg("runtime=simulate", f"runtime.profiles={tmp_path}/emu/profiles.json",
                              "scheduler=thief", "scheduler.cached_models=true", "~tracking"),
                     tmp_path / "sim", quiet=True).frame
    assert len(sim) == len(emu) and all(math.isfinite(a) for a in sim["accuracy"])


def test_model_cache_run_resumes_to_the_same_numbers(make_cfg, tmp_path):
    full = run_config(make_cfg(*TINY, "scheduler=model_cache"), tmp_path / "full", quiet=True).frame
    crash = ["+callbacks.stop._target_=helpers.crash.CrashAfter", "+callbacks.stop.window=1",
             "+callbacks.stop.how=interrupt"]
    with pytest.raises(KeyboardInterrupt):
        run_config(make_cfg(*TINY, "scheduler=model_cache", *crash), tmp_path / "cut", quiet=True)
    resumed = run_config(make_cfg(f"resume={tmp_path / 'cut'}"), tmp_path / "cut", quiet=True).frame
    pd.testing.assert_frame_equal(full[COLS], resumed[COLS])
