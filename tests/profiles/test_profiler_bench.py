"""The profiler benchmark's figures: errors against live accuracy, the no-change guess, rank correlation of gains."""

import pandas as pd
import pytest

from ekya.bench.profiler import prediction_errors


def table(pred, live, start_val, start_live, val=None):
    n = len(pred)
    return pd.DataFrame({"predicted_accuracy": pred, "live_accuracy": live, "start_val_accuracy": start_val,
                         "start_live_accuracy": start_live, "val_accuracy": val if val is not None else live,
                         "predicted_cost": [1.0] * n, "cost": [1.0] * n})


def test_headline_is_against_live_accuracy_with_the_no_change_guess_beside_it():
    t = table(pred=[0.80, 0.70, 0.90], live=[0.82, 0.66, 0.90], start_val=[0.70, 0.70, 0.70],
              start_live=[0.60, 0.60, 0.60], val=[0.80, 0.70, 0.90])
    f = prediction_errors(t)
    assert f["median_abs_acc_error"] == pytest.approx(0.02)  # |pred - live|: 0.02, 0.04, 0.0
    assert f["median_abs_val_error"] == 0.0  # against validation it looks perfect
    assert f["no_change_error"] == pytest.approx(0.12)  # |start_val - live|: 0.12, 0.04, 0.20
    # predicted gains 0.1, 0.0, 0.2 rank like realised gains 0.22, 0.06, 0.30
    assert f["spearman_gain"] == pytest.approx(1.0)


def test_a_profiler_that_ranks_gains_backwards_has_negative_rank_correlation():
    t = table(pred=[0.9, 0.8, 0.7], live=[0.6, 0.7, 0.8], start_val=[0.5] * 3, start_live=[0.5] * 3)
    assert prediction_errors(t)["spearman_gain"] == pytest.approx(-1.0)
