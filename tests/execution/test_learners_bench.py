"""The learners benchmark reads its figures off the runs' files and checks its claims honestly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ekya.bench.learners import run_figures, targets
from ekya.results.continual import AccuracyMatrix, matrix_frame


def _write_run(where, accuracy, matrix, oracle=None):
    where.mkdir(parents=True)
    frame = pd.DataFrame({"window": [1, 1, 2, 2], "stream": ["a", "b", "a", "b"], "accuracy": accuracy,
                          "oracle_accuracy": oracle if oracle is not None else [math.nan] * 4})
    frame.to_csv(where / "windows.csv", index=False)
    matrices = {cam: AccuracyMatrix(cam, np.asarray(m, dtype=float), (10,) * len(m[0])) for cam, m in matrix.items()}
    matrix_frame(matrices).to_csv(where / "continual.csv", index=False)


def test_figures_are_the_runs_mean_accuracy_upper_bound_and_macro_forgetting(tmp_path):
    # 3 windows after the bootstrap (N = 3), lag 1: J = {1}; l(1) = 2.
    # camera a: forgetting = max(R[2][1]) - R[3][1] = 0.9 - 0.6 = 0.3; BWT = R[3][1] - R[2][1] = -0.3
    # camera b: forgetting = 0.5 - 0.7 = -0.2; BWT = +0.2. Macro: forgetting 0.05, BWT -0.05.
    a = [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.9, 0.6, 0.5], [0.6, 0.7, 0.8]]
    b = [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.5, 0.6, 0.5], [0.7, 0.7, 0.8]]
    _write_run(tmp_path / "run", [0.2, 0.4, 0.6, 0.8], {"a": a, "b": b}, oracle=[0.3, 0.5, 0.7, 0.9])
    got = run_figures(tmp_path / "run")
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["upper_bound"] == pytest.approx(0.6)
    assert got["forgetting"] == pytest.approx(0.05)
    assert got["bwt"] == pytest.approx(-0.05)


def test_a_run_without_cached_models_reports_no_upper_bound(tmp_path):
    m = [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.9, 0.6, 0.5], [0.6, 0.7, 0.8]]
    _write_run(tmp_path / "run", [0.2, 0.4, 0.6, 0.8], {"a": m})
    assert "upper_bound" not in run_figures(tmp_path / "run")


def _fig(mean):
    return {"mean": mean, "ci": None}


def test_targets_compare_the_means_and_say_when_a_figure_is_missing():
    report = {
        "recurring": {"finetune": {"forgetting": _fig(0.10), "accuracy": _fig(0.70)},
                      "icarl": {"forgetting": _fig(0.02)},
                      "finetune_replay": {"forgetting": _fig(0.12)},
                      "thief_cached": {"accuracy": _fig(0.70)}},
        "throughput": {"finetune": {"ratio_to_finetune": {"x": 1.0}}, "icarl": {"ratio_to_finetune": {"x": 0.79}}},
    }
    got = targets(report)
    assert got["icarl_forgets_less_on_recurring"] is True
    assert got["replay_forgets_less_on_recurring"] is False
    assert got["thief_cached_at_least_thief_recurring"] is True  # equal counts as "at or above"
    assert got["thief_cached_at_least_thief_default"] is None  # that cell was not run
    assert got["throughput_ratios_at_least_0.8"] is False
