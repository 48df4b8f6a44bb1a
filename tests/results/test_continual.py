"""Continual-learning metrics on small matrices worked out by hand, with the lag and without."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.results.continual import (
    METRICS,
    AccuracyMatrix,
    continual_metrics,
    macro_metrics,
    matrix_frame,
    running_metrics,
)

# rows: base model, then the model serving at the end of windows 1..3; columns: probes of windows 1..3
R = np.array([[0.5, 0.4, 0.3],
              [0.6, 0.5, 0.4],
              [0.8, 0.7, 0.5],
              [0.7, 0.9, 0.6]])


def test_our_one_window_lag() -> None:
    m = continual_metrics(R, lag=1, sizes=[10, 30, 60])
    # live: diagonal R[j][j] = 0.6, 0.7, 0.6; start: R[j-1][j] = 0.5, 0.5, 0.5
    assert m["live_accuracy"] == pytest.approx(1.9 / 3)
    assert m["start_accuracy"] == pytest.approx(0.5)
    assert m["window_gain"] == pytest.approx(1.9 / 3 - 0.5)
    # final row 0.7, 0.9, 0.6; micro weights 10, 30, 60: (7 + 27 + 36) / 100
    assert m["final_accuracy"] == pytest.approx(2.2 / 3)
    assert m["final_accuracy_micro"] == pytest.approx(0.70)
    # row means over j <= i: 0.6, (0.8+0.7)/2, (0.7+0.9+0.6)/3
    assert m["incremental_accuracy"] == pytest.approx((0.6 + 0.75 + 2.2 / 3) / 3)
    # J = {1}: window 1 is first trained on by row 2 (0.8), the last row has 0.7
    assert m["bwt"] == pytest.approx(-0.1)
    assert m["forgetting"] == pytest.approx(0.1)
    assert m["forgetting_clipped"] == pytest.approx(0.1)
    # R[j][j] - R[0][j] = 0.1, 0.3, 0.3: with the lag, forward transfer is the gain over the base model
    assert m["fwt"] == pytest.approx(0.7 / 3)
    assert m["gain_over_base"] == pytest.approx(0.7 / 3)
    assert list(m) == list(METRICS)


def test_lag_zero_is_the_textbook() -> None:
    m = continual_metrics(R, lag=0)
    # GEM BWT: mean_{j<N} R[N][j] - R[j][j] = (0.7-0.6, 0.9-0.7)
    assert m["bwt"] == pytest.approx(0.15)
    # forgetting: j=1: max(0.6, 0.8) - 0.7 = 0.1; j=2: 0.7 - 0.9 = -0.2; clipped (Mammoth, PyCIL): 0.1 and 0
    assert m["forgetting"] == pytest.approx(-0.05)
    assert m["forgetting_clipped"] == pytest.approx(0.05)
    # GEM FWT over j = 2..N: R[1][2] - R[0][2] = 0.1, R[2][3] - R[0][3] = 0.2
    assert m["fwt"] == pytest.approx(0.15)
    assert math.isnan(m["final_accuracy_micro"])  # no sizes given
    # the lag does not enter the accuracies
    assert m["live_accuracy"] == pytest.approx(continual_metrics(R, lag=1)["live_accuracy"])


def test_too_few_windows_are_nan_not_zero() -> None:
    m = continual_metrics([[0.5], [0.7]], lag=1)
    assert math.isnan(m["bwt"]) and math.isnan(m["forgetting"]) and math.isnan(m["forgetting_clipped"])
    assert m["live_accuracy"] == pytest.approx(0.7) and m["fwt"] == pytest.approx(0.2)
    # N = 2 with the lag: window 1 is first trained on by row 2, which is the last: nothing to forget yet
    assert math.isnan(continual_metrics(R[:3, :2], lag=1)["bwt"])
    assert math.isnan(continual_metrics([[0.5], [0.7]], lag=0)["fwt"])  # GEM FWT needs a second window


def test_an_empty_probe_drops_out_of_every_mean() -> None:
    holed = R.copy()
    holed[:, 1] = np.nan  # window 2's probe had no labelled sample
    m = continual_metrics(holed, lag=0, sizes=[10, 0, 60])
    # BWT over j=1 only: 0.7 - 0.6; final over windows 1 and 3; micro (7 + 36) / 70
    assert m["bwt"] == pytest.approx(0.1)
    assert m["final_accuracy"] == pytest.approx(0.65)
    assert m["final_accuracy_micro"] == pytest.approx(43 / 70)


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((1, 0)), np.zeros(4)])
def test_wrong_shape_is_a_clear_error(bad: np.ndarray) -> None:
    with pytest.raises(EkyaError, match=r"\(N\+1, N\)"):
        continual_metrics(bad)


def test_running_macro_and_frame() -> None:
    other = 1 - R
    mats = {"a": AccuracyMatrix("a", R, (10, 30, 60)), "b": AccuracyMatrix("b", other, (5, 5, 5))}
    per, macro = running_metrics(mats, 2)
    # as of window 2: rows 0..2, windows 1..2 only
    assert per["a"] == continual_metrics(R[:3, :2], 1, (10, 30))
    assert macro["live_accuracy"] == pytest.approx((per["a"]["live_accuracy"] + per["b"]["live_accuracy"]) / 2)
    assert math.isnan(macro["bwt"])  # undefined for both cameras
    assert macro_metrics({"a": {**per["a"], "bwt": 0.2}, "b": per["b"]})["bwt"] == pytest.approx(0.2)
    frame = matrix_frame(mats)
    assert list(frame.columns) == ["camera", "row", "col", "accuracy"] and len(frame) == 2 * 4 * 3
    back = frame[frame.camera == "a"].pivot(index="row", columns="col", values="accuracy")
    pd.testing.assert_frame_equal(back, pd.DataFrame(R, index=pd.Index(range(4), name="row"),
                                                     columns=pd.Index([1, 2, 3], name="col")))
