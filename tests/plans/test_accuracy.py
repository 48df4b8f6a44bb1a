"""The window-accuracy model, hand-computed."""

import numpy as np
import pytest

from ekya.plans.accuracy import completion_time, window_accuracy
from ekya.plans.budget import make_budget


def budget(delay=0.0, window=100.0, throughput="linear"):
    return make_budget(1, window, 0.1, label_delay=delay, throughput=throughput)


def test_old_model_then_new_model_time_average():
    # I = R = 0.5 (co-located), C = 20 at rate 0.5 -> done at 40; scale(0.5) = scale(1.0) = 1.
    assert window_accuracy(0.6, 0.9, 20.0, 0.5, 0.5, budget()) == pytest.approx((0.6 * 40 + 0.9 * 60) / 100)


def test_inference_share_matters_before_and_after_completion():
    # I = 0.1 -> scale 0.71 while training; after completion inference gets I + R = 0.6 -> scale 1.
    assert window_accuracy(0.6, 0.9, 20.0, 0.1, 0.5, budget()) == pytest.approx((0.6 * 0.71 * 40 + 0.9 * 60) / 100)


def test_label_delay_serves_whole_allotment_then_trains():
    # [0,10): 0.6 * scale(0.6) = 0.6; [10,50): 0.6 * 0.71; [50,100]: 0.9.
    got = window_accuracy(0.6, 0.9, 20.0, 0.1, 0.5, budget(delay=10))
    assert got == pytest.approx((0.6 * 10 + 0.6 * 0.71 * 40 + 0.9 * 50) / 100)
    assert completion_time(20.0, 0.5, budget(delay=10)) == pytest.approx(50.0)


def test_job_that_misses_the_window_never_helps():
    assert window_accuracy(0.6, 0.99, 200.0, 0.1, 0.5, budget()) == pytest.approx(0.6 * 0.71)
    assert completion_time(200.0, 0.5, budget()) is None


def test_no_training_share_means_no_retraining():
    assert window_accuracy(0.6, 0.9, 1.0, 0.2, 0.0, budget()) == pytest.approx(0.6 * 0.945)


def test_non_colocated_stream_keeps_its_inference_share():
    # I + R = 1.5 > 1: the jobs sit on different accelerators, inference stays at 0.5.
    b = make_budget(2, 100.0, 0.1, throughput="linear", inference={"max_share": 1.0})
    got = window_accuracy(0.6, 0.9, 50.0, 0.5, 1.0, b)
    assert got == pytest.approx((0.6 * 0.78 * 50 + 0.9 * 0.78 * 50) / 100)


def test_vectorised_over_configs_and_shares():
    b = budget(delay=2.0, throughput="mps")
    a1 = np.array([0.7, 0.8, 0.9])
    cost = np.array([5.0, 30.0, 300.0])
    vec = window_accuracy(0.5, a1[:, None], cost[:, None], np.array([0.1, 0.3])[None, :], 0.4, b)
    for k in range(3):
        for j, i in enumerate([0.1, 0.3]):
            assert vec[k, j] == pytest.approx(window_accuracy(0.5, float(a1[k]), float(cost[k]), i, 0.4, b))
