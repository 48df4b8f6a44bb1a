"""Profiling mode: an emulate run that trains every config writes a profile set runtime=simulate reads."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ekya.composition import run_config
from ekya.errors import EkyaError
from ekya.profiles.io import read_profiles
from ekya.profiles.types import MeasuredUnder

TINY = ["experiment=tiny", "dataset.windows=3", "threads=1"]


def test_profile_all_feeds_the_simulator(make_cfg, tmp_path):
    emu = run_config(make_cfg(*TINY, "scheduler=thief", "callbacks=[default,profile_all]"),
                     tmp_path / "emu", quiet=True).frame
    ps = read_profiles(tmp_path / "emu" / "profiles.json")
    assert ps.measured_under == MeasuredUnder(window_seconds=200.0, accelerators=1, delta=0.05)
    assert ps.n_windows == 2 and sorted(ps.streams) == sorted(emu["stream"].unique())
    space = {c.config for c in ps.truth[0][0].configs}
    assert len(space) == 8  # every config of the default space, trained fully
    for truth_w, pred_w in zip(ps.truth, ps.predicted):
        for t, p in zip(truth_w, pred_w):
            assert {c.config for c in p.configs} == space
            assert all(0 <= c.accuracy <= 1 and c.cost > 0 for c in t.configs)
    # the thief's micro-profiling was charged: every camera in the first window
    first_window = emu["window"] == emu["window"].min()
    assert (emu.loc[first_window, "profiling_cost"] > 0).all()
    assert emu["predicted_accuracy"].notna().all()
    # the prediction-vs-truth table: one row per window, camera and config, matching profiles.json
    table = pd.read_csv(tmp_path / "emu" / "profiling.csv")
    assert len(table) == 2 * len(ps.streams) * 8
    for col in ("predicted_accuracy", "val_accuracy", "live_accuracy", "start_val_accuracy"):
        assert table[col].between(0, 1).all(), col
    w0 = {(c.config): c for c in ps.predicted[0][0].configs}
    first = table[(table["window"] == table["window"].min()) & (table["stream"] == ps.predicted[0][0].stream)]
    for _, row in first.iterrows():
        assert row["predicted_accuracy"] == pytest.approx(w0[row["config"]].accuracy)
        assert row["predicted_cost"] == pytest.approx(w0[row["config"]].cost)

    sim = run_config(make_cfg("runtime=simulate", f"runtime.profiles={tmp_path}/emu/profiles.json",
                              "scheduler=thief"), tmp_path / "sim", quiet=True).frame
    assert len(sim) == len(emu)
    assert all(math.isfinite(a) and 0 <= a <= 1 for a in sim["accuracy"])

    # the profiler study (paper Fig. 11a) draws the run's errors from MLflow's copy of profiling.csv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ekya.analysis.draw import figure_of
    from ekya.analysis.table import load_table

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    fig, drawn = figure_of("profiler", load_table(uri, "synthetic", metrics=[]), uri, tmp_path / "figures")
    plt.close(fig)
    errors = pd.read_csv(drawn.csv)
    want = (100 * (table["predicted_accuracy"] - table["live_accuracy"]).abs()).sort_values().to_numpy()
    assert errors["abs_error"].sort_values().to_numpy() == pytest.approx(want)
    assert f"{float(pd.Series(want).median()):.1f} points" in drawn.headline and "5.8%" in drawn.headline


def test_profiling_mode_refuses_a_runtime_that_does_not_train(make_cfg, tmp_path):
    with pytest.raises(EkyaError, match="profile_all"):
        run_config(make_cfg("runtime=simulate", "callbacks=[default,profile_all]"), tmp_path / "sim", quiet=True)
