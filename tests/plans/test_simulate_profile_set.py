"""simulate(): schedule and play every window of a profile set into one DataFrame."""

import math

import pytest

from ekya.errors import EkyaError
from ekya.execution.simulate import COLUMNS, simulate
from ekya.plans.budget import make_budget
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.profiles.synthetic import generate_profile_set


def test_simulate_dataframe_over_windows():
    ps = generate_profile_set(streams=3, windows=3, seed=1, pred_noise=0.05)
    b = make_budget(2, 200.0, 0.1, label_delay=2.0)
    df = simulate(ps, ThiefScheduler(), b)
    assert list(df.columns) == COLUMNS
    assert len(df) == 9 and sorted(df.window.unique()) == [0, 1, 2]
    assert df.accuracy.between(0, 1).all()
    assert (df.infer_share + df.train_share).groupby(df.window).sum().max() <= 2 + 1e-9
    again = simulate(ps, ThiefScheduler(), b)
    assert df.drop(columns="scheduler_seconds").equals(again.drop(columns="scheduler_seconds"))
    oracle = simulate(ps, ThiefScheduler(), b, windows=[1], use_predictions=False)
    assert len(oracle) == 3 and (oracle.window == 1).all()
    with pytest.raises(EkyaError, match="out of range"):
        simulate(ps, ThiefScheduler(), b, windows=[7])
    done = df.completion_time.dropna()
    assert ((done > 2.0) & (done <= 200.0)).all()
    assert not math.isnan(df.predicted_acc.iloc[0])
