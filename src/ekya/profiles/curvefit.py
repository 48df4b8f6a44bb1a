"""Accuracy-curve fitting for micro-profiling: fit a few early epochs, extrapolate to the full job.

Families (``x`` = training progress, e.g. optimiser steps; all fits use scipy's non-negative least
squares on a linearised form, as the paper describes, never a prior anchored at "95% at 30 epochs"):

- ``optimus``: acc(x) = a - 1 / (b0 * x + b1), b0, b1 >= 0 (the Optimus loss curve 1/(b0 k + b1) + b2
  turned into accuracy). For a fixed asymptote a, 1 / (a - acc) = b0 * x + b1 is linear: NNLS fits
  (b0, b1); a is chosen on a grid above the best observation by least squares in accuracy space.
- ``log``: acc(x) = c + b * log1p(x), b >= 0.
- ``exp``: acc(x) = a - b * exp(-x / tau), b >= 0, tau on a grid.

A fit that fails or predicts outside [0, 1] is replaced by the conservative estimate: the best
accuracy actually observed (no extrapolated gain), and ``CurveFit.note`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

FAMILIES = ("optimus", "log", "exp")


@dataclass(frozen=True)
class CurveFit:
    """A fitted accuracy curve; ``fallback`` is True when the conservative estimate replaced the fit."""

    family: str
    params: tuple[float, ...]
    fallback: bool = False
    note: str = ""

    def predict(self, x: float | np.ndarray) -> np.ndarray:
        """Predicted accuracy at progress x, clipped to [0, 1]."""
        x = np.asarray(x, dtype=float)
        p = self.params
        if self.fallback:
            y = np.full_like(x, p[0])
        elif self.family == "optimus":
            y = p[0] - 1.0 / (p[1] * x + p[2])
        elif self.family == "log":
            y = p[0] + p[1] * np.log1p(x)
        else:
            y = p[0] - p[1] * np.exp(-x / p[2])
        return np.clip(y, 0.0, 1.0)


def _sse(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * (y - pred) ** 2))


def _fit_optimus(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, ...] | None:
    best, best_err = None, math.inf
    top = float(y.max())
    # The asymptote lies above every observation; accuracy never exceeds 1.
    for a in np.unique(np.clip(top + np.geomspace(1e-3, 1.0, 60), top + 1e-3, 1.0 + 1e-6)):
        z = 1.0 / (a - y)
        A = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
        coef, _ = nnls(A, z * np.sqrt(w))
        b0, b1 = coef
        if b1 <= 0 and b0 <= 0:
            continue
        pred = a - 1.0 / np.maximum(b0 * x + b1, 1e-12)
        err = _sse(y, pred, w)
        if err < best_err:
            best, best_err = (float(a), float(b0), float(max(b1, 1e-12))), err
    return best


def _fit_log(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, ...] | None:
    # c is free in sign: split it into c+ - c- so NNLS can fit it.
    A = np.stack([np.ones_like(x), -np.ones_like(x), np.log1p(x)], axis=1) * np.sqrt(w)[:, None]
    coef, _ = nnls(A, y * np.sqrt(w))
    return (float(coef[0] - coef[1]), float(coef[2]))


def _fit_exp(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, ...] | None:
    best, best_err = None, math.inf
    span = float(max(x.max(), 1e-9))
    for tau in span * np.geomspace(0.05, 20.0, 40):
        A = np.stack([np.ones_like(x), -np.exp(-x / tau)], axis=1) * np.sqrt(w)[:, None]
        coef, _ = nnls(A, y * np.sqrt(w))
        pred = coef[0] - coef[1] * np.exp(-x / tau)
        err = _sse(y, pred, w)
        if err < best_err:
            best, best_err = (float(coef[0]), float(coef[1]), float(tau)), err
    return best


_FITTERS = {"optimus": _fit_optimus, "log": _fit_log, "exp": _fit_exp}


def conservative(y: np.ndarray, why: str) -> CurveFit:
    """The fallback estimate: the best accuracy observed, no extrapolated gain."""
    finite = y[np.isfinite(y)]
    best = float(np.clip(finite.max(), 0.0, 1.0)) if finite.size else 0.0
    return CurveFit("conservative", (best,), fallback=True, note=why)


def fit_curve(x: np.ndarray, y: np.ndarray, family: str = "optimus", weights: np.ndarray | None = None,
              horizon: float | None = None) -> CurveFit:
    """Fit accuracy observations y at progress x; check the fit is sane up to ``horizon``."""
    if family not in _FITTERS:
        raise ValueError(f"unknown curve family {family!r}; choose one of {FAMILIES}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, w = x[ok], y[ok], w[ok]
    if x.size < 2 or np.unique(x).size < 2:
        return conservative(y, f"{family}: fewer than two distinct points to fit")
    if np.any((y < 0) | (y > 1)):
        return conservative(np.clip(y, 0, 1), f"{family}: observations outside [0, 1]")
    try:
        params = _FITTERS[family](x, y, w)
    except (ValueError, RuntimeError, FloatingPointError) as e:
        return conservative(y, f"{family}: fit failed ({e})")
    if params is None or not all(math.isfinite(p) for p in params):
        return conservative(y, f"{family}: fit found no valid parameters")
    fit = CurveFit(family, params)
    probe = np.linspace(0.0, float(horizon if horizon is not None else x.max()), 16)
    with np.errstate(all="ignore"):
        raw = {"optimus": lambda t: params[0] - 1.0 / (params[1] * t + params[2]),
               "log": lambda t: params[0] + params[1] * np.log1p(t),
               "exp": lambda t: params[0] - params[1] * np.exp(-t / params[2])}[family](probe)
    if not np.all(np.isfinite(raw)) or raw.min() < -1e-6 or raw.max() > 1 + 1e-6:
        return conservative(y, f"{family}: fit predicts outside [0, 1] up to x={probe[-1]:.3g}")
    return fit
