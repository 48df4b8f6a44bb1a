"""Accuracy-curve fitting: recovers known curves, extrapolates, and falls back conservatively."""

import numpy as np
import pytest

from ekya.profiles.curvefit import fit_curve


def optimus(x, a=0.9, b0=0.8, b1=2.5):
    return a - 1.0 / (b0 * np.asarray(x, float) + b1)


def test_optimus_fit_recovers_the_curve_and_extrapolates():
    x = np.arange(6.0)
    fit = fit_curve(x, optimus(x), "optimus", horizon=30)
    assert not fit.fallback
    assert fit.predict([15, 30]) == pytest.approx(optimus([15, 30]), abs=2e-3)


@pytest.mark.parametrize("family", ["optimus", "log", "exp"])
def test_every_family_fits_noisy_increasing_data_within_bounds(family):
    rng = np.random.default_rng(0)
    x = np.arange(1.0, 8.0)
    y = np.clip(optimus(x) + rng.normal(0, 0.01, x.size), 0, 1)
    fit = fit_curve(x, y, family, horizon=20)
    pred = fit.predict(np.linspace(0, 20, 50))
    assert np.all((pred >= 0) & (pred <= 1))
    assert abs(float(fit.predict(7.0)) - y[-1]) < 0.05


def test_too_few_points_falls_back_to_the_best_observation():
    fit = fit_curve([1.0], [0.6])
    assert fit.fallback and "fewer than two" in fit.note
    assert float(fit.predict(100.0)) == pytest.approx(0.6)


def test_a_fit_that_would_leave_0_1_falls_back_and_says_why():
    # log family on steeply rising data extrapolates above 1 far out: conservative estimate instead
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([0.2, 0.6, 0.9])
    fit = fit_curve(x, y, "log", horizon=1000)
    assert fit.fallback and "outside [0, 1]" in fit.note
    assert float(fit.predict(1000)) == pytest.approx(0.9)


def test_observations_outside_0_1_never_crash():
    fit = fit_curve([0, 1, 2], [0.5, 1.2, np.nan])
    assert fit.fallback
    assert 0 <= float(fit.predict(5)) <= 1


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown curve family 'cubic'"):
        fit_curve([0, 1], [0.1, 0.2], "cubic")
